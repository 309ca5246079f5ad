"""The model worker (core/worker_process.py): the window's model work in a child process, with
its progress, partial results, errors and cancel, and a new child after one died."""

import threading

import pytest

from desktop_llm.core.worker_process import ModelWorker, WorkerError

JOBS = "tests.core.worker_jobs"


@pytest.fixture()
def worker(tmp_path):
    w = ModelWorker(tmp_path / "ws")
    yield w
    w.close()


def test_a_call_runs_in_the_child_with_its_progress_and_partial_results(worker):
    import os

    progress, emitted = [], []
    result = worker.call(f"{JOBS}:count", lambda f, text: progress.append((f, text)), emit=emitted.append, n=3)
    assert result["n"] == 3 and result["pid"] != os.getpid() and result["pid"] == worker._proc.pid
    assert progress == [(0.0, "item 0"), (1 / 3, "item 1"), (2 / 3, "item 2")] and emitted == [0, 1, 2]
    again = worker.call(f"{JOBS}:count", n=1)  # the same child serves the next call
    assert again["pid"] == result["pid"]


def test_an_error_reads_as_the_windows_errors_do_and_the_child_serves_on(worker):
    from desktop_llm.errors import readable

    with pytest.raises(WorkerError) as e:
        worker.call(f"{JOBS}:fail")
    assert str(e.value) == readable(ValueError("the first line\nand a second"))
    assert worker.call(f"{JOBS}:count", n=0)["n"] == 0


def test_a_cancel_reaches_the_work_in_the_child(worker):
    asked = threading.Event()
    started = []

    def progress(_f, text):
        started.append(text)
        asked.set()  # cancel once the work is under way

    assert worker.call(f"{JOBS}:until_cancelled", progress, asked.is_set) == "cancelled"
    assert started == ["waiting"]


def test_a_child_that_dies_is_reported_and_the_next_call_starts_another(worker):
    first = worker.call(f"{JOBS}:count", n=0)["pid"]
    with pytest.raises(WorkerError, match=r"stopped \(exit code 9\); the next request starts a new one"):
        worker.call(f"{JOBS}:die")
    assert not worker.running
    assert worker.call(f"{JOBS}:count", n=0)["pid"] != first


def test_closing_the_window_side_ends_the_child(worker):
    worker.call(f"{JOBS}:count", n=0)
    proc = worker._proc
    worker.close()
    assert proc.poll() is not None and not worker.running


def test_a_call_its_caller_gave_up_on_is_cancelled_and_its_late_replies_go_nowhere(worker):
    class Gone(Exception):
        """The window's work gave up."""

    def progress(_f, _text):
        raise Gone  # the window closed while its work ran (gui/workers.py's _SourceGone)

    with pytest.raises(Gone):
        worker.call(f"{JOBS}:until_cancelled", progress)
    assert worker.call(f"{JOBS}:count", n=2)["n"] == 2  # not the abandoned call's "cancelled"


def test_the_worker_computes_with_the_backend_it_was_started_with():
    w = ModelWorker(backend="jax")
    try:
        assert w.call("desktop_llm.core.worker_jobs:backend_name") == "jax"
    finally:
        w.close()
