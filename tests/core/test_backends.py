"""One engine on three Keras backends (core/backend.py, core/runners): the choice, and a run that
moves between TensorFlow, JAX and PyTorch through its checkpoints, with TensorFlow unimportable
on the other two, as on machines that have no TensorFlow."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_llm.core import backend
from desktop_llm.core.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# The CLI with `import tensorflow` failing, as on a machine without TensorFlow.
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None; from desktop_llm.cli import main; sys.exit(main())"
HAVE = backend.available()


def test_auto_takes_the_backend_that_reaches_the_gpu(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(backend, "available", lambda: ["tensorflow", "jax", "torch"])
    monkeypatch.setattr(backend, "_tensorflow_reaches_cuda", lambda: False)
    windows = backend.choose("auto", system="Windows", nvidia=True, machine="AMD64")
    assert windows.name == "torch" and "Windows" in windows.reason
    mac = backend.choose("auto", system="Darwin", nvidia=False, machine="arm64")
    assert mac.name == "torch" and "MPS" in mac.reason
    linux = backend.choose("auto", system="Linux", nvidia=True, machine="x86_64")
    assert linux.name == "jax" and "NVIDIA" in linux.reason
    monkeypatch.setattr(backend, "_tensorflow_reaches_cuda", lambda: True)
    assert backend.choose("auto", system="Linux", nvidia=True, machine="x86_64").name == "tensorflow"
    cpu = backend.choose("auto", system="Linux", nvidia=False, machine="x86_64")
    assert cpu.name == "tensorflow" and "no GPU" in cpu.reason
    # Windows without torch: what is there, and what would reach the GPU
    monkeypatch.setattr(backend, "available", lambda: ["tensorflow"])
    fallback = backend.choose("auto", system="Windows", nvidia=True, machine="AMD64")
    assert fallback.name == "tensorflow" and 'needs torch (pip install "desktop_llm[torch]")' in fallback.reason


def test_an_explicit_choice_and_the_environment(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    if "jax" in HAVE:
        assert backend.choose("auto", nvidia=False) == backend.Choice("jax", "KERAS_BACKEND says so")
    assert backend.choose("tensorflow").reason == "asked for"
    with pytest.raises(ConfigError, match="use one of auto, tensorflow, jax, torch"):
        backend.choose("mxnet")
    monkeypatch.setattr(backend, "installed", lambda name: name == "tensorflow")
    with pytest.raises(ConfigError, match=r'The torch backend is not installed here: pip install "desktop_llm\[torch\]"'):
        backend.choose("torch")


def test_another_backend_once_keras_is_loaded_is_refused():
    import keras

    loaded = keras.backend.backend()
    other = next(b for b in ("jax", "torch", "tensorflow") if b != loaded and b in HAVE) if len(HAVE) > 1 else None
    if other is None:
        pytest.skip("one backend installed")
    with pytest.raises(ConfigError, match="needs a new process"):
        backend.apply(other)
    assert backend.apply("auto").name == loaded


def test_the_step_events_learning_rate_is_keras_schedule():
    from desktop_llm.core.config import RunConfig, TrainConfig
    from desktop_llm.core.training.schedule import learning_rate_at, learning_rate_schedule

    for warmup in (0, 30):
        cfg = RunConfig(training=TrainConfig(max_steps=200, warmup_steps=warmup, learning_rate=1e-3,
                                             min_learning_rate=1e-4))
        ours, keras_schedule = learning_rate_at(cfg), learning_rate_schedule(cfg)
        for step in (0, 1, 15, 29, 30, 31, 100, 199, 200, 250):
            assert math.isclose(ours(step), float(keras_schedule(step)), rel_tol=1e-5, abs_tol=1e-9), (warmup, step)


def _segment(home, args, name, backend_name, stop_at_once=True):
    """One trainer process on `backend_name` (TensorFlow unimportable unless it is the backend);
    asked to stop as soon as it starts (a line on its stdin), so it ends at its first checkpoint,
    or left to finish. Its JSON events."""
    code = NO_TENSORFLOW if backend_name != "tensorflow" else "import sys; from desktop_llm.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), DESKTOP_LLM_NO_FAST_EXIT="1")
    env.pop("KERAS_BACKEND", None)
    p = subprocess.Popen([sys.executable, "-c", code, "--home", str(home), "train", *args, "--backend", backend_name,
                          "--json", *(["--control-stdin"] if stop_at_once else [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate("stop\n" if stop_at_once else "", timeout=600)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"{name}: {err[-3000:]}"
    return events


@pytest.mark.slow
@pytest.mark.skipif(not {"jax", "torch"} <= set(HAVE), reason="needs the jax and torch extras")
def test_a_run_moves_between_backends_through_its_checkpoints(tmp_path, shakespeare_small):
    """TensorFlow -> JAX -> PyTorch -> TensorFlow, each process stopped after its first steps: the
    weights and AdamW's state cross over, and every step's loss is the one-backend run's."""
    from desktop_llm.store import RunStore

    home = tmp_path / "ws"
    shape = [str(shakespeare_small), "--layers", "1", "--heads", "2", "--width", "32", "--context", "32",
             "--batch-size", "8", "--steps", "60", "--eval-interval", "30", "--log-interval", "10", "--seed", "3"]
    whole = _segment(home, [*shape, "--name", "one"], "one backend", "tensorflow", stop_at_once=False)
    reference = {e["step"]: e["loss"] for e in whole if e["type"] == "step"}
    events = _segment(home, [*shape, "--name", "moved"], "tensorflow", "tensorflow")
    run = RunStore(home).get(next(e["run"] for e in events if e["type"] == "start"))
    seen = {"tensorflow"}
    for name in ("jax", "torch", "tensorflow"):
        more = _segment(home, ["--resume", run.id], name, name, stop_at_once=name != "tensorflow")
        start = next(e for e in more if e["type"] == "start")
        assert start["backend"] == name and start["step"] > 0, start
        assert run.status()["backend"] == name
        seen.add(name)
        events += more
    assert seen == {"tensorflow", "jax", "torch"}
    assert events[-1]["type"] == "completed"
    moved = {e["step"]: e["loss"] for e in events if e["type"] == "step"}
    assert sorted(moved) == sorted(reference)  # every step once: stops and resumes lost none
    for step, loss in reference.items():
        assert abs(moved[step] - loss) < 2e-3 * max(1.0, loss), (step, moved[step], loss)
    resumed = [e["step"] for e in events if e["type"] == "resumed_from"]
    assert len(resumed) == 3 and resumed == sorted(resumed) and resumed[-1] < 60


@pytest.mark.slow
@pytest.mark.skipif("jax" not in HAVE, reason="needs the jax extra")
def test_jax_trains_on_two_logical_devices_as_on_one(tmp_path, shakespeare_small):
    """keras.distribution.DataParallel over two logical CPU devices: the batch split 4 + 4, the
    same losses as on one device (Keras averages the loss over the global batch)."""
    home = tmp_path / "ws"
    args = [str(shakespeare_small), "--layers", "1", "--heads", "2", "--width", "32", "--context", "16",
            "--batch-size", "8", "--steps", "20", "--eval-interval", "10", "--log-interval", "5", "--seed", "3",
            "--sample-tokens", "0", "--no-probes"]
    one = _segment(home, [*args, "--devices", "cpu"], "one device", "jax", stop_at_once=False)
    two = _segment(home, [*args, "--devices", "cpu:2"], "two devices", "jax", stop_at_once=False)
    start = next(e for e in two if e["type"] == "start")
    assert start["replicas"] == 2 and start["per_replica_batch"] == 4 and "2 replicas" in start["device"]
    a = {e["step"]: e["loss"] for e in one if e["type"] == "step"}
    b = {e["step"]: e["loss"] for e in two if e["type"] == "step"}
    assert sorted(a) == sorted(b) == [5, 10, 15, 20]
    for step, loss in a.items():
        assert abs(loss - b[step]) < 1e-4, (step, loss, b[step])
    with pytest.raises(AssertionError, match="trains on one device"):  # and torch says it cannot
        _segment(home, [*args, "--devices", "cpu:2"], "torch", "torch", stop_at_once=False)


SHARDING = """
import os, sys, json
os.environ["KERAS_BACKEND"] = "jax"
sys.modules["tensorflow"] = None
from desktop_llm.core.config import ModelConfig
from desktop_llm.core.models import get_family
from desktop_llm.core.runners import jax_runner
mcfg = ModelConfig(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=8)
gpt = get_family("gpt")
dist = jax_runner.setup("cpu:2", model_parallel=2, layout=lambda mesh: gpt.layout_map(mesh, mcfg))
model = gpt.build(mcfg, seed=1)
specs = {v.path: list(v.value.sharding.spec) + [None] * (len(v.shape) - len(v.value.sharding.spec)) for v in model.weights}
print(json.dumps({"specs": specs, "describe": dist.describe()}))
"""


@pytest.mark.slow
@pytest.mark.skipif("jax" not in HAVE, reason="needs the jax extra")
def test_jax_shards_the_gpts_weights_over_two_devices(tmp_path, shakespeare_small):
    """--model-parallel 2 on two logical CPU devices: Megatron's split of every attention and
    feed-forward kernel and of the embeddings (keras.distribution.ModelParallel with the GPT's
    LayoutMap), and the losses of one device; TensorFlow says it is jax's."""
    p = subprocess.run([sys.executable, "-c", SHARDING], capture_output=True, text=True, timeout=300, check=False,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.splitlines()[-1])
    specs = got["specs"]
    assert specs["token_embedding/embeddings"] == [None, "model"]
    assert specs["transformer_layer_0/self_attention/query/kernel"] == [None, "model", None]
    assert specs["transformer_layer_0/self_attention/attention_output/kernel"] == ["model", None, None]
    assert specs["transformer_layer_0/feedforward_intermediate_dense/kernel"] == [None, "model"]
    assert specs["transformer_layer_0/feedforward_output_dense/kernel"] == ["model", None]
    assert all(a is None for a in specs["layer_norm/gamma"])  # the norms are replicated
    assert "each weight sharded over 2" in got["describe"]
    home = tmp_path / "ws"
    args = [str(shakespeare_small), "--layers", "1", "--heads", "2", "--width", "32", "--context", "16",
            "--batch-size", "8", "--steps", "20", "--eval-interval", "10", "--log-interval", "5", "--seed", "3",
            "--sample-tokens", "0", "--no-probes"]
    one = _segment(home, [*args, "--devices", "cpu"], "one device", "jax", stop_at_once=False)
    sharded = _segment(home, [*args, "--devices", "cpu:2", "--model-parallel", "2"], "sharded", "jax",
                       stop_at_once=False)
    assert "each weight sharded over 2" in next(e for e in sharded if e["type"] == "start")["device"]
    a = {e["step"]: e["loss"] for e in one if e["type"] == "step"}
    b = {e["step"]: e["loss"] for e in sharded if e["type"] == "step"}
    assert sorted(a) == sorted(b) == [5, 10, 15, 20]
    for step, loss in a.items():
        assert abs(loss - b[step]) < 1e-4, (step, loss, b[step])
    with pytest.raises(AssertionError, match="shards the weights on the jax backend"):
        _segment(home, [*args, "--devices", "cpu:2", "--model-parallel", "2"], "tf", "tensorflow", stop_at_once=False)


@pytest.mark.slow
@pytest.mark.skipif("jax" not in HAVE, reason="needs the jax extra")
@pytest.mark.parametrize("family", [f.name for f in __import__("desktop_llm.core.models", fromlist=["families"]).families()])
def test_every_family_trains_on_jax_without_tensorflow(tmp_path, family):
    """Each family's batches (inputs, targets, weights), loss, metrics, evaluation figures and
    sample go through Keras' own step on JAX, in a process where TensorFlow cannot be imported."""
    from desktop_llm.core.models import get_family

    fam = get_family(family)
    events = _segment(tmp_path / "ws", [str(fam.example_data()), "--family", family, "--layers", "1", "--heads", "2",
                                        "--width", "16", "--ffn", "32", "--context", "16", "--batch-size", "8",
                                        "--log-interval", "3", "--eval-interval", "6", "--eval-batches", "2",
                                        "--sample-tokens", "8", "--steps", "6"], family, "jax", stop_at_once=False)
    assert [e["step"] for e in events if e["type"] == "step"] == [3, 6]
    evals = [e for e in events if e["type"] == "eval"]
    assert len(evals) == 1 and math.isfinite(evals[0]["val_loss"]) and "extras_error" not in evals[0]
    assert events[-1]["type"] == "completed"
    start = next(e for e in events if e["type"] == "start")
    assert start["backend"] == "jax" and start["backend_reason"] == "asked for"
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("TensorBoard logs need TensorFlow" in w for w in warnings)
    assert not any("probe" in w for w in warnings)  # the probe ran on JAX
    if fam.writes_text and not fam.chat_template:
        _generates_and_refuses_tensorflow_exports(tmp_path, tmp_path / "ws", start["run"], evals[-1])


def _generates_and_refuses_tensorflow_exports(tmp_path, home, run_id, last_eval):
    """A JAX run without TensorFlow: its sample, `generate`, and exports only TensorFlow writes."""
    assert last_eval["sample"] and not last_eval["sample"].startswith("(no sample")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)
    gen = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "--home", str(home), "generate", run_id,
                          "--backend", "jax", "--prompt", "ROMEO:", "--max-tokens", "12", "--seed", "1", "--json"],
                         check=False, capture_output=True, text=True, env=env, timeout=600)
    assert gen.returncode == 0, gen.stderr[-2000:]
    done = [json.loads(line) for line in gen.stdout.splitlines() if line.startswith("{")][-1]
    assert done["tokens"] == 12 and done["text"], done
    # what only TensorFlow writes is refused in one line, and nothing is left behind
    for fmt, says in (("savedmodel", "Exporting as savedmodel needs TensorFlow"),
                      ("keras-hub", "This export needs a library that is not installed")):
        out = tmp_path / f"export-{fmt}"
        refused = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "--home", str(home), "export", run_id,
                                  "--format", fmt, "--backend", "jax", "--out", str(out)],
                                 check=False, capture_output=True, text=True, env=env, timeout=600)
        assert refused.returncode == 2 and refused.stderr.strip().startswith(f"error: {says}"), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not out.exists()
