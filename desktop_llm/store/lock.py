"""One writer per run: an exclusive lock on `<run>/.lock`, taken by the process that trains the run
(and by anything else that writes to it, such as delete) before it checks anything, and held for
that process's life. The kernel releases it when the process ends, however it ends (SIGKILL, a
crash, out of memory), so a dead trainer never leaves a run locked; a status file cannot do that,
and two `train --resume` started together both read "not running" before either wrote it.

fcntl.flock on POSIX, msvcrt.locking on Windows: each locks the open file, not its name."""

from __future__ import annotations

import os
from pathlib import Path

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # run folder -> the open descriptor that holds its lock (this process's)


class RunBusy(Exception):
    """Another process holds the run's lock."""


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if os.name == "nt":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass  # closing the descriptor releases it anyway
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def acquire(folder: str | os.PathLike) -> None:
    """Take the run's lock for the rest of this process's life (or until `release`); RunBusy if
    another process has it. Taking it again in the same process is a no-op."""
    key = str(Path(folder).resolve())
    if key in _held:
        return
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    if not _try_lock(fd):
        os.close(fd)
        raise RunBusy(key)
    _held[key] = fd


def release(folder: str | os.PathLike) -> None:
    fd = _held.pop(str(Path(folder).resolve()), None)
    if fd is not None:
        _unlock(fd)
        os.close(fd)


def is_locked(folder: str | os.PathLike) -> bool:
    """Whether some process (this one included) holds the run's lock now."""
    key = str(Path(folder).resolve())
    if key in _held:
        return True
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)
