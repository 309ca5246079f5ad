"""What keeps the run store honest.

One writer per run (store/lock.py): two trainers of the same run started together, a resume while
it trains, a delete while it trains, all refused in one line; the lock dies with its process
(SIGKILL included), so a killed trainer never leaves a run locked. And a catalog that cannot
mislead: one of another schema is moved aside and rebuilt from the folders, in one transaction."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from desktop_llm.core import atomic
from desktop_llm.store import RunStore, StoreError
from desktop_llm.store import lock as run_lock
from tests.core.test_robustness import _config


def _holder(folder):
    """A process that takes the run's lock, says so, and waits to be killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from desktop_llm.store import lock
        lock.acquire({str(folder)!r})
        print("locked", flush=True)
        time.sleep(600)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_the_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    assert not run_lock.is_locked(folder)
    p = _holder(folder)
    try:
        assert run_lock.is_locked(folder)
        with pytest.raises(run_lock.RunBusy):
            run_lock.acquire(folder)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    assert not run_lock.is_locked(folder)  # the kernel released it with the killed process
    run_lock.acquire(folder)
    try:
        assert run_lock.is_locked(folder)
    finally:
        run_lock.release(folder)


def test_two_trainers_started_together_one_refused_and_delete_waits(tmp_path, shakespeare_small):
    home = tmp_path / "ws"
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=1_000_000))  # far longer than the test runs
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "desktop_llm", "train", "--resume", run.id, "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    try:
        # whichever lost the lock ends at once with one line; the other trains
        refused, waited = None, 0.0
        while refused is None:  # (a bound only so that a regression fails instead of hanging)
            assert waited < 300, "neither trainer was refused: both are training the run"
            for p in procs:
                if p.poll() is not None:
                    refused = p
            time.sleep(0.05)
            waited += 0.05
        trainer = procs[1] if refused is procs[0] else procs[0]
        err = refused.stderr.read()
        assert refused.returncode == 2 and err.strip().startswith(f"error: Run {run.id} is already training"), err
        assert len(err.strip().splitlines()) == 1
        for line in trainer.stdout:  # the winner trains: wait for its first checkpoint
            if '"type": "checkpoint"' in line:
                break
        assert trainer.poll() is None
        with pytest.raises(StoreError, match="training"):
            store.delete(run.id)
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        assert again.returncode == 2 and "already training" in again.stderr
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(30)
    steps = [m["step"] for m in atomic.read_jsonl(run.metrics_path) if m["type"] == "step"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one writer: no duplicates
    store.delete(run.id)  # the killed trainer's lock went with it
    assert not run.folder.exists()


def test_a_catalog_of_another_schema_is_moved_aside_and_made_again(tmp_path, shakespeare_small):
    """A valid SQLite file whose `runs` table has other columns (another version, another program)
    used to make `runs` print "No runs" and `train` crash: the catalog is only an index, so it is
    moved aside (kept) and rebuilt from the run folders; a rebuild skips and counts what is not a run."""
    import sqlite3

    home = tmp_path / "ws"
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=20))
    store.db_path.unlink()
    con = sqlite3.connect(store.db_path)
    con.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, colour TEXT)")
    con.execute("INSERT INTO runs VALUES ('x', 'blue')")
    con.commit()
    con.close()
    (store.runs_dir / "not-a-run").mkdir()
    (store.runs_dir / f".deleted-{run.id}x").mkdir()  # a delete interrupted halfway

    again = RunStore(home)
    assert [r["id"] for r in again.list()] == [run.id]
    assert again.skipped == ["not-a-run"]
    kept = [p.name for p in home.iterdir() if ".other-schema-" in p.name]
    assert kept and sqlite3.connect(home / kept[0]).execute("SELECT colour FROM runs").fetchone() == ("blue",)
    second = again.create(_config(shakespeare_small, steps=20))  # and new runs go in as usual
    assert {r["id"] for r in RunStore(home).list()} == {run.id, second.id}
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home))
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "runs", "rebuild"], capture_output=True, text=True,
                       env=env, timeout=120, check=False)
    assert p.returncode == 0 and p.stdout.strip() == ("catalog rebuilt from 2 run folders; 1 other folders "
                                                      "skipped (not runs, or damaged)")


def test_the_catalog_keeps_what_chose_the_best_checkpoint(tmp_path, shakespeare_small):
    """A classifier's best checkpoint is chosen by macro-F1: the run picker says that figure, not
    its loss (which read "best 0.000" on an easy task). A catalog of the columns before
    `best_score` is made again, and the row then carries it."""
    import dataclasses
    import sqlite3

    from desktop_llm.store.report import best_figure
    from desktop_llm.store.runs import _COLUMNS

    home = tmp_path / "ws"
    store = RunStore(home)
    gpt = store.create(_config(shakespeare_small, steps=20))
    cls = store.create(dataclasses.replace(_config(shakespeare_small, steps=20), family="classifier"))
    gpt.write_status(status="completed", step=20, best_val_loss=3.6654)
    cls.write_status(status="completed", step=20, best_val_loss=0.00012, best_score=0.98712)
    rows = {r["id"]: r for r in (store.sync(gpt), store.sync(cls))}
    assert best_figure(rows[cls.id]) == "best macro-F1 0.987"
    assert best_figure(rows[gpt.id]) == "best loss 3.665"

    store.db_path.unlink()  # the catalog as the version before wrote it
    con = sqlite3.connect(store.db_path)
    con.execute(f"CREATE TABLE runs ({', '.join(f'{n} {t}' for n, t in _COLUMNS if n != 'best_score')})")
    con.commit()
    con.close()
    again = {r["id"]: r for r in RunStore(home).list()}
    assert again[cls.id]["best_score"] == 0.98712 and best_figure(again[cls.id]) == "best macro-F1 0.987"
