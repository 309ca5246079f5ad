"""`desktop-llm worker` (hidden): the window's model worker (core/worker_process.py), serving
pickled calls on stdin and stdout until the window closes its end."""

from __future__ import annotations

import argparse
import os
import sys


def cmd_worker(args) -> int:
    from desktop_llm.core.worker_process import serve

    # The protocol owns the real stdout; anything else printed (a library's print) goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, replies)


def add_parser(sub) -> None:
    p = sub.add_parser("worker", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_worker)
