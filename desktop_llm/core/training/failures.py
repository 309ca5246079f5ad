"""How a run ends when something goes wrong: the message and suggestion a person reads, the
status written, and the memory and disk cases handled apart."""

from __future__ import annotations

import errno
import gc
import sys
import traceback
from collections.abc import Callable

from desktop_llm.core import events as ev
from desktop_llm.core.config import ConfigError
from desktop_llm.errors import DesktopLLMError, out_of_memory

Emit = Callable[[dict], None]


class TrainingFailed(DesktopLLMError, RuntimeError):
    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.suggestion = suggestion


def explain(e: Exception) -> tuple[str, str]:
    """(message, suggestion) for an error that ended training, in the user's terms."""
    tf = sys.modules.get("tensorflow")  # several machines: TensorFlow's collectives, or JAX's (Gloo)

    text = f"{type(e).__name__}: {e}"
    collective = ("collective", "Collective", "peer", "Socket closed", "Connection reset", "failed to connect")
    if (tf is not None and (isinstance(e, (tf.errors.DeadlineExceededError, tf.errors.UnavailableError)) or (
            isinstance(e, (tf.errors.CancelledError, tf.errors.InternalError, tf.errors.AbortedError))
            and any(w in text for w in collective)))) or ("Gloo" in text and any(w in text for w in collective)):
        return ("Another worker of this run stopped answering (it died, or the network failed): training stopped.",
                ("Start the workers again, or resume the run on this machine alone: it continues from the "
                 "chief's last checkpoint."))
    if isinstance(e, ConfigError):
        return str(e), "Change the settings and start again."
    return f"Training stopped with an error: {text.splitlines()[0][:500]}", ""


def fail(run, message: str, suggestion: str, emit: Emit) -> dict:
    try:
        st = run.write_status(status="failed", message=message, suggestion=suggestion)
    except OSError as e:  # even the status cannot be written (a full disk): still end cleanly
        message += f" (status.json could not be written: {e.strerror or e})"
        st = {**run.status(), "status": "failed", "message": message, "suggestion": suggestion}
    emit(ev.Failed(message=message, suggestion=suggestion).to_dict())
    return st


def classify_failure(run, e: Exception, emit: Emit) -> dict:
    tf = sys.modules.get("tensorflow")  # (None on the other backends where it is not installed)

    # An allocation can fail in TensorFlow (ResourceExhaustedError), in XLA's buffer allocation
    # ("Out of memory while trying to allocate") or in NumPy inside the data pipeline (errors.py).
    if (tf is not None and isinstance(e, tf.errors.ResourceExhaustedError)) or out_of_memory(e):
        # TensorFlow's allocation-failure path can leave the heap corrupt: measured here, a real
        # OOM under a memory cap ended in "double free or corruption" at the next garbage
        # collection. Collect nothing more, record the failure, and tell the caller to exit now.
        gc.disable()
        st = fail(run, "Out of memory: this batch does not fit on the device.",
                   "Use a smaller batch size, a shorter context or a smaller model.", emit)
        return {**st, "exit_now": True}
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return fail(run, f"The disk is full ({e.filename or 'the workspace'}).",
                     "Free some disk space, then resume the run: it continues from its last checkpoint.", emit)
    try:
        with open(run.log_path, "a", encoding="utf-8") as f:
            f.write(traceback.format_exc())
    except OSError:
        pass  # a full disk: the failure is still reported by the event and status.json below
    message, suggestion = explain(e)
    return fail(run, message, suggestion or f"The full traceback is in {run.log_path}.", emit)


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
