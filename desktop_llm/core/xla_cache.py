"""A persistent cache of XLA-compiled programs, shared by every desktop_llm process.

A cold `desktop-llm generate` spent most of its wait before the first token compiling the
decoding loop. TensorFlow can keep compiled executables on disk, keyed by a fingerprint of the
program (`--tf_xla_persistent_cache_directory`), so a second process with the same model shapes
loads them instead (measured: a 50-token cold generate's decoding phase about halved).

Used by the short inference commands only, and only where writing cannot fail: measured with TF
2.21, when the cache file cannot be written (a file-size limit; a full disk behaves alike) the
compiled step silently computes nothing (a NaN loss at the first step, "1e12 tokens/s"). So it
is never on in the trainer or the long-lived window, and off where the cache's disk is short of
space or the process has a file-size limit. Must run before TensorFlow is imported; set
DESKTOP_LLM_XLA_CACHE=0 to turn it off. The folder is trimmed to MAX_BYTES, oldest first.
"""

from __future__ import annotations

import os
from pathlib import Path

FLAG = "--tf_xla_persistent_cache_directory"
MAX_BYTES = 512 * 2**20


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("desktop_llm", appauthor=False)) / "xla"


MIN_FREE_BYTES = 2 * 2**30


def _writes_may_fail(folder: Path) -> bool:
    import resource
    import shutil

    try:
        if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
            return True
    except (AttributeError, OSError, ValueError):  # no such limit here (Windows)
        pass
    return shutil.disk_usage(folder).free < MIN_FREE_BYTES


def enable() -> Path | None:
    if os.environ.get("DESKTOP_LLM_XLA_CACHE") == "0" or FLAG in os.environ.get("TF_XLA_FLAGS", ""):
        return None
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if _writes_may_fail(folder):
            return None
        _trim(folder)
    except OSError:
        return None  # no cache is only slower
    os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {FLAG}={folder}".strip()
    return folder


def _trim(folder: Path) -> None:
    import time

    for p in folder.glob("*.tmp"):  # a write TensorFlow did not finish (it renames when done)
        if time.time() - p.stat().st_mtime > 3600:
            p.unlink(missing_ok=True)
    files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in folder.iterdir() if p.is_file())
    total = sum(size for _, size, _ in files)
    for _, size, p in files:
        if total <= MAX_BYTES:
            break
        p.unlink(missing_ok=True)
        total -= size
