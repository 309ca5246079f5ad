"""Long work off the UI thread: a function runs in Qt's thread pool and reports through signals.

The function receives `report(fraction, message)` and `cancelled()`; results, errors and progress
arrive on the UI thread as queued signals, so the window never blocks.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from desktop_llm.errors import (
    Cancelled,  # noqa: F401 - the one cancellation: raised by work, shown as its message
)
from desktop_llm.errors import readable as readable_error

_STACK_BYTES = 64 * 2**20




class _SourceGone(Exception):
    pass


def _safe(emit, *args) -> bool:
    try:
        emit(*args)
        return True
    except RuntimeError:  # "Signal source has been deleted"
        return False


class Task(QObject):
    progressed = Signal(float, str)
    emitted = Signal(object)  # partial results (e.g. generated tokens)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[..., Any], parent: QObject | None = None):
        super().__init__(parent)
        self.fn = fn
        self._cancel = threading.Event()
        self.running = False
        # True once the result or error has reached the UI thread and every slot connected
        # before start() has run. `running` turns False on the worker thread, before that.
        self.settled = False

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # The window may close while work is in flight: the Task's C++ half is then gone, and the
    # work is told to stop at its next report instead of raising on every emit.
    def _report(self, fraction: float, message: str = "") -> None:
        if not _safe(self.progressed.emit, fraction, message):
            raise _SourceGone()

    def _emit(self, value) -> None:
        if not _safe(self.emitted.emit, value):
            raise _SourceGone()

    def _settle(self, *_):
        self.settled = True

    def start(self, pool: QThreadPool | None = None) -> Task:
        self.running = True
        # Connected last, so it runs after the page's own slots (Qt calls slots in order).
        self.finished.connect(self._settle)
        self.failed.connect(self._settle)
        task = self

        class _Runnable(QRunnable):
            def run(self_inner):
                try:
                    result = task.fn(task._report, task.cancelled, task._emit)
                except Exception as e:  # noqa: BLE001 - every error becomes a readable message
                    task.running = False
                    if not isinstance(e, _SourceGone):
                        traceback.print_exc()
                        _safe(task.failed.emit, readable_error(e))
                    return
                task.running = False
                _safe(task.finished.emit, result)

        pool = pool or QThreadPool.globalInstance()
        if pool.stackSize() < _STACK_BYTES:
            # TensorFlow's tracing recurses deeply (autograph, nested tf.functions); pool threads
            # get a generous stack so tracing a compiled function off the UI thread cannot overflow.
            pool.setStackSize(_STACK_BYTES)
        pool.start(_Runnable())
        return self


def run_task(parent: QObject, fn: Callable[..., Any], on_done=None, on_error=None, on_progress=None,
             on_emit=None, pool: QThreadPool | None = None) -> Task:
    task = Task(fn, parent)
    if on_done:
        task.finished.connect(on_done)
    if on_error:
        task.failed.connect(on_error)
    if on_progress:
        task.progressed.connect(on_progress)
    if on_emit:
        task.emitted.connect(on_emit)
    return task.start(pool)


STARTING_WORKER = "Starting the model worker (the first time loads Keras)…"


def in_worker(parent: QObject, session, job: str, say: Callable[[str], None], on_done, on_error, on_progress=None,
              on_emit=None, run_id: str | None = None, **kwargs) -> Task | None:
    """`job(**kwargs)` ("module:function", core/worker_jobs.py) in the model worker
    (core/worker_process.py), waited for on a pool thread: the window's process never loads a
    Keras backend. `say` gets the first status line; `run_id`, where given, is passed as the
    store's `run` (a run deleted meanwhile is `on_error`'s one line, and no task starts)."""
    from desktop_llm.errors import DesktopLLMError

    if run_id is not None:
        try:
            kwargs["run"] = session.store.get(run_id)
        except DesktopLLMError as e:
            on_error(str(e))
            return None
    worker = session.worker()
    say("Starting…" if worker.running else STARTING_WORKER)

    def work(report, cancelled, emit):
        return worker.call(job, report, cancelled, emit, **kwargs)

    return run_task(parent, work, on_done, on_error, on_progress=on_progress, on_emit=on_emit)
