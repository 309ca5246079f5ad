"""One base class for the errors desktop_llm raises on purpose: a setting, a file or a machine
that cannot do what was asked, worded for the person who asked. The command line prints them as
one line (`error: ...`), the window in a status line; any other exception is a bug and keeps its
traceback (in the run's train.log for the trainer).

`Cancelled` is the one way work stops because the user asked (a tokenizer training, a corpus
scan, a page's background task): the engine raises it, the GUI's task runner reports it as a
message, never as an error dialog.
"""

from __future__ import annotations


class DesktopLLMError(Exception):
    """An expected failure with a message for the user."""


class Cancelled(DesktopLLMError):
    """The user asked to stop; the message says what was (not) kept."""


class UsageError(DesktopLLMError):
    """A command asked for something it cannot do as given (a flag, a missing argument): the
    command line's `CliError` and the families' own commands raise it."""


class ExportError(DesktopLLMError, ValueError):
    """An export that cannot be made; the message is one line for the user. Here, not in
    `core/export`, so that the export package's modules and its `__init__` need not import each
    other."""


OUT_OF_MEMORY = ("Out of memory: this model does not fit here. Use a smaller model, batch or context "
                 "(or a shorter text).")
_MEMORY_WORDS = ("ResourceExhaustedError", "RESOURCE_EXHAUSTED", "OutOfMemoryError", "Out of memory",
                 "out of memory", "OOM when", "MemoryError", "bad_alloc")


def out_of_memory(e: BaseException) -> bool:
    """An allocation that failed, in NumPy or Python (MemoryError), TensorFlow, XLA or the
    allocator (bad_alloc; tf.data re-raises a MemoryError under another type with the name in its
    text): one rule for the command line, the window and the trainer, without importing a backend."""
    text = f"{type(e).__name__}: {e}"[:2000]
    return isinstance(e, MemoryError) or any(w in text for w in _MEMORY_WORDS)


def readable(e: BaseException) -> str:
    """One line a person can read: the message of our own errors, the first line of library ones
    (the window's workers and the model worker's child say errors this way)."""
    if out_of_memory(e):  # a model too big for this machine: what to do, not TensorFlow's allocator dump
        return OUT_OF_MEMORY
    message = e.args[0] if e.args else None
    if type(e).__module__.startswith(("tensorflow", "keras")) or not isinstance(message, str):
        first = (str(e).strip().splitlines() or [""])[0][:300]
        return f"{type(e).__name__}: {first}" if first else type(e).__name__
    return message
