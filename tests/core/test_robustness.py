"""Faults injected for real: the trainer SIGKILLed at random moments, damaged checkpoints, a
deleted or corrupt catalog, a read-only workspace, a full disk, untrusted model files, and no
network use at all."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from desktop_llm.core import atomic
from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.store import RunStore, StoreError

TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16)

# Runs the CLI with every network call refused and recorded (an audit hook sees each socket
# connect, bind and name lookup before it happens). Loopback is allowed: TensorFlow probes
# binding to ('::1', 0) at start-up, which never leaves the machine.
NO_NETWORK = textwrap.dedent("""
    import sys
    log = open(sys.argv[1], "a")
    LOCAL = ("127.0.0.1", "::1", "localhost", "", "0.0.0.0", "::")
    def host_of(event, args):
        if event in ("socket.getaddrinfo", "socket.gethostbyname"):
            return args[0] if isinstance(args[0], str) else str(args[0])
        if event == "urllib.Request":
            return args[0]
        address = args[1] if len(args) > 1 else None
        return address[0] if isinstance(address, tuple) else None  # None: AF_UNIX path, local IPC
    def hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
                     "socket.sendto", "urllib.Request"):
            host = host_of(event, args)
            if host is None or host in LOCAL or str(host).startswith("127."):
                return  # loopback and local sockets are not the network
            log.write(f"{event} {args!r}\\n"); log.flush()
            raise OSError("network use blocked by the test")
    sys.addaudithook(hook)
    sys.argv = ["desktop-llm"] + sys.argv[2:]
    from desktop_llm.cli import main
    raise SystemExit(main())
""")


def _config(corpus, steps, **train):
    t = {"max_steps": steps, "batch_size": 8, "eval_interval": 20, "eval_batches": 2, "log_interval": 10,
         "warmup_steps": 5, "learning_rate": 3e-3, "min_learning_rate": 3e-4, "sample_tokens": 0}
    t.update(train)
    return RunConfig(name="r", data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                     model=TINY, training=TrainConfig(**t))


def _cli(home, netlog, *args):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", NO_NETWORK, str(netlog), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)


def test_sigkill_at_random_moments_loses_at_most_one_checkpoint_interval(tmp_path, shakespeare_small):
    """Kill, resume, kill... at random moments. The kills are placed from the events the trainer
    prints, never from the clock, and the run is configured far longer than it can get in the
    test (a million steps), so no machine is fast enough for it to finish before a kill lands.
    The final resume is given an end a few evaluations past the last checkpoint."""
    from dataclasses import replace

    home, netlog = tmp_path / "ws", tmp_path / "network.log"
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=1_000_000))
    rng = random.Random(7)
    kills = []
    for _attempt in range(2):
        p = _cli(home, netlog, "train", "--resume", run.id, "--json")
        checkpoints = 0
        target = rng.randint(1, 2)
        steps_after = rng.randint(0, 3)  # then 0-3 more log events (10 steps each): a random moment
        for line in p.stdout:
            if '"type": "checkpoint"' in line:
                checkpoints += 1
            elif checkpoints >= target and '"type": "step"' in line:
                if steps_after == 0:
                    break
                steps_after -= 1
        time.sleep(rng.uniform(0.0, 0.05))  # and a little further, inside a step or a write
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
        st = run.status()
        assert st["status"] == "interrupted", st
        ckpt_step = json.loads((run.checkpoints_dir / "index.json").read_text())["latest"]
        kills.append((st.get("step"), ckpt_step))
        lines = run.metrics_path.read_bytes().splitlines()
        assert all(line.endswith(b"}") for line in lines[:-1]), "a torn line before the last one"
        steps = [m["step"] for m in atomic.read_jsonl(run.metrics_path) if m["type"] == "step"]
        assert len(steps) == len(set(steps)), "duplicated step lines"
        assert steps == sorted(steps)
        assert store.list()[0]["status"] == "interrupted"

    # Resume to an end 60 steps past the newest checkpoint: it starts from that checkpoint, and
    # the history is one clean curve.
    last_ckpt = int(kills[-1][1].split("-")[1])
    end = last_ckpt + 60
    run.save_config(replace(run.config, training=replace(run.config.training, max_steps=end)))
    p = _cli(home, netlog, "train", "--resume", run.id, "--json")
    events = [json.loads(line) for line in p.stdout if line.startswith("{")]
    assert p.wait(300) == 0
    resumed_from = next(e["step"] for e in events if e["type"] == "resumed_from")
    assert resumed_from == last_ckpt and last_ckpt >= 20
    assert events[-1]["type"] == "completed" and events[-1]["step"] == end
    steps = [m["step"] for m in run.metrics() if m["type"] == "step"]
    assert steps == list(range(10, end + 1, 10))  # every step once, none lost after resuming
    assert not netlog.exists() or netlog.read_text() == "", netlog.read_text()


def test_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path):
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.models.backbones.gpt import build_model

    model = build_model(TINY.__class__(**{**TINY.__dict__, "vocabulary_size": 40}))
    manager = CheckpointManager(tmp_path / "ckpt", keep=3)
    manager.save(model, None, {"step": 10})
    weights_10 = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in weights_10])
    second = manager.save(model, None, {"step": 20})
    with open(second.weights_path, "r+b") as f:  # a crash or a bad disk truncated it
        f.truncate(100)
    found = manager.find("latest")
    assert found.step == 10
    assert any("step-0000020" in n for n in manager.notes)
    model.load_weights(str(found.weights_path))
    assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), weights_10))


def test_full_disk_keeps_the_previous_checkpoint_and_tells(tmp_path, shakespeare_small, monkeypatch):
    import errno

    from desktop_llm.core import checkpoints
    from desktop_llm.core.training import train_run

    real = checkpoints._sha256
    calls = {"n": 0}

    def failing(path):  # the second checkpoint hits a full disk while it is being written
        if "step-0000040" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        return real(path)

    monkeypatch.setattr(checkpoints, "_sha256", failing)
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=60))
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed"
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("No space left" in w and "step 40" in w for w in warnings), warnings
    names = sorted(p.name for p in run.checkpoints_dir.iterdir())
    assert "step-0000020" in names and "step-0000060" in names and "step-0000040" not in names
    assert not [n for n in names if n.startswith(".tmp")]  # no half-written folder left behind


def test_catalog_is_rebuilt_when_deleted_or_corrupt(tmp_path):
    store = RunStore(tmp_path)
    ids = {store.create(_config("x.txt", steps=10)).id for _ in range(3)}
    (tmp_path / "catalog.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    assert {r["id"] for r in RunStore(tmp_path).list()} == ids
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    assert {r["id"] for r in RunStore(tmp_path).list()} == ids


def test_catalog_is_readable_while_a_writer_holds_it(tmp_path):
    store = RunStore(tmp_path)
    store.create(_config("x.txt", steps=10))
    assert sqlite3.connect(tmp_path / "catalog.sqlite").execute("pragma journal_mode").fetchone()[0] == "wal"
    writer = sqlite3.connect(tmp_path / "catalog.sqlite")
    writer.execute("begin immediate")  # a run writing its row
    writer.execute("update runs set status = 'running'")
    assert len(RunStore(tmp_path).list()) == 1  # a reader is not blocked
    writer.rollback()


def test_unwritable_workspace_reads_but_refuses_writes_with_a_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for home in (blocker / "workspace", "/proc/desktop_llm-workspace"):  # never creatable, even by root
        store = RunStore(home)
        assert not store.writable and store.list() == [] and store.latest() is None
        with pytest.raises(StoreError, match="not writable"):
            store.create(_config("x.txt", steps=10))


def test_untrusted_model_files_never_run_code(tmp_path):
    import keras

    from desktop_llm.core.models.backbones.gpt import load_model

    marker = tmp_path / "pwned"
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    evil = keras.Model(inputs, outputs)
    path = tmp_path / "evil.keras"
    evil.save(path)
    with pytest.raises(ValueError, match=r"unsafe|safe_mode|Lambda"):
        load_model(str(path))
    assert not marker.exists()
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(Exception) as info:
        load_model(str(garbage))
    assert "zip" in str(info.value).lower() or "file" in str(info.value).lower()


def test_the_network_guard_catches_a_connection(tmp_path):
    """The guard used above is not vacuous: a real connection attempt is blocked and recorded."""
    guard = NO_NETWORK.split("sys.argv = ")[0]
    probe = guard + textwrap.dedent("""
        import socket
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
        except OSError as e:
            print("blocked:", e)
    """)
    netlog = tmp_path / "net.log"
    out = subprocess.run([sys.executable, "-c", probe, str(netlog)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert "blocked: network use blocked by the test" in out.stdout, out.stderr
    assert "192.0.2.1" in netlog.read_text()  # caught at the name lookup, before any packet


def test_a_batch_that_does_not_fit_ends_the_run_with_a_suggestion(tmp_path, shakespeare_small):
    """A real out-of-memory: the trainer's data segment (which includes mmap, since Linux 4.7) is
    capped at 3 GiB, as if the machine had little memory, and the batch's attention scores alone
    need 8 GiB. A run that trained 20 steps is continued with that batch: it must end as failed
    with a suggestion (not be killed, abort or hang), keep its step-20 checkpoint, and continue
    from it once the batch is made smaller again."""
    import resource
    from dataclasses import replace

    home, netlog = tmp_path / "ws", tmp_path / "network.log"
    store = RunStore(home)
    model = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=256)
    base = _config(shakespeare_small, steps=20, batch_size=4)
    run = store.create(replace(base, name="oom", model=model))
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONUNBUFFERED="1")

    def train(batch_size, steps):
        run.save_config(replace(run.config, training=replace(run.config.training, batch_size=batch_size,
                                                               max_steps=steps)))
        p = subprocess.Popen([sys.executable, "-c", NO_NETWORK, str(netlog), "train", "--resume", run.id, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                             preexec_fn=lambda: resource.setrlimit(  # noqa: PLW1509 - setrlimit takes no lock
                                 resource.RLIMIT_DATA, (3 * 2**30, 3 * 2**30)))
        events = [json.loads(line) for line in p.stdout if line.startswith("{")]
        return p.wait(600), events

    code, events = train(4, 20)
    assert code == 0 and events[-1]["type"] == "completed"

    code, events = train(16384, 40)
    assert code == 2, f"exit {code}: the trainer must fail cleanly (status 2), not die by a signal"
    failed = events[-1]
    assert failed["type"] == "failed", events[-3:]
    assert "out of memory" in failed["message"].lower() and "smaller batch" in failed["suggestion"].lower()
    st = run.status()
    assert st["status"] == "failed" and "smaller batch" in st["suggestion"].lower()
    assert store.list()[0]["status"] == "failed"
    assert json.loads((run.checkpoints_dir / "index.json").read_text())["latest"] == "step-0000020"

    # The suggestion works: a batch that fits continues from the kept checkpoint, under the same cap.
    code, events = train(4, 40)
    assert code == 0 and events[-1]["type"] == "completed" and events[-1]["step"] == 40, events[-3:]
    assert next(e["step"] for e in events if e["type"] == "resumed_from") == 20
    assert not netlog.exists() or netlog.read_text() == ""


def test_a_run_trained_on_another_machine_is_not_taken_for_dead(tmp_path):
    """A run folder synced back from the machine that trains it: its process cannot be checked
    here, so it shows as running until it stops being updated for long."""
    import time as _time

    from desktop_llm.store.runs import REMOTE_STALE_S

    store = RunStore(tmp_path)
    run = store.create(_config("x.txt", steps=10))
    run.write_status(status="running", pid=999_999_999, host="another-machine")
    assert run.status()["status"] == "running"
    st = json.loads(run.status_path.read_text())
    st["updated"] = _time.time() - REMOTE_STALE_S - 1
    run.status_path.write_text(json.dumps(st))
    assert run.status()["status"] == "interrupted"
    run.write_status(status="running", pid=999_999_999, host=__import__("platform").node())
    assert run.status()["status"] == "interrupted"  # this machine: the dead pid decides at once
