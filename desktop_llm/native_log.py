"""Send native (C++) log lines of TensorFlow/XLA to a file instead of the user's terminal.

TensorFlow 2.21 prints INFO lines through absl before any setting can silence them
(TF_CPP_MIN_LOG_LEVEL no longer helps). We point file descriptor 2 at a log file and give
Python's `sys.stderr` a duplicate of the original descriptor, so our own messages and Python
tracebacks still reach the terminal.
"""

from __future__ import annotations

import io
import os
import sys


def redirect_native_stderr(log_path: str | os.PathLike | None = None) -> None:
    if os.environ.get("DESKTOP_LLM_NATIVE_STDERR") == "1":
        return  # opt out, for debugging
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        target = os.open(str(log_path) if log_path else os.devnull,
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, 2)
        os.close(target)
        sys.stderr = io.TextIOWrapper(os.fdopen(saved, "wb", buffering=0), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True, write_through=True)
    except OSError:
        pass


def retarget_native_stderr(log_path: str | os.PathLike) -> None:
    """Send native log lines from now on to `log_path` (appending), e.g. the run's train.log, so
    that what TensorFlow prints before it aborts (a double free, a failed check) is kept with the
    run. Only after `redirect_native_stderr` moved Python's own stderr off descriptor 2."""
    if os.environ.get("DESKTOP_LLM_NATIVE_STDERR") == "1":
        return
    try:
        if sys.stderr.fileno() == 2:
            return  # Python still writes to descriptor 2: retargeting it would hide our messages
    except (AttributeError, ValueError, OSError):
        return
    try:
        target = os.open(str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, 2)
        os.close(target)
    except OSError:
        pass  # the log cannot be opened (a full disk): native lines go on where they went
