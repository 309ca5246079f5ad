"""The translator family: sentence pairs from TSV / JSONL, an encoder-decoder trained for real on
the bundled English-Chinese pairs (BLEU and exact match rise), streamed translation, and one-line
refusals of bad pairs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.models.translator.pairs import read_pairs
from desktop_llm.resources import parallel_example


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *map(str, args)],
                          capture_output=True, text=True, timeout=900)


def test_pairs_from_tsv_and_jsonl(tmp_path):
    pairs = read_pairs([parallel_example()])
    assert len(pairs) == 5000 and pairs[0] == ("Hi.", "嗨。")  # the attribution column stays in the file
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in (
        {"en": "Hello.", "zh": "你好。", "id": 1}, {"en": "Thanks.", "zh": "谢谢。", "id": 2})), encoding="utf-8")
    assert read_pairs([tmp_path / "p.jsonl"]) == [("Hello.", "你好。"), ("Thanks.", "谢谢。")]
    assert read_pairs([tmp_path / "p.jsonl"], "zh", "en")[0] == ("你好。", "Hello.")
    with pytest.raises(CorpusError, match="no field 'de'"):
        read_pairs([tmp_path / "p.jsonl"], "en", "de")


def test_a_line_without_a_tab_is_named(tmp_path):
    (tmp_path / "bad.tsv").write_text("Hi.\t嗨。\nno tab here\nBye.\t再见。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.tsv:2: no tab"):
        read_pairs([tmp_path / "bad.tsv"])
    out = cli(tmp_path / "h", "train", tmp_path / "bad.tsv", "--family", "translator", "--preset", "tiny")
    assert out.returncode == 2 and out.stderr.startswith("error:") and "bad.tsv:2" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    runs = tmp_path / "h" / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run was made


def test_a_translator_learns_the_bundled_pairs(tmp_path):
    from desktop_llm.core import events as ev

    pairs = tmp_path / "pairs.tsv"  # the 1,000 shortest pairs: a few minutes of learning on a CPU
    pairs.write_text("".join(parallel_example().read_text("utf-8").splitlines(keepends=True)[:1000]), "utf-8")
    home = tmp_path / "h"
    out = cli(home, "train", pairs, "--family", "translator", "--preset", "tiny", "--context", "16",
              "--steps", "300", "--eval-interval", "150", "--lr", "3e-3", "--batch-size", "32", "--json")
    assert out.returncode == 0, out.stderr
    events = [ev.parse(json.loads(line)) for line in out.stdout.splitlines() if line.startswith("{")]
    data = next(e for e in events if isinstance(e, ev.Data))
    assert data.examples == 1000 and data.val_examples == 100
    evals = [e for e in events if isinstance(e, ev.Eval)]
    assert all(not e.extra for e in evals)  # BLEU and exact match are named fields of the event
    first, last = evals[0], evals[-1]
    assert last.val_bleu > first.val_bleu + 3, [e.val_bleu for e in evals]
    assert last.val_exact_match > first.val_exact_match, [e.val_exact_match for e in evals]
    assert "→" in last.sample and "reference" in last.sample

    out = cli(home, "translate", "--text", "I quit.", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[-1]["type"] == "done" and lines[-1]["translation"]
    assert "".join(x["text"] for x in lines[:-1]) == lines[-1]["translation"]
    out = cli(home, "generate", "--prompt", "x")
    assert out.returncode == 2 and "translate" in out.stderr

    # cross-attention: each token of the model's translation over the source's tokens
    out = cli(home, "attention", "--text", "I quit.", "--kind", "cross", "--json")
    assert out.returncode == 0, out.stderr
    maps = json.loads(out.stdout)
    w = np.array(maps["weights"])
    assert maps["kind"] == "cross" and maps["key_tokens"] == list("I quit.") and maps["tokens"][0] == "[BOS]"
    assert w.shape == (2, 2, len(maps["tokens"]), len("I quit."))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-4)
    out = cli(home, "attention", "--text", "I quit.", "--kind", "decoder", "--json")
    w = np.array(json.loads(out.stdout)["weights"])
    assert (w[..., np.triu_indices(w.shape[-1], 1)[0], np.triu_indices(w.shape[-1], 1)[1]] == 0).all()
