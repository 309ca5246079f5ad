"""The main window: a sidebar of pages in the order of the work (data -> tokenizer -> model ->
train -> runs -> attention -> generate -> evaluate), a status bar with the device, memory and the
training state, and the window state and last workspace remembered between launches."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings, QSize, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from desktop_llm.gui.icons import app_icon, page_icon
from desktop_llm.gui.pages.attention_page import AttentionPage
from desktop_llm.gui.pages.data_page import DataPage
from desktop_llm.gui.pages.evaluate_page import EvaluatePage
from desktop_llm.gui.pages.generate_page import GeneratePage
from desktop_llm.gui.pages.learning_page import LearningPage
from desktop_llm.gui.pages.model_page import ModelPage
from desktop_llm.gui.pages.runs_page import RunsPage
from desktop_llm.gui.pages.tokenizer_page import TokenizerPage
from desktop_llm.gui.pages.train_page import TrainPage
from desktop_llm.gui.session import Session

PAGES = ["Data", "Tokenizer", "Model", "Train", "Runs", "Learning", "Attention", "Generate", "Evaluate"]


class MainWindow(QMainWindow):
    def __init__(self, store, restore: bool = True):
        super().__init__()
        self.setWindowTitle("desktop_llm")
        self.setWindowIcon(app_icon())
        self.session = Session(store, self)
        # Settings live with the workspace (not in the registry), so several workspaces keep theirs.
        self.settings = QSettings(str(store.home / "gui.ini"), QSettings.IniFormat)

        s = self.session
        self.data_page = DataPage(s)
        self.tokenizer_page = TokenizerPage(s)
        self.model_page = ModelPage(s)
        self.train_page = TrainPage(s)
        self.runs_page = RunsPage(s)
        self.learning_page = LearningPage(s)
        self.attention_page = AttentionPage(s)
        self.generate_page = GeneratePage(s)
        self.evaluate_page = EvaluatePage(s)
        self.learning_page.head_requested.connect(self.open_head)
        self.pages = [self.data_page, self.tokenizer_page, self.model_page, self.train_page, self.runs_page,
                      self.learning_page, self.attention_page, self.generate_page, self.evaluate_page]

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setIconSize(QSize(20, 20))
        self.nav.setFixedWidth(178)
        self.stack = QStackedWidget()
        self.page_actions: list[QAction] = []  # View > Data … Evaluate (Ctrl+1 … Ctrl+9)
        for i, (name, page) in enumerate(zip(PAGES, self.pages)):
            item = QListWidgetItem(page_icon(name), name)
            item.setToolTip(f"{name} (Ctrl+{i + 1})")
            self.nav.addItem(item)
            page.layout().setContentsMargins(18, 14, 18, 10)
            self.stack.addWidget(page)
            act = QAction(name, self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.setCheckable(True)
            act.triggered.connect(lambda _=False, i=i: self.show_page(i))
            self.addAction(act)
            self.page_actions.append(act)
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

        self.quit_action = quit_act = QAction("Quit", self)
        quit_act.setShortcut(QKeySequence("Ctrl+Q"))  # QKeySequence.Quit is empty on Windows
        quit_act.setMenuRole(QAction.QuitRole)
        quit_act.triggered.connect(self.close)
        self.addAction(quit_act)

        self.device_label = QLabel("Device: detecting…")
        self.memory_label = QLabel("")
        self.gpu_label = QLabel("")  # GPU memory in use (all processes), where nvidia-smi can tell
        self.training_label = QLabel("")
        sb = self.statusBar()
        sb.addWidget(self.training_label, 1)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.memory_label)
        sb.addPermanentWidget(self.gpu_label)
        self.gpu_label.hide()  # (adding shows it) until a GPU is found
        self._gpu_proc = None
        self._gpu_timer = QTimer(self)  # started once the probe has found a GPU with a memory figure
        self._gpu_timer.setInterval(3000)
        self._gpu_timer.timeout.connect(self._poll_gpu_memory)
        self._mem_timer = QTimer(self)
        self._mem_timer.setInterval(2000)
        self._mem_timer.timeout.connect(self._update_memory)
        self._mem_timer.start()
        self._update_memory()
        self._set_training_label()
        self.device_summary: str | None = None  # what the device probe said, for Help > About
        self.session.device_known.connect(lambda d: self.device_label.setText(f"Device: {d}"))
        self.session.device_known.connect(lambda d: setattr(self, "device_summary", d))
        self._build_menus()
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

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_corpus_action = file_menu.addAction("Add corpus…", self.add_corpus)
        self.add_corpus_action.setToolTip("Add text files to the corpus (the Data page)")
        self.open_workspace_action = file_menu.addAction("Open workspace…", lambda: self.open_workspace())
        self.export_run_action = file_menu.addAction("Export run…", self.export_run)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        view_menu = bar.addMenu("&View")
        pages = QActionGroup(self)
        for act in self.page_actions:
            pages.addAction(act)
            view_menu.addAction(act)
        self.nav.currentRowChanged.connect(
            lambda i: 0 <= i < len(self.page_actions) and self.page_actions[i].setChecked(True))
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("Theme")
        self.theme_actions: dict[str, QAction] = {}
        themes = QActionGroup(self)
        for key, text in (("system", "System"), ("light", "Light"), ("dark", "Dark")):
            act = theme_menu.addAction(text, lambda key=key: self.set_theme(key))
            act.setCheckable(True)
            themes.addAction(act)
            self.theme_actions[key] = act
        from desktop_llm.gui.theme import chosen_theme

        self.theme_actions[chosen_theme()].setChecked(True)

        help_menu = bar.addMenu("&Help")
        self.readme_action = help_menu.addAction("README", self.show_readme)
        self.shortcuts_action = help_menu.addAction("Keyboard shortcuts", self.show_shortcuts)
        self.shortcuts_action.setShortcut(QKeySequence("Ctrl+/"))
        help_menu.addSeparator()
        self.about_action = help_menu.addAction("About desktop_llm", self.show_about)
        self.about_action.setMenuRole(QAction.AboutRole)
        self.menus = {"File": file_menu, "View": view_menu, "Help": help_menu}

    def add_corpus(self) -> None:
        self.show_page("Data")
        self.data_page._add_files()

    def open_workspace(self, folder: str | None = None):
        """Open another workspace: a new window on it replaces this one (which saves its state and
        stops its trainer, as closing does). Returns the new window, or None if nothing changed."""
        from pathlib import Path

        from desktop_llm.store import RunStore, StoreError

        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Open workspace", str(self.session.store.home))
        if not folder:
            return None
        if Path(folder).expanduser().resolve() == self.session.store.home.resolve():
            return None
        if self.train_page.training and QMessageBox.question(
                self, "Open workspace", "A run is training in this workspace. Stop it (it can be resumed "
                                        "later) and open the other workspace?") != QMessageBox.Yes:
            return None
        try:
            store = RunStore(folder)
        except (StoreError, OSError) as e:
            QMessageBox.warning(self, "Open workspace", str(e))
            return None
        window = MainWindow(store)
        _OPEN_WINDOWS.append(window)  # Python must keep the new top-level window alive
        window.show()
        self.close()
        for timer in self.findChildren(QTimer):  # the hidden window polls nothing any more
            timer.stop()
        if self in _OPEN_WINDOWS:
            _OPEN_WINDOWS.remove(self)
        return window

    def open_head(self, layer: int, head: int, text: str, step: int = 0) -> None:
        """A head of the Learning page's atlas, on the Attention page: its map for the probe's text,
        with the model at that step where the run kept a snapshot of it (else at the nearest kept
        step, said in the page's status)."""
        from desktop_llm.core import snapshots

        page = self.attention_page
        self.show_page("Attention")
        run = self.session.store.get(page.picker.run_id) if page.picker.run_id else None
        kept = snapshots.steps(run) if run is not None else []
        if kept and step:
            page.picker.choose_point(str(min(kept, key=lambda s: (abs(s - step), -s))))
        if text.strip():
            page.text.setPlainText(text)
        page.layer.setValue(layer)
        page.head.setValue(head)
        page.tabs.setCurrentIndex(0)
        page.compute()

    def export_run(self) -> None:
        """The Runs page's export of the selected run (the current run, if none is selected)."""
        self.show_page("Runs")
        page = self.runs_page
        if len(page.selected_ids()) != 1 and self.session.current_run:
            page.select([self.session.current_run])
        if len(page.selected_ids()) != 1:
            self.statusBar().showMessage("Select one run on the Runs page to export it.", 6000)
            return
        page._export()

    def set_theme(self, theme: str) -> None:
        from desktop_llm.gui.theme import choose_theme

        choose_theme(QApplication.instance(), theme)
        self.theme_actions[theme].setChecked(True)
        self.settings.setValue("window/theme", theme)

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(keys, what, where) for every shortcut: the menus', then each page's buttons'."""
        native = QKeySequence.SequenceFormat.NativeText
        rows = []
        for menu_name, menu in self.menus.items():
            for act in menu.actions():
                for sub in (act.menu().actions() if act.menu() else [act]):
                    if not sub.shortcut().isEmpty():
                        rows.append((sub.shortcut().toString(native), sub.text().replace("&", ""), menu_name))
        for name, page in zip(PAGES, self.pages):
            for button in page.findChildren(QAbstractButton):
                if not button.shortcut().isEmpty():
                    rows.append((button.shortcut().toString(native), button.text().replace("&", ""),
                                 f"{name} page"))
        return rows

    def show_about(self):
        from desktop_llm.gui.dialogs import AboutDialog

        self.about_dialog = AboutDialog(self.session.store.home, self.device_summary, self)
        self.about_dialog.show()
        return self.about_dialog

    def show_shortcuts(self):
        from desktop_llm.gui.dialogs import ShortcutsDialog

        self.shortcuts_dialog = ShortcutsDialog(self.shortcut_rows(), self)
        self.shortcuts_dialog.show()
        return self.shortcuts_dialog

    def show_readme(self):
        from desktop_llm.gui.dialogs import ReadmeDialog

        self.readme_dialog = ReadmeDialog(self)
        self.readme_dialog.show()
        return self.readme_dialog

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
        self.apply_device_probe(bytes(self._device_proc.readAllStandardOutput()).decode("utf-8", "replace"))

    def apply_device_probe(self, output: str) -> None:
        """The probe's JSON line: the summary for the status bar, the device list (GPUs with name,
        memory, compute capability) for the Train page's picker and the Model page's memory check."""
        summary, devices = "CPU", None
        for line in output.splitlines():
            if line.startswith("{"):
                try:
                    answer = json.loads(line)
                except ValueError:
                    continue  # a malformed line from the device probe: keep what we have
                summary = answer.get("summary") or summary
                if isinstance(answer.get("devices"), list):
                    devices = [d for d in answer["devices"] if isinstance(d, dict)]
        if devices is not None:
            self.session.set_devices(devices)
            gpus = [d for d in devices if d.get("kind") == "GPU" and d.get("memory")]
            self._show_gpu_memory(gpus)
            if gpus:
                self._gpu_timer.start()
        self.session.device_known.emit(summary)

    def _poll_gpu_memory(self) -> None:
        """nvidia-smi in a child process (never TensorFlow): the memory every process uses on the GPUs."""
        import shutil

        from PySide6.QtCore import QProcess

        if not self.isVisible():
            return  # a closed window (another workspace opened) asks no more
        exe = shutil.which("nvidia-smi")
        if not exe:
            self._gpu_timer.stop()
            return
        if self._gpu_proc is not None and self._gpu_proc.state() != QProcess.NotRunning:
            return
        from desktop_llm.core.device import NVIDIA_SMI_ARGS

        self._gpu_proc = proc = QProcess(self)
        proc.setProgram(exe)
        proc.setArguments(NVIDIA_SMI_ARGS)
        proc.finished.connect(lambda *_: self._on_gpu_polled(proc))
        proc.start()

    def _on_gpu_polled(self, proc) -> None:
        from desktop_llm.core.device import parse_nvidia_smi, visible_rows

        rows = visible_rows(parse_nvidia_smi(bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")))
        proc.deleteLater()
        if rows:
            self._show_gpu_memory(rows)

    def _show_gpu_memory(self, gpus: list[dict]) -> None:
        """"GPU 1.2 / 79.6 GiB" in the status bar; nothing at all without a GPU."""
        gpus = [g for g in gpus if g.get("memory")]
        if not gpus:
            self.gpu_label.hide()
            return
        used = sum(g.get("memory_used") or 0 for g in gpus)
        total = sum(g["memory"] for g in gpus)
        self.gpu_label.setText(f"{'GPU' if len(gpus) == 1 else f'{len(gpus)} GPUs'} "
                               f"{used / 2**30:.1f} / {total / 2**30:.1f} GiB")
        self.gpu_label.setToolTip("GPU memory in use by every process (this window, the trainer, others):\n"
                                  + "\n".join(f"{g.get('name', 'GPU')}: {(g.get('memory_used') or 0) / 2**30:.1f}"
                                              f" of {g['memory'] / 2**30:.1f} GiB" for g in gpus))
        self.gpu_label.show()

    def _update_memory(self) -> None:
        import psutil

        rss = psutil.Process().memory_info().rss
        text = f"Memory: app {rss / 2**20:,.0f} MB"
        proc = self.train_page.proc
        children = (("models", self.session.worker().pid),  # the model worker: where the window's models live
                    ("trainer", int(proc.proc.processId()) if proc and proc.running else None))
        for name, pid in children:
            if pid:
                try:
                    text += f" · {name} {psutil.Process(pid).memory_info().rss / 2**20:,.0f} MB"
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
        theme = st.value("window/theme")
        if theme in self.theme_actions:  # chosen in View > Theme before
            self.set_theme(theme)
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
            chosen = _json_value(st.value("workspace/encodings"))  # encodings chosen on the Data page
            if isinstance(chosen, dict):
                self.data_page.encodings = {str(k): str(v) for k, v in chosen.items()}
            self.data_page.add_paths(paths)
        tok_dir = st.value("workspace/tokenizer")
        if tok_dir:
            corpus = _json_value(st.value("workspace/tokenizer_corpus"))
            ok = isinstance(corpus, list) and len(corpus) in (2, 3) and isinstance(corpus[0], list)
            self.tokenizer_page.load(tok_dir, corpus=tuple(corpus) if ok else None)  # (session normalizes)

    def save_state(self) -> None:
        st = self.settings
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/page", self.stack.currentIndex())
        st.setValue("workspace/paths", list(self.session.paths))
        st.setValue("workspace/column", self.session.column or "")
        st.setValue("workspace/tokenizer", self.session.tokenizer_dir or "")
        corpus = self.session.tokenizer_corpus
        st.setValue("workspace/tokenizer_corpus", json.dumps([list(corpus[0]), *corpus[1:]]) if corpus else "")
        st.setValue("workspace/encodings", json.dumps(self.session.encodings))
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


_OPEN_WINDOWS: list[MainWindow] = []  # windows opened by File > Open workspace (kept from the GC)


def _json_value(text):
    """A JSON value saved in gui.ini, or None when absent or unreadable (an older or edited file)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
