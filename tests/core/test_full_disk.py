"""A real full disk: the workspace lives on a small tmpfs that the test fills while the trainer
is paused (through its control channel, so nothing races the clock). Where the test may not
mount a filesystem, the trainer runs under RLIMIT_FSIZE instead (writes past a size fail)."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_llm.store import RunStore
from tests.core.test_robustness import _config

ROOT = Path(__file__).resolve().parents[2]


def _cli(home, *args, **kw):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "desktop_llm", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=False, capture_output=True, text=True)
    return r.returncode == 0


def _fill(folder: Path) -> Path:
    """Write a file until the filesystem refuses another byte."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue
    return filler


def _leftovers(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.startswith(".") and "tmp" in p.name]


@pytest.fixture()
def small_fs(tmp_path):
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if not _mount_tmpfs(mnt, "24m"):
        pytest.skip("cannot mount a tmpfs here (the RLIMIT_FSIZE test below covers this machine)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def test_a_disk_that_fills_during_training_ends_cleanly_and_reads_still_work(small_fs, shakespeare_small):
    home = small_fs / "ws"
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=100, eval_interval=10))
    p = _cli(home, "train", "--resume", run.id, "--json", "--control-stdin", stdin=subprocess.PIPE)
    p.stdin.write("pause\n")  # it pauses after its first call (step 10, checkpointed)
    p.stdin.flush()
    events = []
    for line in p.stdout:
        events.append(json.loads(line))
        if events[-1]["type"] == "paused":
            break
    assert any(e["type"] == "checkpoint" for e in events), events
    filler = _fill(small_fs)  # the disk is now full, with the trainer mid-run
    p.stdin.write("resume\n")
    p.stdin.flush()
    events += [json.loads(line) for line in p.stdout if line.startswith("{")]
    stderr = p.stderr.read()
    code = p.wait(300)
    assert code == 2, f"exit {code}: a full disk must end the run cleanly, not by a signal\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr[-2000:]
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("Could not write the checkpoint" in w for w in warnings), warnings
    failed = events[-1]
    assert failed["type"] == "failed" and "No space left" in failed["message"], failed
    assert "resume" in failed["suggestion"].lower() and "step 10" in failed["suggestion"]
    st = run.status()  # status.json says how it ended, although no new file could be created
    assert st["status"] == "failed" and "disk is full" in st["message"], st
    assert not _leftovers(run.folder), _leftovers(run.folder)  # no half-written files left behind
    ckpts = json.loads((run.checkpoints_dir / "index.json").read_text())
    assert ckpts["latest"] == "step-0000010"

    # Reading works on the full disk, from the last good checkpoint.
    listing = _cli(home, "runs", "--json")
    out, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err[-2000:]
    assert [r["status"] for r in json.loads(out)["runs"]] == ["failed"]
    gen = _cli(home, "generate", "--prompt", "ROMEO:", "--max-tokens", "8", "--seed", "1", "--json")
    out, err = gen.communicate(timeout=300)
    assert gen.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["tokens"] == 8

    # Free the space: the run resumes from step 10 and finishes.
    filler.unlink()
    p = _cli(home, "train", "--resume", run.id, "--json")
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    done = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert next(e["step"] for e in done if e["type"] == "resumed_from") == 10
    assert done[-1]["type"] == "completed" and done[-1]["step"] == 100
    assert run.status()["status"] == "completed" and (run.folder / "model.keras").exists()


def test_writes_past_a_file_size_limit_end_the_run_cleanly(tmp_path, shakespeare_small):
    """The same fault where no filesystem can be mounted: every file the trainer writes is capped
    (RLIMIT_FSIZE) just above what the run had written before it started training, so the
    first checkpoint's weights cannot be written. The run must end as failed (not crash), leave no
    temporary files, and the cap lifted, train from the start."""
    home = tmp_path / "ws"
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=40, eval_interval=20))
    cap = 64 * 1024  # weights of the tiny model are ~100 kB; status, metrics and the data fit

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    # Tokenizer and data are prepared beforehand (train.bin is larger than the cap).
    from desktop_llm.core.data import ensure_data
    from desktop_llm.core.training import ensure_tokenizer

    ensure_data(run, run.config, ensure_tokenizer(run, run.config, lambda e: None), lambda e: None)
    p = _cli(home, "train", "--resume", run.id, "--json", preexec_fn=limit)
    out, err = p.communicate(timeout=600)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert p.returncode in (0, 2), f"exit {p.returncode}: ended by a signal\n{err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("Could not write the checkpoint" in w for w in warnings), (warnings, events[-1])
    assert events[-1]["type"] == "failed" and p.returncode == 2, events[-1]
    assert run.status()["status"] == "failed"
    assert not _leftovers(run.folder), _leftovers(run.folder)

    p = _cli(home, "train", "--resume", run.id, "--json")
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["type"] == "completed"
