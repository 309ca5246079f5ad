"""`train --base RUN` continues a GPT run on new text (issue 29): the base's tokenizer, shape and
weights; a text the base cannot read is refused before a run exists."""

import json
import os
import subprocess
import sys
from pathlib import Path

from desktop_llm.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--layers", "1", "--heads", "2", "--width", "32", "--ffn", "64", "--context", "32", "--batch-size", "8",
         "--no-xla", "--eval-interval", "30", "--log-interval", "10", "--sample-tokens", "0"]


def cli(home, *args):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "desktop_llm", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def first_loss(out) -> float:
    return next(json.loads(x)["loss"] for x in out.stdout.splitlines() if x.startswith('{"type": "step"'))


def test_a_gpt_continues_from_its_base_on_new_text(tmp_path):
    home = tmp_path / "ws"
    drama = ROOT / "resources" / "labelled" / "poem-prose-drama" / "drama.txt"
    base = cli(home, "train", drama, "--name", "base", *SMALL, "--steps", "60", "--json")
    assert base.returncode == 0, base.stderr
    cont = cli(home, "train", ROOT / "resources" / "corpora" / "tinyshakespeare.txt", "--base", "base", "--name",
               "cont", "--steps", "30", "--batch-size", "8", "--no-xla", "--eval-interval", "30", "--log-interval",
               "10", "--sample-tokens", "0", "--json")
    assert cont.returncode == 0, cont.stderr
    store = RunStore(home)
    b, c = store.resolve("base"), store.resolve("cont")
    assert c.config.base_run == str(b.folder.resolve()) and c.config.model == b.config.model
    assert (c.tokenizer_dir / "tokenizer.json").read_bytes() == (b.tokenizer_dir / "tokenizer.json").read_bytes()
    assert c.config.training.learning_rate == 3e-4  # gentler than from scratch
    assert "Starting from the base run's weights" in cont.stdout
    # it starts where the base ended, not from a random model (whose first loss is near ln V)
    assert first_loss(cont) < first_loss(base) - 0.3, (first_loss(cont), first_loss(base))


def test_a_masked_lm_continues_from_its_base_on_new_text(tmp_path):
    home = tmp_path / "ws"
    drama = ROOT / "resources" / "labelled" / "poem-prose-drama" / "drama.txt"
    base = cli(home, "train", drama, "--family", "masked_lm", "--name", "enc", *SMALL, "--steps", "60", "--json")
    assert base.returncode == 0, base.stderr
    cont = cli(home, "train", ROOT / "resources" / "corpora" / "tinyshakespeare.txt", "--family", "masked_lm",
               "--base", "enc", "--name", "enc2", "--steps", "30", "--batch-size", "8", "--no-xla",
               "--eval-interval", "30", "--log-interval", "10", "--sample-tokens", "0", "--json")
    assert cont.returncode == 0, cont.stderr
    store = RunStore(home)
    b, c = store.resolve("enc"), store.resolve("enc2")
    assert c.config.family == "masked_lm" and c.config.base_run == str(b.folder.resolve())
    assert (c.tokenizer_dir / "tokenizer.json").read_bytes() == (b.tokenizer_dir / "tokenizer.json").read_bytes()
    assert "Starting from the base run's weights" in cont.stdout
    assert first_loss(cont) < first_loss(base) - 0.3, (first_loss(cont), first_loss(base))


def test_a_base_that_cannot_read_the_text_or_another_family_is_one_line(tmp_path):
    home = tmp_path / "ws"
    drama = ROOT / "resources" / "labelled" / "poem-prose-drama" / "drama.txt"
    assert cli(home, "train", drama, "--name", "base", *SMALL, "--steps", "30").returncode == 0
    before = sorted(p.name for p in (home / "runs").iterdir())
    out = cli(home, "train", ROOT / "resources" / "corpora" / "tangshi300.txt", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "unknown to the base run's tokenizer" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = cli(home, "train", drama, "--family", "translator", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "--base starts a run from a trained one: add --family" in out.stderr
    out = cli(home, "train", drama, "--family", "masked_lm", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "is a gpt run: a masked_lm run starts from a masked-lm run" in out.stderr
    assert sorted(p.name for p in (home / "runs").iterdir()) == before  # nothing was created
