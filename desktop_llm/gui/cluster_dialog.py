"""Run on a cluster: the Train page's run written as a config file, and the command that each
machine runs (`desktop-llm train --config FILE --cluster h1:p,h2:p --worker-index i`).

The window starts nothing here: a multi-machine run is started on the machines themselves. The
configuration is the Train page's `run_config()`, so the cluster trains exactly what Start would.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core import atomic
from desktop_llm.core.config import ConfigError
from desktop_llm.core.distribute import batch_split_advice, parse_devices
from desktop_llm.gui.widgets import label, set_role

EXAMPLE_MACHINES = "192.168.1.10:2222\n192.168.1.11:2222"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-_]*)$")


def parse_machines(text: str) -> list[str]:
    """host:port, one a line (blank lines and `#` comments skipped); ConfigError naming the first
    line that is not one, or a machine listed twice."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        host, _, port = line.rpartition(":")
        if not host or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"Line {n} ({line}) is not host:port, e.g. 192.168.1.10:2222.")
        if line in out:
            raise ConfigError(f"{line} is listed twice: each machine once.")
        out.append(line)
    if not out:
        raise ConfigError("List the machines, one host:port a line.")
    return out


def local_replicas(spec: str) -> int | None:
    """Replicas on each machine for TrainConfig.devices; None for auto (each machine's own GPUs)."""
    s = (spec or "auto").strip().lower()
    if s in ("auto", "all"):
        return None
    if s == "cpu":
        return 1
    try:
        _kind, which = parse_devices(s, 1 << 10)  # the machines' GPUs are not known here
    except ConfigError:
        return None
    return len(which) if isinstance(which, list) else int(which)


def worker_commands(config_path: str | Path, machines: list[str]) -> list[str]:
    """The command for each worker, in the order of `machines` (worker 0 first)."""
    cluster = ",".join(machines)
    return [f"desktop-llm train --config {shlex.quote(str(config_path))} --cluster {cluster} --worker-index {i}"
            for i in range(len(machines))]


class ClusterDialog(QDialog):
    def __init__(self, train_page, parent=None):
        super().__init__(parent or train_page)
        self.page = train_page
        self.store = train_page.session.store
        self.setWindowTitle("Run on a cluster")
        self.setMinimumWidth(760)
        self.written: Path | None = None  # the config file once saved
        self.machines: list[str] = []
        self.command_labels: list[QLabel] = []

        intro = label("One run trained on several machines at once (TensorFlow's MultiWorkerMirroredStrategy). "
                      "Each machine runs the same command with its own worker index; the batch size is split "
                      "over the replicas of every machine.", "hint")

        self.hosts = QPlainTextEdit(EXAMPLE_MACHINES)
        self.hosts.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.hosts.setToolTip("host:port of every machine, one a line: the first is worker 0. Each port must be "
                              "free on its machine and reachable from the others.")
        self.hosts.setFixedHeight(self.hosts.fontMetrics().lineSpacing() * 4 + 12)
        self.hosts.textChanged.connect(self._update)
        self.hosts_error = label("", "error")
        machines_box = QGroupBox("Machines (host:port, one a line; the first is worker 0)")
        mb = QVBoxLayout(machines_box)
        mb.addWidget(self.hosts)
        mb.addWidget(self.hosts_error)

        self.path_edit = QLineEdit(str(self.default_path()))
        self.path_edit.setReadOnly(True)
        self.path_edit.setToolTip("The run's configuration: the Train page's settings, corpus and tokenizer")
        self.save_btn = QPushButton("Save configuration…")
        self.save_btn.setProperty("role", "primary")
        self.save_btn.clicked.connect(self.save)
        self.config_note = label("", "hint")
        config_box = QGroupBox("Configuration file")
        cb = QVBoxLayout(config_box)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.save_btn)
        cb.addLayout(row)
        cb.addWidget(self.config_note)

        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(0, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.rows)
        # the group box's colour behind the rows, not the viewport's white
        self.rows.setObjectName("commandRows")
        scroll.setStyleSheet("QScrollArea { background: transparent; } "
                             "QWidget#commandRows { background: transparent; }")
        scroll.viewport().setAutoFillBackground(False)
        scroll.setMinimumHeight(120)
        self.copy_all_btn = QPushButton("Copy all")
        self.copy_all_btn.setToolTip("Copy every command, one a line")
        self.copy_all_btn.clicked.connect(self.copy_all)
        self.copied = label("", "hint")
        commands_box = QGroupBox("Commands: run each on its machine")
        kb = QVBoxLayout(commands_box)
        kb.addWidget(scroll, 1)
        crow = QHBoxLayout()
        crow.addWidget(self.copied, 1)
        crow.addWidget(self.copy_all_btn)
        kb.addLayout(crow)

        self.notes = label("", "hint")
        self.notes.setTextFormat(Qt.RichText)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(machines_box)
        lay.addWidget(config_box)
        lay.addWidget(commands_box, 1)
        lay.addWidget(self.notes)
        lay.addWidget(buttons)
        self._update()
        self.resize(780, 660)  # two machines' commands without scrolling

    # ------------------------------------------------------------------ state
    def default_path(self) -> Path:
        name = self.page.run_config().name or "run"
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "run"
        return self.store.home / "cluster" / f"{slug}.json"

    @property
    def config_path(self) -> Path:
        return self.written or Path(self.path_edit.text())

    def commands(self) -> list[str]:
        return worker_commands(self.config_path, self.machines) if self.machines else []

    def _config_problem(self, cfg, workers: int) -> str:
        try:
            cfg.validate()
        except ConfigError as e:
            return str(e)
        t = cfg.training
        n = workers * (local_replicas(t.devices) or 1)  # "auto": at least one per machine
        advice = batch_split_advice(t.batch_size, n)
        if advice:
            return (f"The batch size ({t.batch_size}) must split evenly over the {n} replicas of "
                    f"{workers} machines: {advice} on the Train page.")
        return ""

    def _update(self) -> None:
        try:
            self.machines = parse_machines(self.hosts.toPlainText())
            self.hosts_error.setText("")
        except ConfigError as e:
            self.machines = []
            self.hosts_error.setText(str(e))
        self.hosts_error.setVisible(bool(self.hosts_error.text()))
        cfg = self.page.run_config()
        problem = self._config_problem(cfg, max(1, len(self.machines)))
        self.save_btn.setEnabled(not problem)
        if problem:
            set_role(self.config_note, "error")
            self.config_note.setText(problem)
        elif self.written:
            set_role(self.config_note, "hint")
            self.config_note.setText(f"Written. Copy it to this same path on every machine "
                                     f"({len(self.machines) or 'no'} machines listed).")
        else:
            set_role(self.config_note, "hint")
            self.config_note.setText("Not written yet: Save writes the Train page's run (settings, corpus, "
                                     "tokenizer, devices) to this file.")
        self._fill_commands()
        corpus = ", ".join(cfg.data.paths) or "the corpus"
        tok = f" and the tokenizer folder {cfg.tokenizer.path}" if cfg.tokenizer.path else ""
        self.notes.setText(
            "<ul style='margin-left:-20px'>"
            f"<li>Every machine needs the corpus ({_html(corpus)}){_html(tok)} at the same path as here, "
            "and this configuration file at the path in its command.</li>"
            "<li>Worker 0, the chief, writes the run folder (checkpoints, metrics, status); the other "
            "workers write no run. Sync its <code>runs/</code> folder into this workspace to follow the "
            "run on the Runs page.</li>"
            "<li>Start every worker: training begins once all have joined. Pausing is not available "
            "across machines (stop, then resume).</li></ul>")

    def _fill_commands(self) -> None:
        """One block per worker: who it is and a Copy button, then its whole command (wrapped, never
        cut off: a command is copied by hand as often as with the button)."""
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:  # gone at once: a deferred delete alone leaves it painted until then
                w.hide()
                w.setParent(None)
                w.deleteLater()
        self.command_labels: list[QLabel] = []
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        for i, (machine, cmd) in enumerate(zip(self.machines, self.commands())):
            who = QLabel(f"<b>Worker {i}</b> on {_html(machine)}"
                         + (" · the chief: writes the run" if i == 0 else ""))
            code = QLabel(cmd)
            code.setObjectName("command")
            code.setFont(mono)
            code.setWordWrap(True)
            code.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
            code.setStyleSheet("QLabel#command { background: palette(base); border: 1px solid palette(mid); "
                               "border-radius: 4px; padding: 5px 7px; }")
            copy = QPushButton("Copy")
            copy.setToolTip(f"Copy worker {i}'s command")
            copy.clicked.connect(lambda _=False, c=cmd, i=i: self._copy(c, f"Copied worker {i}'s command."))
            copy.setEnabled(self.written is not None)
            self.grid.addWidget(who, 2 * i, 0)
            self.grid.addWidget(copy, 2 * i, 1)
            self.grid.addWidget(code, 2 * i + 1, 0, 1, 2)
            self.command_labels.append(code)
        self.grid.setRowStretch(2 * len(self.machines), 1)
        self.copy_all_btn.setEnabled(self.written is not None and bool(self.machines))
        if self.written is None:
            self.copied.setText("Save the configuration first: the commands read it.")

    # ------------------------------------------------------------------ actions
    def save(self) -> Path | None:
        cfg = self.page.run_config()
        if self._config_problem(cfg, max(1, len(self.machines))):
            return None
        start = self.config_path
        try:
            start.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        dest, _ = QFileDialog.getSaveFileName(self, "Save the run's configuration", str(start),
                                              "Run configuration (*.json)")
        if not dest:
            return None
        path = Path(dest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, cfg.to_json() + "\n")
        except OSError as e:
            set_role(self.config_note, "error")
            self.config_note.setText(f"Could not write {path}: {e.strerror or e}")
            return None
        self.written = path
        self.path_edit.setText(str(path))
        self.copied.setText("")
        self._update()
        return path

    def _copy(self, text: str, note: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.copied.setText(note)

    def copy_all(self) -> None:
        if self.written is not None and self.machines:
            self._copy("\n".join(self.commands()) + "\n", f"Copied {len(self.machines)} commands, one a line.")


def _html(text: str) -> str:
    import html

    return html.escape(text)
