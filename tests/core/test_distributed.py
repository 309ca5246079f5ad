"""Data parallelism through tf.distribute, on this machine's CPU: two logical devices stand in
for two GPUs (MirroredStrategy), two processes on loopback for two machines
(MultiWorkerMirroredStrategy). Each trainer runs in its own process, as the CLI starts it:
logical devices and the multi-worker strategy must be set up before TensorFlow starts."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from desktop_llm.core import backend
from desktop_llm.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--layers", "1", "--heads", "2", "--width", "32", "--ffn", "64", "--context", "16", "--batch-size", "12",
        "--warmup", "2", "--log-interval", "2", "--eval-interval", "10", "--eval-batches", "2",
        "--sample-tokens", "0", "--seed", "3"]


def _env(home, **extra):
    return dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **extra)


def _cli(home, *args, timeout=600, **extra):
    p = subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True,
                       env=_env(home, **extra), timeout=timeout, check=False)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return p, events


def _kill_group(p) -> None:
    """The launcher and its workers (their own session), if anything is left of them."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone: nothing to kill
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


@contextlib.contextmanager
def _reaped(*procs):
    """Processes killed on the way out if still running: a failed assertion or a timeout must not
    leave a trainer (some of these runs are a million steps long) loading the machine."""
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _losses(events):
    return {e["step"]: e["loss"] for e in events if e["type"] == "step"}


def test_two_replicas_train_the_same_run_as_one_device(tmp_path, shakespeare_small):
    """Global batch 12 split 6 + 6 over two replicas gives the one-device losses: the gradients
    are summed before the global-norm clipping (which Keras' own per-replica clipping does not)."""
    home = tmp_path / "ws"
    one, ev1 = _cli(home, "train", str(shakespeare_small), *TINY, "--steps", "24", "--devices", "cpu", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    two, ev2 = _cli(home, "train", str(shakespeare_small), *TINY, "--steps", "24", "--devices", "cpu:2", "--json")
    assert two.returncode == 0, two.stderr[-2000:]
    start = next(e for e in ev2 if e["type"] == "start")
    assert start["replicas"] == 2 and start["per_replica_batch"] == 6
    a, b = _losses(ev1), _losses(ev2)
    assert sorted(a) == sorted(b) == list(range(2, 25, 2))
    for events in (ev1, ev2):  # every 10 steps, and the last ones too (issue 26: step 24 was never evaluated)
        assert [e["step"] for e in events if e["type"] == "eval"] == [10, 20, 24]
    np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], atol=1e-4)
    val = [[e["val_loss"] for e in ev if e["type"] == "eval"] for ev in (ev1, ev2)]
    np.testing.assert_allclose(val[1], val[0], atol=1e-4)


def test_a_run_resumes_on_another_number_of_devices(tmp_path, shakespeare_small):
    """Started on two replicas, stopped, resumed on one: the same curve as one device throughout."""
    home = tmp_path / "ws"
    ref, ev_ref = _cli(home, "train", str(shakespeare_small), *TINY, "--steps", "20", "--devices", "cpu", "--json")
    assert ref.returncode == 0, ref.stderr[-2000:]
    store = RunStore(home)
    p = subprocess.Popen([sys.executable, "-m", "desktop_llm", "train", str(shakespeare_small), *TINY, "--steps", "20",
                          "--devices", "cpu:2", "--json", "--control-stdin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(home))
    first = []
    with _reaped(p):
        for line in p.stdout:
            first.append(json.loads(line))
            if first[-1]["type"] == "checkpoint":  # step 10: stop (it stops at a later step, any)
                p.stdin.write("stop\n")
                p.stdin.flush()
        assert p.wait(300) == 0 and first[-1]["type"] == "stopped", first[-3:]
    run = store.resolve(first[0]["run"])
    again, ev_again = _cli(home, "train", "--resume", run.id, "--devices", "cpu", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert next(e for e in ev_again if e["type"] == "start")["replicas"] == 1
    got = {**_losses(first), **_losses(ev_again)}
    want = _losses(ev_ref)
    assert sorted(got) == sorted(want)
    np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)], atol=1e-4)


def test_two_workers_on_loopback_end_with_identical_weights_and_only_the_chief_writes(tmp_path, shakespeare_small):
    home = tmp_path / "ws"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    p, events = _cli(home, "launch", "--workers", "2", str(shakespeare_small), *TINY, "--steps", "20", "--json",
                     DESKTOP_LLM_COLLECTIVE_TIMEOUT="60", TMPDIR=str(scratch))
    assert p.returncode == 0, p.stderr[-3000:]
    # Nothing is left in the temporary folder (the other worker's scratch was removed at its end),
    # and the other worker's output is kept with the run, where the summary says it is.
    assert list(scratch.iterdir()) == []
    start = next(e for e in events if e["type"] == "start")
    assert start["workers"] == 2 and start["worker_index"] == 0
    chief = next(e for e in events if e["type"] == "completed")
    summary = events[-1]
    assert summary["type"] == "workers" and summary["exit_codes"] == [0, 0]
    assert summary["weights_sha256"] == [chief["weights_sha256"]]  # worker 1 ended with the chief's weights
    run = RunStore(home).resolve(start["run"])
    steps = [m["step"] for m in run.metrics() if m["type"] == "step"]
    assert steps == list(range(2, 21, 2))  # one writer: every step once
    assert run.status()["status"] == "completed" and run.status()["workers"] == 2
    assert summary["logs"] == str(run.folder / "workers")
    worker_events = [json.loads(x) for x in (run.folder / "workers" / "worker-1.out").read_text().splitlines()]
    assert worker_events[-1]["type"] == "completed" and worker_events[-1]["worker"] is True


def test_a_dead_worker_stops_the_other_with_a_message_and_the_run_resumes(tmp_path, shakespeare_small):
    home = tmp_path / "ws"
    store = RunStore(home)
    from tests.core.test_robustness import _config

    run = store.create(replace(_config(shakespeare_small, steps=1_000_000), name="cluster"))
    from desktop_llm.cli.train import free_ports

    cluster = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    env = _env(home, DESKTOP_LLM_COLLECTIVE_TIMEOUT="15")
    procs = [subprocess.Popen([sys.executable, "-m", "desktop_llm", "train", "--resume", run.id, "--cluster", cluster,
                               "--worker-index", str(i), "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env) for i in range(2)]
    chief, worker = procs
    events = []
    with _reaped(*procs):
        for line in chief.stdout:
            events.append(json.loads(line))
            if events[-1]["type"] == "checkpoint":
                break
        worker.send_signal(signal.SIGKILL)  # a machine of the cluster dies
        worker.wait(60)
        events += [json.loads(line) for line in chief.stdout if line.startswith("{")]
        assert chief.wait(300) == 2  # it ended (no hang) with a failure, not a signal
    failed = events[-1]
    assert failed["type"] == "failed" and "stopped answering" in failed["message"], failed
    assert run.status()["status"] == "failed"
    kept = json.loads((run.checkpoints_dir / "index.json").read_text())["latest"]

    # The chief's last checkpoint is good: the run resumes on this machine alone.
    run.save_config(replace(run.config, training=replace(run.config.training, max_steps=int(kept[5:]) + 40)))
    p, resumed = _cli(home, "train", "--resume", run.id, "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    assert next(e["step"] for e in resumed if e["type"] == "resumed_from") == int(kept[5:])
    assert resumed[-1]["type"] == "completed"


def test_float16_keeps_its_loss_scale_across_a_checkpoint(tmp_path):
    import keras

    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models.backbones.gpt import build_model

    cfg = ModelConfig(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                      sequence_length=16)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(cfg, seed=1)
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW(1e-3))
        opt.build(model.trainable_variables)
        opt.dynamic_scale.assign(1024.0)  # as after a few overflows
        opt.step_counter.assign(7)
        manager = CheckpointManager(tmp_path / "ckpt")
        manager.save(model, opt, {"step": 10})
        fresh = keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW(1e-3))
        fresh.build(model.trainable_variables)
        assert float(fresh.dynamic_scale.numpy()) != 1024.0
        manager.restore_optimizer(fresh, model.trainable_variables, manager.find("latest"))
        assert float(fresh.dynamic_scale.numpy()) == 1024.0 and int(fresh.step_counter.numpy()) == 7
        # A float16 checkpoint also resumes in float32 (the scale is dropped) and vice versa.
        plain = keras.optimizers.AdamW(1e-3)
        assert manager.restore_optimizer(plain, model.trainable_variables, manager.find("latest"))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_device_choices_are_checked_with_a_message():
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.distribute import parse_devices, tf_config

    assert parse_devices("auto", 0) == ("cpu", 1)
    assert parse_devices("all", 3) == ("gpu", [0, 1, 2])
    assert parse_devices("2", 3) == ("gpu", [0, 1])
    assert parse_devices("0", 3) == parse_devices("0,", 3) == ("gpu", [0])  # GPU 0 alone
    assert parse_devices("1,", 3) == ("gpu", [1])
    assert parse_devices("0,2", 3) == ("gpu", [0, 2])
    assert parse_devices("cpu:4", 1) == ("cpu:", 4)
    assert parse_devices("gpu:2", 1) == ("gpu:", 2)
    for bad, gpus in (("3", 2), ("0,5", 2), ("1", 0), ("cpu:x", 0), ("fast", 1), ("gpu:2", 0)):
        with pytest.raises(ConfigError):
            parse_devices(bad, gpus)
    assert tf_config(["a:1", "b:2"], 1) == {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ConfigError):
        tf_config(["a:1"], 1)


def _threads_of_tree(pid: int) -> int:
    """The most threads any process under `pid` has now (Linux: /proc)."""
    most, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            most = max(most, len(os.listdir(f"/proc/{p}/task")))
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:  # the process ended while we looked: it has no threads to count
            continue
    return most


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_two_workers_do_not_pile_up_threads_step_after_step(tmp_path, shakespeare_small):
    """One all-reduce per step, not one per variable: under MultiWorkerMirroredStrategy each
    collective left a thread behind (~45 per step for this model, 9,000 after 200 steps), and two
    workers of the small preset died of thread exhaustion at about step 110."""
    cmd = [sys.executable, "-m", "desktop_llm", "launch", "--workers", "2", str(shakespeare_small), *TINY,
           "--log-interval", "10", "--eval-interval", "1000", "--steps", "200", "--json"]
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"  # files: a full pipe cannot stall the run
    with out.open("w") as o, err.open("w") as e:
        p = subprocess.Popen(cmd, env=_env(tmp_path / "ws", DESKTOP_LLM_COLLECTIVE_TIMEOUT="60"), stdout=o, stderr=e,
                             start_new_session=True)
        most = 0
        try:
            while p.poll() is None:
                most = max(most, _threads_of_tree(p.pid))
                time.sleep(0.2)
        finally:  # the launcher and its workers, if a failure ends the loop early
            if p.poll() is None:
                _kill_group(p)
    assert p.returncode == 0, err.read_text()[-3000:]
    events = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    assert max(e["step"] for e in events if e["type"] == "step") == 200
    assert most < 3000, f"{most} threads in one process after 200 steps"


@pytest.mark.skipif(not backend.installed("jax"), reason="the jax backend is not installed")
def test_two_jax_workers_on_loopback_train_the_one_device_run(tmp_path, shakespeare_small):
    """JAX across machines (keras.distribution.initialize), two processes on loopback: each feeds
    half of every batch, and the run is the one-device run, step for step; the chief alone writes
    the run, its checkpoints, model.keras and probes (computed on a local copy of the weights)."""
    home = tmp_path / "ws"
    one, ev1 = _cli(home, "train", str(shakespeare_small), *TINY, "--steps", "20", "--devices", "cpu",
                    "--backend", "jax", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    p, events = _cli(home, "launch", "--workers", "2", str(shakespeare_small), *TINY, "--steps", "20",
                     "--backend", "jax", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    start = next(e for e in events if e["type"] == "start")
    assert (start["backend"], start["workers"], start["replicas"]) == ("jax", 2, 2)
    assert "2 workers x 1 device(s)" in start["device"]
    chief = next(e for e in events if e["type"] == "completed")
    summary = events[-1]
    assert summary["exit_codes"] == [0, 0] and summary["weights_sha256"] == [chief["weights_sha256"]]
    a, b = _losses(ev1), _losses(events)
    assert sorted(a) == sorted(b) == list(range(2, 21, 2))
    np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], atol=1e-5)
    run = RunStore(home).resolve(start["run"])
    assert [m["step"] for m in run.metrics() if m["type"] == "step"] == list(range(2, 21, 2))
    assert (run.folder / "model.keras").exists()
    assert [r["step"] for r in map(json.loads, (run.folder / "probes" / "records.jsonl").read_text().splitlines())] \
        == [10, 20]


def _checkpoint_arrays(run) -> dict:
    """Every array of a run's latest checkpoint (weights and optimizer state), by name."""
    import h5py

    folder = run.folder / "checkpoints" / json.loads((run.folder / "checkpoints" / "index.json").read_text())["latest"]
    found = {}
    with h5py.File(folder / "model.weights.h5", "r") as f:
        # its optimizer group is the optimizer's own layout (one flat state, or Keras' per weight);
        # optimizer.npz holds the state as Keras' AdamW lists it, the same for both
        f.visititems(lambda name, x: found.__setitem__(name, np.asarray(x))
                     if isinstance(x, h5py.Dataset) and not name.startswith("optimizer") else None)
    with np.load(folder / "optimizer.npz") as z:
        found.update({f"optimizer/{k}": z[k] for k in z.files})
    return found


@pytest.mark.skipif(not backend.installed("jax"), reason="the jax backend is not installed")
def test_two_jax_workers_shard_each_weight_over_their_own_devices_and_train_the_one_device_run(tmp_path,
                                                                                               shakespeare_small):
    """--model-parallel across machines (it was refused): each of two processes on loopback has
    two logical CPU devices, shares each weight over them (ModelParallel) and feeds half of every
    batch. The losses are the one-device run's, and the chief's checkpoint, written from weights
    sharded over its devices, holds the one-device run's weights and optimizer state."""
    home = tmp_path / "ws"
    one, ev1 = _cli(home, "train", str(shakespeare_small), *TINY, "--steps", "10", "--devices", "cpu",
                    "--backend", "jax", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    p, events = _cli(home, "launch", "--workers", "2", str(shakespeare_small), *TINY, "--steps", "10",
                     "--backend", "jax", "--devices", "cpu:2", "--model-parallel", "2", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    start = next(e for e in events if e["type"] == "start")
    assert (start["workers"], start["replicas"], start["per_replica_batch"]) == (2, 2, 6)  # the batch split 2 ways
    assert "2 workers x 2 device(s)" in start["device"]
    assert "each weight sharded over 2 devices of a machine" in start["device"]
    chief = next(e for e in events if e["type"] == "completed")
    assert events[-1]["exit_codes"] == [0, 0] and events[-1]["weights_sha256"] == [chief["weights_sha256"]]
    a, b = _losses(ev1), _losses(events)
    assert sorted(a) == sorted(b) == list(range(2, 11, 2))
    np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)], atol=1e-5)
    store = RunStore(home)
    want, got = (_checkpoint_arrays(store.resolve(next(x for x in e if x["type"] == "start")["run"]))
                 for e in (ev1, events))
    assert sorted(got) == sorted(want) and len(want) > 10
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, err_msg=name)
    # each machine holds whole copies: a split that does not divide its devices is refused in one
    # line, before a run exists (it failed in the workers, and the launcher's terminal said nothing)
    runs = len(store.list())
    for command in ("launch", "train"):
        p, _ = _cli(home, command, *(("--workers", "2") if command == "launch" else ()), str(shakespeare_small),
                    *TINY, "--steps", "10", "--backend", "jax", "--devices", "cpu:2", "--model-parallel", "4")
        assert p.returncode == 2, p.stderr[-2000:]
        assert "--model-parallel 4 shards each weight over the devices of one machine: --devices cpu:2 gives 2" \
            in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert len(RunStore(home).list()) == runs
    p, _ = _cli(home, "train", str(shakespeare_small), "--family", "masked_lm", *TINY, "--steps", "10",
                "--backend", "jax", "--devices", "cpu:2", "--model-parallel", "2")
    assert p.returncode == 2 and "A masked lm model is not sharded yet (a GPT's is)" in p.stderr, p.stderr[-2000:]
    assert len(RunStore(home).list()) == runs
    # what only the workers can find (here the one device of "auto") fails the run, and the chief's
    # line reaches the launcher's terminal (it went to the log its descriptor 2 had been sent to)
    p, _ = _cli(home, "launch", "--workers", "2", str(shakespeare_small), *TINY, "--steps", "10",
                "--backend", "jax", "--model-parallel", "2")
    said = "failed: --model-parallel 2 shards each weight over the devices of one machine: --devices auto gives 1 here"
    assert p.returncode == 2 and said in p.stderr, p.stderr[-2000:]


def _jax_launch_signals_at_first_checkpoint(home, corpus, request, worker: int, sig) -> tuple:
    """Two JAX workers on loopback, training long; at the chief's first checkpoint, `sig` to
    worker `worker`. (the launcher, its events, the run id). The launcher and its workers run
    in a session of their own, killed at the test's end whatever happens."""
    p = subprocess.Popen([sys.executable, "-m", "desktop_llm", "launch", "--workers", "2", str(corpus), *TINY,
                          "--steps", "100000", "--backend", "jax", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=_env(home), start_new_session=True)
    request.addfinalizer(lambda: _kill_group(p))  # a failed assertion leaves no trainers behind
    events, run = [], None
    for line in p.stdout:
        if not line.startswith("{"):
            continue
        events.append(json.loads(line))
        if events[-1]["type"] == "checkpoint":  # both train
            run = next(e["run"] for e in events if e["type"] == "start")
            pids = subprocess.run(["pgrep", "-f", f"resume {run} .*worker-index {worker}"], check=False,
                                  capture_output=True, text=True).stdout.split()
            assert pids, f"worker {worker} was not found"
            for pid in pids:
                os.kill(int(pid), sig)
            break
    events += [json.loads(x) for x in p.stdout if x.startswith("{")]
    return p, events, run


@pytest.mark.skipif(not backend.installed("jax"), reason="the jax backend is not installed")
def test_a_dead_jax_worker_stops_the_chief_with_a_message_not_a_hang(tmp_path, shakespeare_small, request):
    p, events, _ = _jax_launch_signals_at_first_checkpoint(tmp_path / "ws", shakespeare_small, request, 1,
                                                           signal.SIGKILL)
    assert p.wait(300) != 0
    failed = next(e for e in events if e["type"] == "failed")
    assert failed["message"].startswith("Another worker of this run stopped answering"), failed
    assert next(e for e in events if e["type"] == "workers")["exit_codes"][1] == -signal.SIGKILL


@pytest.mark.skipif(not backend.installed("jax"), reason="the jax backend is not installed")
def test_a_stop_on_the_jax_chief_stops_every_worker_at_the_same_step(tmp_path, shakespeare_small, request):
    """Only the chief hears a stop (the window's Stop, Ctrl+C, SIGTERM); it reaches the other JAX
    worker through the step's collective, so both stop at one step with equal weights, cleanly."""
    home = tmp_path / "ws"
    p, events, run = _jax_launch_signals_at_first_checkpoint(home, shakespeare_small, request, 0, signal.SIGTERM)
    assert p.wait(300) == 0
    stopped = next(e for e in events if e["type"] == "stopped")
    summary = events[-1]
    assert summary["exit_codes"] == [0, 0]
    worker = [json.loads(x) for x in (RunStore(home).resolve(run).folder / "workers" / "worker-1.out").read_text()
              .splitlines() if x.startswith("{")][-1]
    assert worker["type"] == "stopped" and worker["step"] == stopped["step"]
    assert RunStore(home).resolve(run).status()["status"] == "stopped"
