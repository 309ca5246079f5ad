"""Engine work in a child process: every model task of the window (generating, chatting,
evaluating, attention maps, the family tabs, exports, replaying prompts and mapping sentences on a
run's weight snapshots) runs in `desktop-llm worker`, so the window's process never loads a Keras
backend. A thread cannot hide that load: TensorFlow's and jaxlib's shared libraries load holding the
GIL (a 591 ms freeze of the event loop, measured by benchmarks/learning_bench.py). And a model that
crashes or runs out of memory takes down the child, not the window.

The protocol is pickled frames, each behind its length, over the child's stdin and stdout:
`("call", n, job, kwargs)` and `("cancel", n)` go in; `("progress", n, fraction, text)`, `("emit",
n, value)`, `("done", n, result)` and `("error", n, message)` come out, `n` numbering the call (what
an abandoned call's child still sends is told apart from the next call's). `job` is
"module:function"; the function gets `progress`, `cancelled` and `emit` as keywords, as the GUI's
workers pass them. One child serves one call at a time and keeps what the functions keep (the
models they build) between calls. Hand-written over multiprocessing: the child is started as
`desktop-llm worker` (`sys.executable -m desktop_llm`, as the trainer is), which also works from
the frozen installer, where multiprocessing's spawn would start the window again.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from desktop_llm.errors import DesktopLLMError, readable

_LENGTH = struct.Struct("<Q")
_POLL_SECONDS = 0.1


class WorkerError(DesktopLLMError):
    """The child's work failed (its one-line message) or the child itself stopped."""


def send(stream: BinaryIO, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> tuple:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (n,) = _LENGTH.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


def resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    if not module or not name:
        raise WorkerError(f"Not a function's \"module:name\": {target!r}")
    return getattr(importlib.import_module(module), name)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The child's loop: calls run one at a time on this (the main) thread, which keeps a
    backend's models on the thread that made them; a reader thread takes cancels meanwhile. It
    returns when the window closes its end (the window quit or died)."""
    calls: queue.Queue = queue.Queue()
    cancelled: set[int] = set()  # the numbers of the calls the window cancelled (or gave up on)

    def read() -> None:
        while True:
            try:
                message = receive(stdin)
            except (EOFError, OSError, pickle.UnpicklingError):
                calls.put(None)
                return
            if message[0] == "cancel":
                cancelled.add(message[1])
            else:
                calls.put(message)

    threading.Thread(target=read, name="worker-requests", daemon=True).start()
    while (message := calls.get()) is not None:
        _, n, job, kwargs = message
        try:
            result = resolve(job)(**kwargs, progress=lambda f, text="", n=n: send(stdout, ("progress", n, f, text)),
                                      cancelled=lambda n=n: n in cancelled,
                                      emit=lambda value, n=n: send(stdout, ("emit", n, value)))
            reply = ("done", n, result)
        except Exception as e:  # noqa: BLE001 - every error becomes the window's one line
            if not isinstance(e, DesktopLLMError):  # a bug: its whole story on the window's stderr
                import traceback

                traceback.print_exc()
            reply = ("error", n, readable(e))
        try:
            send(stdout, reply)
        except (OSError, ValueError):  # the window went away
            return 0
    return 0


class ModelWorker:
    """The window's side: starts `desktop-llm worker` on the first call, and again after it
    stopped; `call` blocks its (worker) thread until the child answers. Thread-safe: calls from
    several threads wait their turn."""

    def __init__(self, home: str | os.PathLike | None = None, command: list[str] | None = None,
                 backend: str = "auto"):
        self.backend = backend  # the Keras backend the child computes with (core/backend.py)
        self.command = command or [sys.executable, "-m", "desktop_llm",
                                   *(["--home", str(home)] if home is not None else []), "worker", "--backend", backend]
        self._proc: subprocess.Popen | None = None
        self._replies: queue.Queue = queue.Queue()
        self._turn = threading.Lock()
        self._calls = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (the window's status bar shows its memory)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._replies = replies = queue.Queue()
        out = self._proc.stdout

        def read() -> None:  # a thread per child: the caller's loop also watches for its cancel
            while True:
                try:
                    replies.put(receive(out))
                except (EOFError, OSError, pickle.UnpicklingError):
                    replies.put(("gone", None))
                    return

        threading.Thread(target=read, name="model-worker-replies", daemon=True).start()

    def call(self, job: str, /, progress: Callable[[float, str], None] | None = None,
             cancelled: Callable[[], bool] | None = None, emit: Callable[[Any], None] | None = None,
             **kwargs) -> Any:
        """`job(**kwargs)` in the child ("desktop_llm.module:function"); its progress and emits
        reach `progress` and `emit` on this thread; `cancelled()` is passed on to the child."""
        with self._turn:
            if not self.running:
                self._start()
            self._calls += 1
            n = self._calls
            try:
                send(self._proc.stdin, ("call", n, job, kwargs))
            except OSError:
                raise self._gone() from None
            told = False
            try:
                while True:
                    try:
                        kind, of, *rest = self._replies.get(timeout=_POLL_SECONDS)
                    except queue.Empty:
                        if not told and cancelled is not None and cancelled():
                            told = self._cancel(n)
                        continue
                    if kind == "gone":
                        raise self._gone()
                    if of != n:  # what an earlier, abandoned call's work still sent
                        continue
                    if kind == "progress" and progress is not None:
                        progress(*rest)
                    elif kind == "emit" and emit is not None:
                        emit(rest[0])
                    elif kind == "done":
                        return rest[0]
                    elif kind == "error":
                        raise WorkerError(rest[0])
            except BaseException as e:  # the caller gave up (its window closed): the child need not go on
                if not isinstance(e, WorkerError) and not told and self.running:
                    self._cancel(n)
                raise

    def _cancel(self, n: int) -> bool:
        with contextlib.suppress(OSError):  # the child is gone already: its reader reports that
            send(self._proc.stdin, ("cancel", n))
        return True

    def _gone(self) -> WorkerError:
        code = self._proc.wait() if self._proc is not None else None
        self._proc = None
        return WorkerError(f"The model worker stopped (exit code {code}); the next request starts a new one.")

    def close(self) -> None:
        """Stop the child: closing its stdin ends its loop; a child busy with work is killed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):  # its pipe already broken: the child is ending anyway
            proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_SHARED: ModelWorker | None = None


def shared(backend: str = "auto") -> ModelWorker:
    """The process's one model worker, for every window it opens (a run travels with its folder,
    so one child serves any workspace), computing with `backend`: asked for another, the old child
    is stopped and the next call starts one with it. Stopped when the process exits."""
    global _SHARED
    if _SHARED is not None and _SHARED.backend != backend:
        _SHARED.close()
        _SHARED = None
    if _SHARED is None:
        import atexit

        _SHARED = ModelWorker(backend=backend)
        atexit.register(_SHARED.close)
    return _SHARED
