"""A persistent cache of XLA-compiled programs, shared by every desktop_llm process.

A cold `desktop-llm generate` spent most of its wait before the first token compiling the
decoding loop, and every resumed run recompiled its training step. TensorFlow can keep compiled
executables on disk, keyed by a fingerprint of the program (`--tf_xla_persistent_cache_directory`),
so a second process with the same model shapes loads them instead (measured: a 50-token cold
generate's decoding phase about halved). Must run before TensorFlow is imported; set
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


def enable() -> Path | None:
    if os.environ.get("DESKTOP_LLM_XLA_CACHE") == "0" or FLAG in os.environ.get("TF_XLA_FLAGS", ""):
        return None
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _trim(folder)
    except OSError:
        return None  # no cache is only slower
    os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {FLAG}={folder}".strip()
    return folder


def _trim(folder: Path) -> None:
    files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in folder.iterdir() if p.is_file())
    total = sum(size for _, size, _ in files)
    for _, size, p in files:
        if total <= MAX_BYTES:
            break
        p.unlink(missing_ok=True)
        total -= size
