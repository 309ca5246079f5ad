"""The masked-LM family for real: BERT's masking, a tiny encoder that learns beyond the unigram
baseline, fill-mask with probabilities, and the CLI's `--family masked_lm` and `fill-mask`."""

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from desktop_llm.core.data import TokenData
from desktop_llm.core.models.masked_lm import mask_windows, n_selected
from desktop_llm.store import RunStore
from tests.core.test_robustness import _config


def test_bert_masking_selects_15_percent_and_replaces_80_10_10():
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 50, size=(2000, 40))
    inputs, targets = mask_windows(windows, 50, np.random.default_rng(1))
    pos = inputs["mask_positions"]
    assert pos.shape == (2000, n_selected(40)) == (2000, 6)
    assert all(len(set(row)) == 6 for row in pos)  # distinct positions
    assert (targets == np.take_along_axis(windows, pos, axis=1)).all()
    put = np.take_along_axis(inputs["token_ids"], pos, axis=1)
    masked, kept = (put == 50).mean(), (put == targets).mean()
    assert abs(masked - 0.8) < 0.02 and 0.09 < kept < 0.13  # 10% kept + random draws that hit the target
    untouched = np.ones_like(windows, bool)
    np.put_along_axis(untouched, pos, False, axis=1)
    assert (inputs["token_ids"][untouched] == windows[untouched]).all()
    again, _ = mask_windows(windows, 50, np.random.default_rng(1))
    assert (again["token_ids"] == inputs["token_ids"]).all()  # the same seed, the same masks


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, shakespeare_small):
    from desktop_llm.core.training import train_run

    store = RunStore(tmp_path_factory.mktemp("mlm-ws"))
    cfg = _config(shakespeare_small, steps=600, eval_interval=200, batch_size=32, learning_rate=2e-3,
                  min_learning_rate=2e-4, warmup_steps=50, sample_tokens=1)
    cfg = replace(cfg, name="mlm", family="masked_lm",
                  model=replace(cfg.model, num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128,
                                sequence_length=32))
    run = store.create(cfg)
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed", st
    return store, run, events


def test_a_tiny_encoder_learns_masked_tokens_beyond_the_unigram_baseline(mlm_run):
    _, run, events = mlm_run
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [200, 400, 600]
    counts = Counter(TokenData(run.data_dir).val.tolist())
    unigram = max(counts.values()) / sum(counts.values())  # always guessing the commonest token
    assert evals[-1]["val_accuracy"] > unigram + 0.04, (evals[-1]["val_accuracy"], unigram)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert abs(evals[-1]["val_ppl"] - np.exp(evals[-1]["val_loss"])) < 1e-6 * evals[-1]["val_ppl"]
    assert "[MASK]" in evals[-1]["sample"] and "→" in evals[-1]["sample"]
    assert json.loads(run.config_path.read_text())["family"] == "masked_lm"


def test_a_masked_lm_probes_itself_reading_both_ways(mlm_run):
    """The Learning page's records for an encoder: each token's loss when masked, the prompts read
    back token by token (what fill-mask answers for each), heads and health with attention both ways."""
    from desktop_llm.core import heads, probes
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.models.masked_lm.fill_mask import fill_mask
    from desktop_llm.core.models.masked_lm.probe import MaskedProber

    store, run, _ = mlm_run
    recs = probes.records(run)
    assert [r["step"] for r in recs] == [200, 400, 600]
    for r in recs:
        assert len(r["token_losses"]) == len(r["position_loss"]) == 32 and all(x > 0 for x in r["token_losses"])
        assert r["health"]["groups"] == ["embeddings", "block 0", "block 1", "output"]
        assert all(g > 0 for g in r["health"]["grad_norm"]) and len(r["health"]["dormant"]) == 2
        entropy = heads.matrix(r["heads"], "entropy")
        assert entropy.shape == (2, 2) and ((0 <= entropy) & (entropy <= 1)).all()  # over all T positions
    # every token masked once, about 15% at a time
    sets = MaskedProber._sets(32)
    assert sorted(set(sets.ravel().tolist())) == list(range(32)) and sets.shape == (7, 5)
    # the timeline's cells: each token of a prompt as fill-mask guesses it, masked alone
    model, tok, _ = load_for_inference(run, "latest")
    prompt = recs[-1]["prompts"][0]
    cells = recs[-1]["continuations"][0]
    ids = tok.encode(prompt)
    assert len(cells["tokens"]) == len(ids)
    for p in (0, len(ids) // 2, len(ids) - 1):
        text = tok.decode(ids[:p]) + "[MASK]" + tok.decode(ids[p + 1:])
        best = fill_mask(model, tok, text, top_k=1)[0]["candidates"][0]
        assert cells["tokens"][p] == tok.decode([best["id"]])
        assert cells["surprise"][p] == pytest.approx(-np.log(best["p"]), abs=0.01)
    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home))
    out = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id, "--sentences", "--json"],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    mapped = json.loads(out.stdout)["sentences"]  # the Sentences tab's figures, from the command line
    assert mapped["steps"] == [200, 400, 600] and mapped["sources"] == ["shakespeare_small.txt"]
    assert mapped["chance"] == 1.0 and len(mapped["agreement"]) == 3 and 0 <= mapped["baseline"] <= 1
    out = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id], capture_output=True, text=True,
                         env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "each token guessed with it masked" in out.stdout and "head atlas at step 600" in out.stdout


def test_fill_mask_gives_probabilities_per_mask(mlm_run):
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.models.masked_lm.fill_mask import fill_mask

    _, run, _ = mlm_run
    model, tok, _ = load_for_inference(run)
    out = fill_mask(model, tok, "To be or [MASK]ot to be, th[MASK]t is", top_k=10)
    assert len(out) == 2 and all(len(m["candidates"]) == 10 for m in out)
    for m in out:
        ps = [c["p"] for c in m["candidates"]]
        assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1 + 1e-6
        assert all(c["token"] != "[MASK]" for c in m["candidates"])  # specials are never guessed
    with pytest.raises(ConfigError, match="MASK"):
        fill_mask(model, tok, "no mask here")
    with pytest.raises(ConfigError, match="at most 32"):
        fill_mask(model, tok, "x" * 40 + "[MASK]")


def test_the_cli_trains_a_masked_lm_and_fills_masks(mlm_run):
    store, _run, _ = mlm_run
    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home))
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "fill-mask", "mlm", "--text", "O R[MASK]meo", "--top-k", "3",
                        "--json"], check=False, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(p.stdout.splitlines()[-1])
    assert len(result["masks"]) == 1 and len(result["masks"][0]["candidates"]) == 3
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "generate", "mlm", "--prompt", "x"], capture_output=True,
                       text=True, env=env, timeout=600, check=False)
    assert p.returncode == 2 and "fill-mask" in p.stderr and "Traceback" not in p.stderr


def test_perplexity_refuses_a_masked_lm_and_attention_is_bidirectional(mlm_run):
    """Attention maps of an encoder are the full matrix (each token sees every token), computed by
    our own code from the layers' weights: equal to what Keras' attention layer itself returns."""
    import numpy as np

    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.evaluation import evaluate_text
    from desktop_llm.core.inspection import inspect_text, probe, to_numpy
    from desktop_llm.core.loading import load_for_inference

    _, run, _ = mlm_run
    model, tok, _ = load_for_inference(run)
    with pytest.raises(ConfigError, match="fill-mask"):
        evaluate_text(model, tok, "To be")
    maps = inspect_text(model, tok, "To be or not")
    _L, _H, T, T2 = maps.weights.shape
    assert T == T2 == len(maps.tokens) and maps.kind == "bidirectional"
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)
    assert (maps.weights[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] > 0).all()  # sees ahead
    bb = model.backbone
    ids = np.array([maps.token_ids])
    xs = probe(bb, [layer.name for layer in bb.transformer_layers])(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids, bool)})
    for layer, x, mine in zip(bb.transformer_layers, to_numpy(xs), maps.weights):
        # keras-hub's private sublayer, in this test only: the reference the maps must equal
        _, keras_scores = layer._self_attention_layer(query=x, value=x, return_attention_scores=True)
        np.testing.assert_allclose(mine, np.asarray(keras_scores[0]), atol=1e-5)


def test_runs_saved_before_families_load_as_gpt_runs_and_unknown_families_are_refused():
    from desktop_llm.core.config import ConfigError, RunConfig

    old = RunConfig(data=RunConfig().data).to_dict()
    old.pop("family")
    old["data"]["paths"] = ["x.txt"]
    assert RunConfig.from_dict(old).family == "gpt"
    from desktop_llm.core.models import get_family

    with pytest.raises(ConfigError, match="masked_lm"):  # the registry's one rule, wherever a run starts
        get_family(RunConfig.from_dict({**old, "family": "diffusion"}).family)


def test_fill_mask_without_a_mask_is_refused_before_any_run_is_loaded(tmp_path):
    """The argument is checked first: in an empty workspace the answer is about [MASK], not about
    the missing run (it used to load the model for seconds before refusing)."""
    env = dict(os.environ, DESKTOP_LLM_HOME=str(tmp_path / "empty"))
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "fill-mask", "--text", "no mask here"], check=False,
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "[MASK]" in p.stderr and "No runs" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "tensorflow" not in p.stderr.lower()
