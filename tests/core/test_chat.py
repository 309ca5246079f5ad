"""The chat family (issue 29): conversations in the common formats, the chat template and its loss
mask, a chat run fine-tuned from a GPT run, chat sessions that apply the template and stop at the
end of a turn, and the `chat` command in both modes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_llm.core.chat_template import SPECIALS, ChatTokenizer
from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.models.chat.conversations import ChatData, pack, read_conversations
from desktop_llm.core.tokenizers import load_tokenizer, train_tokenizer
from desktop_llm.resources import chat_example

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--layers", "1", "--heads", "2", "--width", "32", "--ffn", "64", "--context", "48", "--batch-size", "8",
         "--no-xla", "--eval-interval", "40", "--log-interval", "20", "--sample-tokens", "8"]


def cli(home, *args, stdin=None):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "desktop_llm", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, check=False, input=stdin)


def test_the_template_supervises_only_the_replies_and_their_end():
    inner = train_tokenizer("char", ["Be kind. Hello there! 你好。"])
    tok = ChatTokenizer(inner)
    n = inner.vocabulary_size
    assert tok.vocabulary_size == n + 4 and [tok.token_text(n + i) for i in range(4)] == list(SPECIALS)
    ids, mask = tok.render([("system", "Be kind."), ("user", "Hello"), ("assistant", "你好。")], reply=False)
    shown = [tok.token_text(i) for i in ids]
    assert shown == ["<|system|>", *"Be kind.", "<|end|>", "<|user|>", *"Hello", "<|end|>",
                     "<|assistant|>", *"你好。", "<|end|>"]
    supervised = [t for t, m in zip(shown, mask) if m]
    assert supervised == [*"你好。", "<|end|>"]  # the reply and its end; never the system, user or role tokens
    ids, mask = tok.render([("user", "Hello")], reply=True)
    assert ids[-1] == tok.role_ids["assistant"] and not any(mask)
    assert tok.decode(ids) == "Hello"  # special tokens write no text
    assert set(tok.role_ids.values()) <= set(tok.placeholder_ids) and tok.end_id not in tok.placeholder_ids


def test_conversations_read_from_jsonl_sharegpt_and_tsv_and_bad_lines_are_one_line(tmp_path):
    jl = tmp_path / "chat.jsonl"
    jl.write_text(json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
                                           {"role": "assistant", "content": "a1"}]}) + "\n"
                  + json.dumps({"conversations": [{"from": "human", "value": "u2"}, {"from": "gpt", "value": "a2"}]})
                  + "\n\n", "utf-8")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("hi\thello\tattribution\nbye\tsee you\n", "utf-8")
    assert read_conversations([jl]) == [[("system", "s"), ("user", "u1"), ("assistant", "a1")],
                                        [("user", "u2"), ("assistant", "a2")]]
    assert read_conversations([tsv]) == [[("user", "hi"), ("assistant", "hello")],
                                         [("user", "bye"), ("assistant", "see you")]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "wizard", "content": "x"}]}) + "\n", "utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:1: message 1 has role 'wizard'"):
        read_conversations([bad])
    plain = tmp_path / "notes.txt"
    plain.write_text("just text\n", "utf-8")
    with pytest.raises(CorpusError, match="not a chat file"):
        read_conversations([plain])


def test_packing_keeps_each_conversation_whole_and_weighs_the_padding_nothing():
    convs = [([1, 2, 3], [0, 1, 1]), ([4, 5], [0, 1]), ([6, 7, 8, 9, 10, 11], [0, 0, 0, 1, 1, 1])]
    ids, mask, cut = pack(convs, 5)
    assert cut == 1  # the third is longer than a row
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert mask.tolist() == [[0, 1, 1, 0, 1], [0, 0, 0, 1, 1]]
    ids, mask, _ = pack([([1, 2, 3], [0, 1, 1]), ([4, 5, 6], [0, 1, 1])], 5)
    assert ids.tolist() == [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0]] and mask[:, 3:].sum() == 0


def test_chat_data_batches_repeat_per_step_and_weigh_only_replies(tmp_path):
    convs = read_conversations([chat_example()])[:200]
    tok = ChatTokenizer(train_tokenizer("char", ("\n".join(c for _, c in conv) for conv in convs)))
    info = ChatData.prepare(convs, tok, 48, tmp_path, 0.1, 1)
    assert info["examples"] == 200 and 0 < info["supervised_tokens"] < info["train_tokens"]
    data = ChatData(tmp_path)
    x, y, w = data.batch(7, 4, 1)
    x2, _, w2 = data.batch(7, 4, 1)
    assert x.shape == y.shape == w.shape == (4, 48) and np.array_equal(x, x2) and np.array_equal(w, w2)
    assert (x[:, 1:] == y[:, :-1]).all()  # the targets are the next ids
    weighted = set(y[w > 0].tolist())
    assert tok.end_id in weighted and not weighted & set(tok.role_ids.values())
    assert len(data.val_conversations) == 20 and data.val.size > 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A GPT pretrained on the bundled pairs' text, then a chat run fine-tuned from it."""
    home = tmp_path_factory.mktemp("ws")
    text = home / "pairs.txt"
    lines = chat_example().read_text("utf-8").splitlines()[:600]
    text.write_text("\n".join(m["content"] for x in lines for m in json.loads(x)["messages"]) + "\n", "utf-8")
    base = cli(home, "train", text, "--name", "base", *SMALL, "--steps", "80", "--json")
    assert base.returncode == 0, base.stderr
    chat = cli(home, "train", "--family", "chat", chat_example(), "--base", "base", "--name", "chat",
               "--steps", "80", "--batch-size", "8", "--no-xla", "--eval-interval", "40", "--log-interval", "20",
               "--sample-tokens", "8", "--json")
    assert chat.returncode == 0, chat.stderr
    return home, base, chat


def test_a_chat_run_fine_tunes_a_gpt_run_and_reports_replies_that_end(runs):
    from desktop_llm.store import RunStore

    home, base, chat = runs
    store = RunStore(home)
    b, c = store.resolve("base"), store.resolve("chat")
    assert c.config.family == "chat" and c.config.base_run == str(b.folder.resolve())
    tok = load_tokenizer(c.tokenizer_dir)
    assert tok.kind == "chat-template" and tok.inner.vocabulary() == load_tokenizer(b.tokenizer_dir).vocabulary()
    events = [json.loads(x) for x in chat.stdout.splitlines() if x.startswith("{")]
    assert any("Starting from the base run's weights" in e.get("message", "") for e in events)
    data = next(e for e in events if e["type"] == "data")
    assert 0 < data["supervised_tokens"] < data["train_tokens"]
    evals = [e for e in events if e["type"] == "eval"]
    assert len(evals) == 2 and all(0 <= e["val_stops"] <= 1 for e in evals)
    assert evals[-1]["val_bits_per_byte"] > 0 and "(reference: " in evals[-1]["sample"]
    base_first = next(e["loss"] for e in map(json.loads, base.stdout.splitlines()) if e.get("type") == "step")
    chat_first = next(e["loss"] for e in events if e["type"] == "step")
    assert chat_first < base_first - 0.3  # it starts from the base, not from a random model


def test_a_chat_run_probes_its_replies_to_validation_users_at_every_evaluation(runs):
    """The Learning page's timeline for a chat run: each prompt is a validation conversation's first
    user message, each cell the greedy reply the chat session writes, up to and with its <|end|>."""
    from desktop_llm.core import probes
    from desktop_llm.core.generation import Generator, SamplingConfig
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store import RunStore

    home, _, _ = runs
    run = RunStore(home).resolve("chat")
    recs, spec = probes.records(run), probes.spec(run)
    assert [r["step"] for r in recs] == [40, 80] and all(r["health"]["grad_norm"] for r in recs)
    assert 1 <= len(spec["prompts"]) <= probes.PROMPTS
    assert all(not p.startswith("<|") and p in run.data_dir.joinpath("val_conversations.json").read_text("utf-8")
               for p in spec["prompts"])
    model, tok, _ = load_for_inference(run, "latest")
    gen = Generator(model, tok, jit_compile=False)
    for prompt, cell in zip(spec["prompts"], recs[-1]["continuations"]):
        want = gen.generate(tok.render([("user", prompt)], reply=True)[0],
                            SamplingConfig(max_new_tokens=probes.CONTINUATION_TOKENS, temperature=0.0),
                            stop_ids=(tok.end_id,))
        ended = want.stopped_by == "end"
        assert cell["tokens"] == [t.text for t in want.tokens] + (["<|end|>"] if ended else [])
        assert len(cell["surprise"]) == len(cell["tokens"])


def test_a_chat_session_applies_the_template_drops_old_turns_and_stops_at_the_end(runs):
    from desktop_llm.core.generation import ChatSession, Generator, SamplingConfig
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store import RunStore

    home, _, _ = runs
    model, tok, _ = load_for_inference(RunStore(home).resolve("chat"), "best")
    gen = Generator(model, tok, jit_compile=False)
    session = ChatSession(gen, system="Answer briefly.")
    assert session.templated
    session.history.append(("user", "Hi"))
    assert session.prompt(8) == tok.render([("system", "Answer briefly."), ("user", "Hi")], reply=True)[0]
    session.history.clear()
    cfg = SamplingConfig(max_new_tokens=6, temperature=0.0)
    first = session.reply("Translate into Chinese: I have a car.", cfg)
    assert session.history[-1] == ("assistant", first) and session.stopped_by in ("end", "length")
    again = session.regenerate(cfg)
    assert again == first and len(session.history) == 2  # greedy: the same reply, in place of the old one
    for _ in range(6):  # a context of 48 tokens holds one or two exchanges
        session.reply("Translate into Chinese: It is a long sentence about a car.", cfg)
    assert session.dropped > 0 and len(session.prompt(6)) <= gen.length - 6
    # generation stops at the end of the turn: the reply is the tokens before <|end|>, and no <|end|>
    # comes out without one (the longest reply the model writes here, 30 tokens, ends or is cut)
    out = gen.generate(tok.render([("user", "Hi")], reply=True)[0], SamplingConfig(max_new_tokens=30, temperature=0.0),
                       stop_ids=(tok.end_id,))
    assert tok.end_id not in [t.id for t in out.tokens]
    assert (out.stopped_by == "end") == (len(out.tokens) < 30) or out.stopped_by == "end"


def test_the_chat_command_uses_the_template_and_a_plain_gpt_gets_a_transcript(runs):
    home, _, _ = runs
    out = cli(home, "chat", "chat", "--system", "Answer briefly.", "--max-tokens", "6", "--temperature", "0",
              stdin="/retry\nTranslate into Chinese: Hi.\n/retry\n\n")
    assert out.returncode == 0, out.stderr
    assert "in its chat template" in out.stderr and "nothing to answer yet" in out.stderr
    first, again = out.stdout.split("> ")[2:4]
    assert again.startswith("  (again) ") and again.removeprefix("  (again) ") == first.removeprefix("  ")
    out = cli(home, "chat", "base", "--system", "x", "--max-tokens", "4", stdin="Hi\n\n")
    assert out.returncode == 0, out.stderr
    assert "transcript mode" in out.stderr and "--system is for chat runs" in out.stderr
    out = cli(home, "eval", "chat")
    assert out.returncode == 2 and "is a chat run" in out.stderr


def test_a_chat_export_carries_its_template(runs, tmp_path):
    from desktop_llm.core.export import export_run
    from desktop_llm.store import RunStore

    home, _, _ = runs
    run = RunStore(home).resolve("chat")
    result = export_run(run, "keras-hub", out=tmp_path / "preset")
    template = json.loads((result.path / "chat_template.json").read_text("utf-8"))
    tok = load_tokenizer(run.tokenizer_dir)
    assert template["special_tokens"]["<|end|>"] == tok.end_id and template["stop_token_ids"] == [tok.end_id]
    meta = json.loads((result.path / "export.json").read_text("utf-8"))
    assert any("chat_template.json" in n for n in meta["notes"])
    assert f"stop_token_ids=[{tok.end_id}]" in " ".join(meta["usage"])


def test_corpus_stats_shows_what_a_chat_model_learns_to_write(tmp_path):
    from desktop_llm.core.models import get_family

    convs = tmp_path / "c.jsonl"
    convs.write_text(json.dumps({"messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": "Hello!"}]}) + "\n"
                     + json.dumps({"messages": [{"role": "user", "content": "Bye"},
                                                {"role": "assistant", "content": "See you."}]}) + "\n", "utf-8")
    parts = get_family("chat").example_parts([convs])
    assert parts == [("<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>", False), ("Hello!<|end|>", True)]
    out = cli(tmp_path / "ws", "corpus", "stats", convs)
    assert out.returncode == 0, out.stderr
    assert "as chat data:" in out.stdout and "2 conversations, 5 messages" in out.stdout
    assert "documents:            2" in out.stdout  # as plain text, each conversation's messages are a document
    assert "<|assistant|>⟪Hello!<|end|>⟫" in out.stdout and "what the model learns to write" in out.stdout
