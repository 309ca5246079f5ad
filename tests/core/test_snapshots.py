"""Weight snapshots over training and the embedding space read from them (issue 28, view 5)."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from desktop_llm.core import embedding_space, snapshots


def test_thinning_keeps_the_first_and_newest_and_spaces_the_rest_by_log_step(tmp_path):
    run = SimpleNamespace(folder=tmp_path)
    snapshots.folder(run).mkdir()
    for step in range(100, 2100, 100):  # 20 evaluations, 1 KB each, a budget of 6 KB
        (snapshots.folder(run) / f"step-{step:08d}.npz").write_bytes(b"x" * 1024)
    removed = snapshots.thin(run, 6 * 1024)
    kept = snapshots.steps(run)
    assert len(kept) == 6 and kept[0] == 100 and kept[-1] == 2000 and len(removed) == 14
    ratios = [b / a for a, b in itertools.pairwise(kept)]
    assert max(ratios) / min(ratios) < 2.5  # roughly even in log(step): dense early, sparse late
    assert snapshots.usage(run) == (6, 6 * 1024)
    snapshots.truncate(run, 1000)  # a resume from the checkpoint at step 1,000
    assert max(snapshots.steps(run)) <= 1000


def test_procrustes_undoes_a_rotation_and_a_reflection():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(30, 2))
    theta = 1.1
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.diag([1, -1])
    assert np.allclose(embedding_space.procrustes(B @ R, B), B)


def test_a_probed_run_keeps_snapshots_and_maps_its_embedding_space(probed):
    _store, run = probed
    assert snapshots.steps(run) == [20, 40, 60]  # the default budget keeps every one of a tiny model
    w = snapshots.load(run, 60)
    assert w[embedding_space.TOKENS].dtype == np.float32 and w[embedding_space.TOKENS].shape[1] == 32
    s = embedding_space.space(run)
    V = w[embedding_space.TOKENS].shape[0]
    assert s["steps"] == [20, 40, 60] and s["coords"].shape == (3, V, 2)
    assert s["overlap"][-1] == pytest.approx(1.0) and 0 <= s["overlap"][0] <= 1
    assert s["drift"][0] is None and all(d > 0 for d in s["drift"][1:])
    assert s["positions"].shape == (32, 32) and np.allclose(np.diag(s["positions"]), 1.0, atol=1e-3)
    near = embedding_space.nearest_over_training(s, token=5, k=3)
    assert [step for step, _ in near] == [20, 40, 60] and all(len(n) == 3 and 5 not in n for _, n in near)


def test_the_model_at_a_kept_step_loads_and_compare_runs_one_prompt_through_several_steps(probed):
    import json
    import os
    import subprocess
    import sys

    from desktop_llm.core.loading import NoCheckpoint, load_at_step, load_for_inference

    store, run = probed
    model, _tok, ckpt = load_for_inference(run, "step:20")
    assert ckpt.step == 20
    kept = snapshots.load(run, 20)
    assert all(np.array_equal(np.asarray(w.numpy()), kept[w.path]) for w in model.weights)
    latest, _, _ = load_for_inference(run, "latest")
    assert not np.array_equal(latest.weights[0].numpy(), model.weights[0].numpy())  # not the step-60 model
    with pytest.raises(NoCheckpoint, match="keeps no snapshot at step 25; it keeps steps 20, 40, 60"):
        load_at_step(run, 25)

    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)

    out = cli("compare", f"{run.id}@20", f"{run.id}@latest", "--prompt", "ROMEO:", "--seed", "3",
              "--max-tokens", "12", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [c["step"] for c in got["columns"]] == [20, 60] and got["seed"] == 3
    alone = cli("generate", run.id, "--checkpoint", "20", "--prompt", "ROMEO:", "--seed", "3", "--max-tokens", "12",
                "--json")
    assert json.loads(alone.stdout.splitlines()[-1])["text"] == got["columns"][0]["text"]  # the same draws
    text = cli("compare", f"{run.id}@40", f"{run.id}@60", "--prompt", "ROMEO:", "--max-tokens", "5")
    assert text.returncode == 0 and text.stdout.count("── probed @ ") == 2
    assert "the same prompt and seed" in text.stderr
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.side_by_side import parse_target

    assert parse_target("tour@1200") == ("tour", "1200") and parse_target("tour") == ("tour", "best")
    with pytest.raises(ConfigError, match="after the @ comes best, latest or a step number"):
        parse_target(f"{run.id}@soon")


def test_a_snapshot_whose_model_name_was_numbered_loads_by_the_weights_order():
    """A classifier trained in a process that built its model twice saved "mean_pooled_classifier_2/
    logits/kernel"; a fresh process names it "mean_pooled_classifier/logits/kernel"."""
    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models import get_family

    model = get_family("classifier").build(ModelConfig(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8,
                                                       intermediate_dim=16, sequence_length=8), num_classes=3,
                                           pooling="mean")
    rng = np.random.default_rng(0)
    saved = {f"renamed_{i}/{w.path}": rng.normal(size=tuple(w.shape)).astype(np.float32)
             for i, w in enumerate(model.weights)}
    snapshots.assign(model, saved, "The snapshot")
    assert all(np.allclose(w.numpy(), v) for w, v in zip(model.weights, saved.values()))
    wrong = dict(itertools.islice(saved.items(), len(saved) - 1))  # one weight short
    with pytest.raises(ValueError, match="The snapshot does not fit its model"):
        snapshots.assign(model, wrong, "The snapshot")
