"""Functions for tests/core/test_worker_process.py to call in the model worker's child."""

import os
import time


def count(n, progress=None, cancelled=None, emit=None):
    for i in range(n):
        progress(i / n, f"item {i}")
        emit(i)
    return {"n": n, "pid": os.getpid()}


def until_cancelled(progress=None, cancelled=None, emit=None):
    progress(0.0, "waiting")
    while not cancelled():
        time.sleep(0.01)
    return "cancelled"


def fail(progress=None, cancelled=None, emit=None):
    raise ValueError("the first line\nand a second")


def die(progress=None, cancelled=None, emit=None):
    os._exit(9)
