"""Every family trains on two replicas as on one device (issue 25): the replicated loop reads each
family's batches (inputs, targets, weights) and loss, and a variable without a gradient (BERT's
pooler under the masked-LM head) does not stop it. The GPT's own case, with resume and several
machines, is in test_distributed.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_llm.core import backend
from desktop_llm.core.models import families

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--layers", "1", "--heads", "2", "--width", "16", "--ffn", "32", "--context", "16", "--batch-size", "8",
        "--dropout", "0", "--warmup", "2", "--log-interval", "2", "--eval-interval", "6", "--eval-batches", "2",
        "--sample-tokens", "0", "--seed", "5", "--steps", "6", "--no-xla"]


def _train(home, family, devices, *more, tiny=TINY):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "train", str(family.example_data()), "--family",
                        family.name, *tiny, "--devices", devices, *more, "--json"],
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    assert p.returncode == 0, f"{family.name} on {devices}: {p.stderr[-2000:]}"
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("family", [f for f in families() if not f.evaluates_text], ids=lambda f: f.name)
def test_each_family_trains_on_two_replicas_as_on_one_device(tmp_path, family):
    one = _train(tmp_path / "ws", family, "cpu")
    two = _train(tmp_path / "ws", family, "cpu:2")
    assert next(e for e in two if e["type"] == "start")["replicas"] == 2
    a = {e["step"]: e["loss"] for e in one if e["type"] == "step"}
    b = {e["step"]: e["loss"] for e in two if e["type"] == "step"}
    assert sorted(a) == sorted(b) == [2, 4, 6]
    np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], rtol=2e-4, atol=2e-4)
    val = [[e["val_loss"] for e in ev if e["type"] == "eval"] for ev in (one, two)]
    assert len(val[0]) == 1
    np.testing.assert_allclose(val[1], val[0], rtol=2e-4, atol=2e-4)
    # the family's own figures too (the classifier's macro-F1 was lost on two replicas)
    evals = [next(e for e in ev if e["type"] == "eval") for ev in (one, two)]
    assert "extras_error" not in evals[0] and "extras_error" not in evals[1], evals[1].get("extras_error")
    if family.selection_metric != "loss":
        metric = f"val_{family.selection_metric}"
        assert evals[1][metric] == pytest.approx(evals[0][metric], abs=1e-6)


def test_two_workers_train_a_family_with_weights_and_an_unused_variable(tmp_path):
    """Two processes on loopback (MultiWorkerMirroredStrategy) on the family whose batches carry
    weights and whose pooler gets no gradient: both end with the same weights."""
    family = next(f for f in families() if f.masked_perplexity)  # the masked LM, named by what it is
    env = dict(os.environ, DESKTOP_LLM_HOME=str(tmp_path / "ws"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               DESKTOP_LLM_COLLECTIVE_TIMEOUT="60")
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "launch", "--workers", "2", str(family.example_data()),
                        "--family", family.name, *TINY, "--json"],
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    chief = next(e for e in events if e["type"] == "completed")
    assert events[-1]["type"] == "workers" and events[-1]["exit_codes"] == [0, 0]
    assert events[-1]["weights_sha256"] == [chief["weights_sha256"]]


@pytest.mark.skipif(not backend.installed("jax"), reason="the jax backend is not installed")
def test_two_jax_workers_train_a_family_that_scores_its_own_predictions(tmp_path):
    """On JAX across processes, a family's own figures at each evaluation (the classifier's
    macro-F1, computed by predicting the validation texts) run on the chief's local copy of the
    weights; both workers end with the same weights and the figures match one device's."""
    family = next(f for f in families() if f.selection_metric != "loss")  # the classifier, by what it does
    jax_tiny = [a for a in TINY if a != "--no-xla"]  # JAX without jit runs op by op: minutes
    one = _train(tmp_path / "ws", family, "cpu", "--backend", "jax", tiny=jax_tiny)
    env = dict(os.environ, DESKTOP_LLM_HOME=str(tmp_path / "ws"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "launch", "--workers", "2", str(family.example_data()),
                        "--family", family.name, *jax_tiny, "--backend", "jax", "--json"],
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    chief = next(e for e in events if e["type"] == "completed")
    assert events[-1]["exit_codes"] == [0, 0] and events[-1]["weights_sha256"] == [chief["weights_sha256"]]
    evals = [[e for e in ev if e["type"] == "eval"] for ev in (one, events)]
    metric = f"val_{family.selection_metric}"
    assert evals[1][0].get(metric) is not None and "extras_error" not in evals[1][0]
    np.testing.assert_allclose([e[metric] for e in evals[1]], [e[metric] for e in evals[0]], atol=1e-6)
    np.testing.assert_allclose([e["val_loss"] for e in evals[1]], [e["val_loss"] for e in evals[0]], rtol=2e-4)
