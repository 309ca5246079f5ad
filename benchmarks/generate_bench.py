"""Generation speed: streamed tokens/s with the key/value cache against recomputing the whole
window each step, time to first token, and proof that requests of other lengths do not recompile.

    python benchmarks/generate_bench.py                 # the reference model (4x4x128, context 64)
    python benchmarks/generate_bench.py --context 256 --width 256 --tokens 500

The weights are random (speed does not depend on them); the tokenizer is the character tokenizer
of the sample corpus, so decoding costs what it costs in the app.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def traces(gen) -> int:
    """Compilations so far of every compiled generation function."""
    return sum(f.experimental_get_tracing_count() for s in gen._sampled.values() for f in s.functions())


def timed(gen, prompt, cfg, use_cache: bool) -> dict:
    t0 = time.perf_counter()
    first = None
    n = 0
    for _tok in gen.stream(prompt, cfg, use_cache=use_cache):
        if first is None:
            first = time.perf_counter() - t0
        n += 1
    total = time.perf_counter() - t0
    return {"tokens": n, "seconds": total, "tokens_per_sec": n / total, "first_token_ms": 1000 * first}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.generation import Generator, SamplingConfig
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.tokenizers import train_tokenizer

    text = (ROOT / "resources" / "corpora" / "tinyshakespeare.txt").read_text("utf-8")
    tok = train_tokenizer("char", [text])
    model = build_model(ModelConfig(vocabulary_size=tok.vocabulary_size, num_layers=args.layers, num_heads=args.heads,
                                    hidden_dim=args.width, intermediate_dim=4 * args.width,
                                    sequence_length=args.context, dropout=0.0))
    gen = Generator(model, tok)
    cfg = SamplingConfig(max_new_tokens=args.tokens, temperature=0.8, top_k=40, seed=1)
    prompts = ["ROMEO:", "First Citizen:\nBefore we proceed any further, hear me speak.", "A"]

    # warm-up: compile every path once
    compile_t0 = time.perf_counter()
    for use_cache in (True, False):
        list(gen.stream(prompts[0], SamplingConfig(max_new_tokens=3, temperature=0.8, top_k=40, seed=1),
                        use_cache=use_cache))
    compile_s = time.perf_counter() - compile_t0
    traced = traces(gen)

    rows = {}
    for use_cache in (True, False):
        runs = [timed(gen, prompts[i % len(prompts)], cfg, use_cache) for i in range(args.repeats)]
        rows["cache" if use_cache else "no_cache"] = {
            "tokens_per_sec": statistics.median(r["tokens_per_sec"] for r in runs),
            "first_token_ms": statistics.median(r["first_token_ms"] for r in runs),
            "tokens": runs[0]["tokens"]}
    retraced = traces(gen) - traced

    c, n = rows["cache"], rows["no_cache"]
    lines = [f"model {args.layers}x{args.heads}x{args.width}, context {args.context}; {args.tokens} new tokens, "
             f"top-k 40, temperature 0.8; first compile {compile_s:.1f} s",
             f"{'mode':<22} {'tokens/s':>9} {'first token':>12}",
             f"{'key/value cache':<22} {c['tokens_per_sec']:>9,.0f} {c['first_token_ms']:>9.1f} ms",
             f"{'recompute the window':<22} {n['tokens_per_sec']:>9,.0f} {n['first_token_ms']:>9.1f} ms",
             f"cache speed-up: {c['tokens_per_sec'] / n['tokens_per_sec']:.2f}x; "
             f"recompilations across {args.repeats * 2} requests of different prompt lengths: {retraced}"]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"generate-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows, "compile_s": compile_s, "retraced": retraced,
                                "speedup": c["tokens_per_sec"] / n["tokens_per_sec"]}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
