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


_MODEL_POOL: QThreadPool | None = None


def model_pool() -> QThreadPool:
    """One long-lived thread for all TensorFlow work in the window (attention, generation,
    evaluation): models are loaded, traced and run on the same thread, one task at a time.
    One thread keeps the loaded model and its compiled functions on the thread that made them."""
    global _MODEL_POOL
    if _MODEL_POOL is None:
        # TensorFlow imported first on a worker thread later segfaulted while tracing a
        # tf.function (measured: every time in tests/gui run alone; never once the main thread
        # had imported it). So the UI thread imports it, once, when the first model task starts:
        # a one-off pause of a few seconds after a click, never at start-up.
        import tensorflow  # noqa: F401

        from desktop_llm.core import device

        # Before any op: take GPU memory as needed, never all of it, so that a trainer (child
        # process) can share the card with the window's inference.
        device.gpu_memory_growth()
        _MODEL_POOL = QThreadPool()
        _MODEL_POOL.setMaxThreadCount(1)
        _MODEL_POOL.setExpiryTimeout(-1)  # the thread lives as long as the app
    return _MODEL_POOL


def model_pool_telling(say: Callable[[str], None]) -> QThreadPool:
    """`model_pool()`, first telling the user when it is about to import TensorFlow (seconds,
    once): `say` shows the line and repaints it, since the import holds the event loop."""
    import sys

    if "tensorflow" not in sys.modules:
        say("Loading TensorFlow (first time only)…")
    pool = model_pool()
    say("Starting…")
    return pool


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
