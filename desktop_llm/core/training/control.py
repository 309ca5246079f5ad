"""Pause / resume / stop requests for a running trainer: from another thread, a signal, or
lines on stdin (how the window steers its child process)."""

from __future__ import annotations

import signal
import sys
import threading


class Control:
    """Pause/resume/stop requests from another thread, a signal, or lines on stdin."""

    def __init__(self):
        self.stop = threading.Event()
        self.resume = threading.Event()
        self.resume.set()

    def request_stop(self) -> None:
        self.stop.set()
        self.resume.set()

    def pause(self) -> None:
        self.resume.clear()

    def unpause(self) -> None:
        self.resume.set()

    @property
    def paused(self) -> bool:
        return not self.resume.is_set()

    def listen_stdin(self) -> None:
        """Read `pause`, `resume`, `stop` lines from stdin (how the GUI steers the child)."""

        def loop():
            for line in sys.stdin:
                cmd = line.strip().lower()
                if cmd == "stop":
                    self.request_stop()
                elif cmd == "pause":
                    self.pause()
                elif cmd == "resume":
                    self.unpause()
            # stdin closed: the application that steered us is gone (closed or killed). Stop
            # cleanly (checkpoint, status "stopped") rather than train on unseen; resume later.
            self.request_stop()

        threading.Thread(target=loop, daemon=True, name="stdin-control").start()

    def install_signal_handlers(self) -> None:
        def handler(signum, frame):
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass  # not the main thread (a test, the window's worker): stop comes by stdin or call
