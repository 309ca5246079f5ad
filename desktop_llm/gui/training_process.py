"""The trainer as a child process: `python -m desktop_llm train --resume <run> --json
--control-stdin`. Its JSON-lines events become Qt signals; pause/resume/stop are lines on its
stdin; Kill is SIGKILL. A crash or out-of-memory in the child never takes the window down."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

STOP_GRACE_MS = 60_000  # how long a stopping trainer may take to checkpoint before it is killed


class TrainingProcess(QObject):
    event = Signal(dict)
    ended = Signal(int, str)  # exit code, message ("" when it ended normally)

    def __init__(self, home: str, run_id: str, parent: QObject | None = None, backend: str = "auto"):
        super().__init__(parent)
        self.run_id = run_id
        self._buf = b""
        self._last_type = ""
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        self.proc.setProcessEnvironment(env)
        self.proc.setProgram(sys.executable)
        self.proc.setArguments(["-m", "desktop_llm", "--home", home, "train", "--resume", run_id,
                                "--json", "--control-stdin", "--backend", backend])
        self.proc.readyReadStandardOutput.connect(self._on_stdout)
        self.proc.readyReadStandardError.connect(self._on_stderr)
        self.proc.finished.connect(self._on_finished)
        self.proc.errorOccurred.connect(self._on_error)
        self.stderr_tail = ""

    def start(self) -> None:
        self.proc.start()

    @property
    def running(self) -> bool:
        return self.proc.state() != QProcess.NotRunning

    def send(self, command: str) -> None:
        if self.running:
            self.proc.write((command + "\n").encode())

    def pause(self) -> None:
        self.send("pause")

    def resume(self) -> None:
        self.send("resume")

    def stop(self, grace_ms: int | None = None) -> None:
        """Ask the trainer to checkpoint and end; kill it if it has not within `grace_ms`.

        The kill timer belongs to this process: a run resumed in a new process meanwhile is
        never the one killed (a page-level timer once killed the resumed run)."""
        if not self.running:
            return
        self.send("stop")
        grace = STOP_GRACE_MS if grace_ms is None else grace_ms
        QTimer.singleShot(grace, self, self.kill)

    def kill(self) -> None:
        if self.running:
            self.proc.kill()

    def _on_stdout(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            line = line.strip()
            if not line.startswith(b"{"):
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self._last_type = ev.get("type", "")
            self.event.emit(ev)

    def _on_stderr(self) -> None:
        self.stderr_tail = (self.stderr_tail + bytes(self.proc.readAllStandardError()).decode(
            "utf-8", "replace"))[-4000:]

    def _on_finished(self, code: int, status) -> None:
        self._on_stdout()
        message = ""
        if (self._last_type not in ("completed", "stopped", "failed")
                and (status == QProcess.CrashExit or code != 0)):
            last = [ln for ln in self.stderr_tail.splitlines() if ln.strip()]
            message = ("The training process ended unexpectedly"
                       + (f": {last[-1][:300]}" if last else "") + ". The last checkpoint is kept; "
                       "you can resume the run. Native messages, if any, are in the run's train.log.")
        self.ended.emit(code, message)

    def _on_error(self, err) -> None:
        if err == QProcess.FailedToStart:
            self.ended.emit(-1, f"Could not start the training process: {self.proc.errorString()}")
