"""Chat fine-tuning, measured: does a GPT answer in turn and stop once it is fine-tuned on the
bundled conversations (resources/conversations/chat-example.jsonl)?

1. Pretrain a GPT on the bundled texts (the Tang poems and both sides of the Tatoeba pairs, as plain
   text), with `desktop-llm train`.
2. Fine-tune it on the conversations: `desktop-llm train --family chat --base <run>`.
3. Measure on the chat run's validation conversations, before fine-tuning (the base's weights with
   the template's tokens added) and after: the loss and bits per byte on the assistant's tokens, and
   "does it stop?" (the share of greedy replies that end with <|end|> within twice the reference's
   length + 16 tokens). A chat run trained from scratch for as many steps is the third row.

    python benchmarks/chat_sft.py [--pretrain-steps 1500] [--chat-steps 600]

Prints a Markdown table and writes benchmarks/results/chat_sft.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "desktop_llm"]


def train(home: Path, *args: str) -> Path:
    """Train with the command line; the run folder it made."""
    out = subprocess.run([*CLI, "--home", str(home), "train", *args], capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
    line = next(x for x in out.stdout.splitlines() if x.startswith("run folder: "))
    return Path(line.removeprefix("run folder: ").strip())


def measure(model, tok, data, cfg) -> dict:
    """The chat family's validation figures for `model` on the run's data."""
    from desktop_llm.core.baselines import bits_per_byte, bytes_per_token
    from desktop_llm.core.models import get_family

    family = get_family("chat")
    T = cfg.model.sequence_length
    model.compile(**family.compile_args())
    loss = float(model.evaluate(family.val_dataset(data, 64, 16, T, tok.vocabulary_size), verbose=0,
                                return_dict=True)["loss"])
    ctx = SimpleNamespace(model=model, tok=tok, cfg=cfg, data=data, generator=None)
    stops = family.eval_extras(ctx)["val_stops"]
    reply, _reference, ended = family._reply(ctx, data.val_conversations[0])
    return {"loss": loss, "bits_per_byte": bits_per_byte(loss, bytes_per_token(tok, data.val)), "stops": stops,
            "example": {"asked": data.val_conversations[0][-2][1], "reply": reply, "ended": ended}}


def before(chat_run: Path) -> dict:
    """The base's weights with the template's tokens added: what fine-tuning starts from."""
    from dataclasses import replace

    from desktop_llm.core.loading import load_run_tokenizer
    from desktop_llm.core.models import get_family
    from desktop_llm.core.models.chat.conversations import ChatData
    from desktop_llm.store.runs import Run

    run = Run(chat_run)
    cfg = run.config
    tok = load_run_tokenizer(run.tokenizer_dir)
    family = get_family("chat")
    mcfg = replace(cfg.model, dropout=0.0, vocabulary_size=tok.vocabulary_size)
    model = family.build(mcfg, seed=0)
    family.initialise(model, cfg, mcfg, lambda e: None)
    return measure(model, tok, ChatData(run.data_dir), cfg)


def after(chat_run: Path) -> dict:
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.models.chat.conversations import ChatData
    from desktop_llm.store.runs import Run

    run = Run(chat_run)
    model, tok, _ = load_for_inference(run, "best")
    return measure(model, tok, ChatData(run.data_dir), run.config)


def cpu_name() -> str:
    try:
        return next(x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrain-steps", type=int, default=1500)
    p.add_argument("--chat-steps", type=int, default=600)
    p.add_argument("--context", type=int, default=128)
    a = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="chat_sft_"))
    text = home / "bundled-texts.txt"  # the pretraining text: poems and both sides of the pairs
    pairs = (ROOT / "resources/parallel/tatoeba-cmn-eng-5k.tsv").read_text("utf-8").splitlines()
    text.write_text((ROOT / "resources/corpora/tangshi300.txt").read_text("utf-8") + "\n"
                    + "\n".join(f"{x.split(chr(9))[0]}\n{x.split(chr(9))[1]}" for x in pairs) + "\n", "utf-8")
    shape = ["--preset", "small", "--context", str(a.context), "--eval-interval", "100"]
    t0 = time.perf_counter()
    base = train(home, str(text), *shape, "--steps", str(a.pretrain_steps), "--name", "pretrained")
    t_base = time.perf_counter() - t0
    example = str(ROOT / "resources/conversations/chat-example.jsonl")
    chat = train(home, "--family", "chat", example, "--base", base.name, "--steps", str(a.chat_steps),
                 "--eval-interval", "100", "--name", "chat-from-base")
    scratch = train(home, "--family", "chat", example, *shape, "--steps", str(a.chat_steps), "--name",
                    "chat-from-scratch")
    rows = {"before fine-tuning (the base GPT, template tokens added)": before(chat),
            f"after {a.chat_steps} steps of chat fine-tuning": after(chat),
            f"chat from scratch, {a.chat_steps} steps": after(scratch)}
    result = {"cpu": cpu_name(), "cores": os.cpu_count(),
              "pretrain_steps": a.pretrain_steps, "chat_steps": a.chat_steps, "context": a.context,
              "pretrain_seconds": round(t_base), "rows": rows}
    print("| model | assistant-token loss | bits/byte | replies that end |\n|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['loss']:.3f} | {r['bits_per_byte']:.3f} | {r['stops']:.0%} |")
    for name, r in rows.items():
        print(f"{name}: {r['example']}")
    out = ROOT / "benchmarks/results/chat_sft.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
