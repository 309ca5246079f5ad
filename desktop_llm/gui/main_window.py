"""The main window: a sidebar of pages in the order of the work (data -> tokenizer -> model ->
train -> runs -> attention -> generate -> evaluate), a status bar with the device, memory and the
training state, and the window state and last workspace remembered between launches."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings, QSize, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from desktop_llm.gui.icons import page_icon
from desktop_llm.gui.pages.attention_page import AttentionPage
from desktop_llm.gui.pages.data_page import DataPage
from desktop_llm.gui.pages.evaluate_page import EvaluatePage
from desktop_llm.gui.pages.generate_page import GeneratePage
from desktop_llm.gui.pages.model_page import ModelPage
from desktop_llm.gui.pages.runs_page import RunsPage
from desktop_llm.gui.pages.tokenizer_page import TokenizerPage
from desktop_llm.gui.pages.train_page import TrainPage
from desktop_llm.gui.session import Session

PAGES = ["Data", "Tokenizer", "Model", "Train", "Runs", "Attention", "Generate", "Evaluate"]


class MainWindow(QMainWindow):
    def __init__(self, store, restore: bool = True):
        super().__init__()
        self.setWindowTitle("desktop_llm")
        self.session = Session(store, self)
        # Settings live with the workspace (not in the registry), so several workspaces keep theirs.
        self.settings = QSettings(str(store.home / "gui.ini"), QSettings.IniFormat)

        s = self.session
        self.data_page = DataPage(s)
        self.tokenizer_page = TokenizerPage(s)
        self.model_page = ModelPage(s)
        self.train_page = TrainPage(s)
        self.runs_page = RunsPage(s)
        self.attention_page = AttentionPage(s)
        self.generate_page = GeneratePage(s)
        self.evaluate_page = EvaluatePage(s)
        self.pages = [self.data_page, self.tokenizer_page, self.model_page, self.train_page, self.runs_page,
                      self.attention_page, self.generate_page, self.evaluate_page]

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setIconSize(QSize(20, 20))
        self.nav.setFixedWidth(178)
        self.stack = QStackedWidget()
        for i, (name, page) in enumerate(zip(PAGES, self.pages)):
            item = QListWidgetItem(page_icon(name), name)
            item.setToolTip(f"{name} (Ctrl+{i + 1})")
            self.nav.addItem(item)
            page.layout().setContentsMargins(18, 14, 18, 10)
            self.stack.addWidget(page)
            act = QAction(self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, i=i: self.show_page(i))
            self.addAction(act)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        body = QWidget()
        lay = QHBoxLayout(body)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(body)

        # wiring between pages: only through the session and these few signals
        self.runs_page.resume_requested.connect(self._resume)
        self.train_page.run_started.connect(lambda _: self._set_training_label())
        self.train_page.run_ended.connect(lambda *_: self._set_training_label())

        quit_act = QAction("Quit", self)
        quit_act.setShortcut(QKeySequence.Quit)
        quit_act.triggered.connect(self.close)
        self.addAction(quit_act)

        self.device_label = QLabel("Device: …")
        self.memory_label = QLabel("")
        self.training_label = QLabel("")
        sb = self.statusBar()
        sb.addWidget(self.training_label, 1)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.memory_label)
        self._mem_timer = QTimer(self)
        self._mem_timer.setInterval(2000)
        self._mem_timer.timeout.connect(self._update_memory)
        self._mem_timer.start()
        self._update_memory()
        self._set_training_label()
        self.session.device_known.connect(lambda d: self.device_label.setText(f"Device: {d}"))
        # Asking TensorFlow for devices imports it (seconds): after the window is up, off the UI thread.
        QTimer.singleShot(300, self._probe_device)  # bound to the window: never fires after it is gone

        self.resize(1280, 820)
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and (screen.width() < 1280 or screen.height() < 820):
            self.resize(min(1280, screen.width()), min(820, screen.height()))
        if restore:
            self._restore()
        else:
            self.show_page(0)

    # ------------------------------------------------------------------ navigation
    def show_page(self, index_or_name) -> None:
        i = PAGES.index(index_or_name) if isinstance(index_or_name, str) else int(index_or_name)
        self.nav.setCurrentRow(i)

    @property
    def current_page(self) -> str:
        return PAGES[self.stack.currentIndex()]

    def _resume(self, run_id: str) -> None:
        self.show_page("Train")
        self.train_page.resume_run(run_id)

    # ------------------------------------------------------------------ status bar
    def _probe_device(self) -> None:
        """Ask `desktop-llm devices --json` in a child process: importing TensorFlow here, even on
        a worker thread, holds the GIL while its libraries load and froze the window ~0.5 s."""
        import sys

        from PySide6.QtCore import QProcess

        self._device_proc = proc = QProcess(self)
        proc.setProgram(sys.executable)
        proc.setArguments(["-m", "desktop_llm", "devices", "--json"])
        proc.finished.connect(self._on_device_probed)
        proc.start()

    def _on_device_probed(self, code: int, _status) -> None:
        import json

        summary = "CPU"
        for line in bytes(self._device_proc.readAllStandardOutput()).decode("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    summary = json.loads(line).get("summary") or summary
                except ValueError:
                    pass  # a malformed line from the device probe: keep the summary we have
        self.session.device_known.emit(summary)

    def _update_memory(self) -> None:
        import psutil

        rss = psutil.Process().memory_info().rss
        text = f"Memory: app {rss / 2**20:,.0f} MB"
        proc = self.train_page.proc
        if proc and proc.running:
            try:
                child = psutil.Process(int(proc.proc.processId())).memory_info().rss
                text += f" · trainer {child / 2**20:,.0f} MB"
            except (psutil.Error, ValueError):
                pass
        self.memory_label.setText(text)

    def _set_training_label(self) -> None:
        if self.train_page.training:
            self.training_label.setText(f"Training run {self.train_page.run_id}…")
        else:
            self.training_label.setText("No run training.")

    # ------------------------------------------------------------------ state
    def _restore(self) -> None:
        st = self.settings
        geom = st.value("window/geometry")
        if geom is not None:
            self.restoreGeometry(geom)
        self.show_page(int(st.value("window/page", 0)))
        # the Model and Train forms (JSON: an INI file would hand every number back as a string)
        for key, page in (("workspace/model", self.model_page), ("workspace/train", self.train_page)):
            values = _json_value(st.value(key))
            if isinstance(values, dict):
                page.apply_settings(values)
        run_id = st.value("workspace/run")
        if run_id and any(r["id"] == run_id for r in self.session.store.list()):
            self.session.set_current_run(str(run_id))  # the run pickers follow it
        paths = st.value("workspace/paths") or []
        if isinstance(paths, str):
            paths = [paths]
        if paths:
            self.data_page.column.setText(st.value("workspace/column", "") or "")
            self.data_page.add_paths(paths)
        tok_dir = st.value("workspace/tokenizer")
        if tok_dir:
            corpus = _json_value(st.value("workspace/tokenizer_corpus"))
            ok = isinstance(corpus, list) and len(corpus) == 2 and isinstance(corpus[0], list)
            self.tokenizer_page.load(tok_dir, corpus=(tuple(corpus[0]), corpus[1]) if ok else None)

    def save_state(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/page", self.stack.currentIndex())
        st.setValue("workspace/paths", list(self.session.paths))
        st.setValue("workspace/column", self.session.column or "")
        st.setValue("workspace/tokenizer", self.session.tokenizer_dir or "")
        corpus = self.session.tokenizer_corpus
        st.setValue("workspace/tokenizer_corpus", json.dumps([list(corpus[0]), corpus[1]]) if corpus else "")
        st.setValue("workspace/model", json.dumps(self.model_page.settings()))
        st.setValue("workspace/train", json.dumps(self.train_page.settings()))
        st.setValue("workspace/run", self.session.current_run or "")
        st.sync()

    def closeEvent(self, event) -> None:
        self.save_state()
        self.train_page.shutdown()
        for page in (self.generate_page, self.attention_page, self.evaluate_page, self.data_page):
            task = getattr(page, "task", None)
            if task:
                task.cancel()
        super().closeEvent(event)


def _json_value(text):
    """A JSON value saved in gui.ini, or None when absent or unreadable (an older or edited file)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
