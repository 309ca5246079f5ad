"""`train --base RUN` continues a GPT run on new text (issue 29): the base's tokenizer, shape and
weights; a text the base cannot read is refused before a run exists."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


DRAMA = ROOT / "resources" / "labelled" / "poem-prose-drama" / "drama.txt"


@pytest.fixture(scope="module")
def based(tmp_path_factory):
    """One workspace with a GPT run named "base" (60 steps on the bundled drama), for the tests that
    continue one: (home, its training's output)."""
    home = tmp_path_factory.mktemp("ws")
    base = cli(home, "train", DRAMA, "--name", "base", *SMALL, "--steps", "60", "--json")
    assert base.returncode == 0, base.stderr
    return home, base


def test_a_gpt_continues_from_its_base_on_new_text(based):
    home, base = based
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


def test_a_base_that_cannot_read_the_text_or_another_family_is_one_line(based):
    home, _ = based
    drama = DRAMA
    before = sorted(p.name for p in (home / "runs").iterdir())
    out = cli(home, "train", ROOT / "resources" / "corpora" / "tangshi300.txt", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "unknown to the base run's tokenizer" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = cli(home, "train", drama, "--family", "translator", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "--base starts a run from a trained one: add --family" in out.stderr
    out = cli(home, "train", drama, "--family", "masked_lm", "--base", "base", "--steps", "10")
    assert out.returncode == 2 and "is a gpt run: a masked_lm run starts from a masked-lm run" in out.stderr
    assert sorted(p.name for p in (home / "runs").iterdir()) == before  # nothing was created


def test_lora_trains_only_its_factors_and_exports_plain_weights(based, tmp_path):
    """`--lora-rank N` (keras-hub's enable_lora): the attention's query and value get rank-N factors,
    only they train, the base's kernels stay as they were; the card and the start event say how
    many parameters train; an export folds the factors in (plain keras-hub weights, the same logits)."""
    import numpy as np

    from desktop_llm.core.export import export_run
    from desktop_llm.core.loading import load_for_inference

    home, _ = based
    shakespeare = ROOT / "resources" / "corpora" / "tinyshakespeare.txt"
    out = cli(home, "train", shakespeare, "--name", "nobase", "--lora-rank", "4", "--steps", "10")
    assert out.returncode == 2 and "give the run to start from (--base RUN)" in out.stderr
    lora = cli(home, "train", shakespeare, "--base", "base", "--name", "lora", "--lora-rank", "4", "--steps", "30",
               "--batch-size", "8", "--no-xla", "--eval-interval", "30", "--log-interval", "10", "--sample-tokens",
               "0", "--lr", "3e-3", "--json")
    assert lora.returncode == 0, lora.stderr
    start = next(json.loads(x) for x in lora.stdout.splitlines() if x.startswith('{"type": "start"'))
    # SMALL: one block of width 32, 2 heads of 16; query and value each train A (32 x 2 x 4), B (4 x 16) and
    # their bias (2 x 16), as keras-hub's enable_lora leaves the projections' biases trainable
    assert start["trainable_parameters"] == 2 * (32 * 2 * 4 + 4 * 16 + 2 * 16) == 704 < start["parameters"] // 10
    store = RunStore(home)
    run = store.resolve("lora")
    assert run.config.training.lora_rank == 4
    model, tok, _ = load_for_inference(run, "best")
    base, _, _ = load_for_inference(store.resolve("base"), "best")
    frozen = {w.path: w.numpy() for w in base.weights}
    mine = {w.path: w.numpy() for w in model.weights}
    learned = ("query/kernel", "query/bias", "value/kernel", "value/bias")
    kept = [p for p in frozen if not p.endswith(learned)]
    assert len(kept) == 16 and all(np.array_equal(mine[p], frozen[p]) for p in kept)  # the base's, untouched
    for p in ("transformer_layer_0/self_attention/query/kernel", "transformer_layer_0/self_attention/value/kernel"):
        delta = mine[p] - frozen[p]  # the checkpoint folds the learned update in: rank 4 at most, per head
        assert np.abs(delta).max() > 1e-4
        assert all(np.linalg.matrix_rank(delta[:, h, :], tol=1e-6) <= 4 for h in range(2))
    from desktop_llm.store.card import run_card

    assert "(LoRA rank 4: 704 trained)" in dict(run_card(run, {"id": run.id, **run.status()}))["model"]
    result = export_run(run, "keras-hub", out=tmp_path / "preset")
    import keras_hub

    lm = keras_hub.models.CausalLM.from_preset(str(result.path))
    ids = np.asarray([tok.encode("ROMEO: to be")], "int32")
    theirs = lm.backbone.token_embedding(lm.backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)}),
                                         reverse=True)
    np.testing.assert_allclose(np.asarray(theirs), np.asarray(model(ids)), atol=2e-3)  # tanh-GELU apart


def test_a_resumed_lora_run_learns_on_from_the_folded_checkpoint(tmp_path):
    """Keras folds LoRA's factors into the kernel on save and zeroes both on load, where no gradient
    reaches them; `restart_factors` draws A again: the same function, and B learns."""
    import numpy as np
    import tensorflow as tf

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models import lora
    from desktop_llm.core.models.backbones.gpt import build_model

    shape = ModelConfig(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=8,
                        vocabulary_size=20)
    model = build_model(shape, seed=1)
    lora.enable(model, 2)
    b = next(w for w in model.weights if w.path.endswith("query/lora_kernel_b"))
    b.assign(np.full(b.shape, 0.5, "float32"))  # as if trained
    ids = np.arange(8, dtype="int32")[None] % 20
    before = np.asarray(model(ids))
    model.save_weights(str(tmp_path / "ckpt.weights.h5"))
    resumed = build_model(shape, seed=2)
    lora.enable(resumed, 2)
    resumed.load_weights(str(tmp_path / "ckpt.weights.h5"))
    np.testing.assert_allclose(np.asarray(resumed(ids)), before, atol=1e-5)  # folded: the same function

    def grad_of_b(m):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(m(ids) ** 2)
        factor = next(w for w in m.trainable_weights if w.path.endswith("query/lora_kernel_b"))
        return np.abs(tape.gradient(loss, factor.value)).max()

    assert grad_of_b(resumed) == 0  # both factors zero: stuck
    lora.restart_factors(resumed, seed=3)
    np.testing.assert_allclose(np.asarray(resumed(ids)), before, atol=1e-5)  # B is still zero
    assert grad_of_b(resumed) > 0


def _gpt2_preset(folder):
    """A tiny GPT-2 preset written with keras-hub alone, as one downloaded elsewhere would be: a
    byte-level BPE tokenizer (GPT-2's byte-to-unicode table, two merges) and random weights."""
    import keras_hub

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = dict(zip(printable, printable)), 0
    for b in range(256):  # GPT-2's byte-to-unicode table: every byte a printable character
        if b not in chars:
            chars[b] = 256 + n
            n += 1
    pieces = [chr(chars[b]) for b in range(256)]
    vocabulary = {p: i for i, p in enumerate([*pieces, "Ġt", "he", "<|endoftext|>"])}
    tok = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=vocabulary, merges=["Ġ t", "h e"])
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
                                             hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=tok, sequence_length=32)).save_to_preset(str(folder))
    return len(vocabulary)


def test_a_gpt_or_chat_run_continues_a_keras_hub_preset_folder(tmp_path):
    """`--base` takes a keras-hub GPT-2 preset folder: its tokenizer (read by keras-hub), its shape
    and its weights (the first model computes what the preset's does); a chat run adds its template."""
    import numpy as np

    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.models import get_family
    from desktop_llm.core.tokenizers import load_tokenizer

    preset = tmp_path / "gpt2-tiny"
    vocabulary = _gpt2_preset(preset)
    home = tmp_path / "ws"
    shakespeare = ROOT / "resources" / "corpora" / "tinyshakespeare.txt"
    out = cli(home, "train", shakespeare, "--base", preset, "--name", "cont", "--steps", "20", "--batch-size", "8",
              "--no-xla", "--eval-interval", "20", "--log-interval", "10", "--sample-tokens", "8", "--json")
    assert out.returncode == 0, out.stderr
    assert "Starting from the keras-hub preset's weights" in out.stdout
    run = RunStore(home).resolve("cont")
    cfg = run.config
    assert (cfg.base_family, cfg.model.num_layers, cfg.model.hidden_dim, cfg.model.sequence_length) == (
        "keras-hub preset", 1, 32, 32)
    tok = load_tokenizer(run.tokenizer_dir)
    assert tok.kind == "keras-hub" and tok.vocabulary_size == vocabulary
    assert tok.encode(" the") == [256, 257]  # the preset's own merges: "Ġt", "he"
    assert tok.decode(tok.encode("the thee, 你好")) == "the thee, 你好"
    # the model a run starts from computes what keras-hub's own GPT-2 does (tanh- vs exact GELU apart)
    import keras_hub

    family = get_family("gpt")
    fresh = family.on_base(RunConfig(), preset)
    from dataclasses import replace

    mcfg = replace(fresh.model, vocabulary_size=vocabulary)
    model = family.build(mcfg)
    family.initialise(model, fresh, mcfg, lambda e: None)
    theirs = keras_hub.models.CausalLM.from_preset(str(preset))
    ids = np.asarray([tok.encode("To be, or not to be")[:32]], "int32")
    want = theirs.backbone.token_embedding(theirs.backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)}),
                                           reverse=True)
    np.testing.assert_allclose(np.asarray(model(ids)), np.asarray(want), atol=2e-3)
    # a chat run from the same preset: its template's tokens after the preset's vocabulary
    convs = tmp_path / "c.tsv"
    convs.write_text("".join(f"Say {i}\tI say {i}.\n" for i in range(40)), "utf-8")
    chat = cli(home, "train", "--family", "chat", convs, "--base", preset, "--name", "chat", "--steps", "10",
               "--batch-size", "8", "--no-xla", "--eval-interval", "10", "--log-interval", "10", "--sample-tokens",
               "0", "--json")
    assert chat.returncode == 0, chat.stderr
    assert load_tokenizer(RunStore(home).resolve("chat").tokenizer_dir).vocabulary_size == vocabulary + 4
    out = cli(home, "train", shakespeare, "--family", "masked_lm", "--base", preset, "--steps", "10")
    assert out.returncode == 2 and "is a keras-hub preset" in out.stderr


def test_a_desktop_llm_keras_hub_export_is_a_base_too(based, tmp_path):
    """Our own keras-hub export of a char run (its RWKV tokenizer reads text with the run's ids)."""
    from desktop_llm.core.export import export_run
    from desktop_llm.core.tokenizers import load_tokenizer

    home, _ = based
    drama = DRAMA
    base = RunStore(home).resolve("base")
    folder = export_run(base, "keras-hub", out=tmp_path / "export").path
    out = cli(home, "train", drama, "--base", folder, "--name", "again", "--steps", "10", "--batch-size", "8",
              "--no-xla", "--eval-interval", "10", "--log-interval", "10", "--sample-tokens", "0")
    assert out.returncode == 0, out.stderr
    text = "ROMEO: What light"
    assert load_tokenizer(RunStore(home).resolve("again").tokenizer_dir).encode(text) == \
        load_tokenizer(base.tokenizer_dir).encode(text)
