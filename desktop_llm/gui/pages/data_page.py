"""Data: add files and folders (dialog or drag and drop), see each source's encoding and
outcome, a preview, corpus statistics and the train/validation split. A file whose encoding is
unsure (or wrong) gets another one from Encoding… (button, or the table's context menu)."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.sources_model import SourcesModel
from desktop_llm.gui.widgets import header, label, set_role
from desktop_llm.gui.workers import run_task


def readings(paths, column, encodings, val_fraction, label_column=None,
             group_column=None) -> list[tuple[str, str, list | None]]:
    """(family, what it would learn from these files, its first example in marked parts or None)
    for each family that reads them as more than plain text, with the Train page's label and group
    columns. Runs on the scan's worker thread: it reads the files again."""
    from desktop_llm.core.models import families
    from desktop_llm.gui.families import family_ui

    found = []
    for fam in families():
        text = fam.describe_data(paths, column, encodings, val_fraction, label_column, group_column)
        if text:
            found.append((family_ui(fam.name).CHOICE.split(":")[0], text, fam.example_parts(paths, encodings)))
    return found


def marked_html(parts: list[tuple[str, bool]], limit: int = 240) -> str:
    """An example with what the model learns to write in the accent colour, the rest greyed."""
    from desktop_llm.gui.theme import DARK_ACCENT

    out, left = [], limit
    for text, learned in parts:
        piece = text if len(text) <= left else text[: max(0, left)] + "…"
        left -= len(piece)
        style = f"color:{DARK_ACCENT};font-weight:600" if learned else "color:#8a8f98"
        out.append(f"<span style='{style}'>{escape(piece).replace(chr(10), ' ⏎ ')}</span>")
        if left <= 0:
            break
    return "".join(out)


class DataPage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.paths: list[str] = []
        self.encodings: dict[str, str] = {}  # file path -> encoding chosen instead of the detected one
        self.sources = []
        self.task = None
        self._reselect: str | None = None  # the file to select again after a rescan
        self.setAcceptDrops(True)

        add_files = QPushButton("Add files…")
        add_files.setToolTip("Text, Markdown, JSONL or CSV files (Ctrl+O)")
        add_files.setShortcut("Ctrl+O")
        add_files.clicked.connect(self._add_files)
        add_folder = QPushButton("Add folder…")
        add_folder.setToolTip("Every text file in a folder and its subfolders")
        add_folder.clicked.connect(self._add_folder)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self.clear)
        self.column = QLineEdit()
        self.column.setPlaceholderText("text column of JSONL/CSV (default: 'text')")
        self.column.editingFinished.connect(self.rescan)
        session.columns_changed.connect(lambda: self.paths and self.rescan())  # the Train page's label, group
        self.val = QDoubleSpinBox()
        self.val.setRange(0.01, 0.5)
        self.val.setSingleStep(0.01)
        self.val.setValue(0.1)
        self.val.setToolTip("Share of the text held out to measure validation loss")
        self.val.valueChanged.connect(self.rescan)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setVisible(False)
        self.cancel_btn.clicked.connect(self._cancel)

        bar = QHBoxLayout()
        for w in (add_files, add_folder, self.clear_btn):
            bar.addWidget(w)
        bar.addSpacing(16)
        bar.addWidget(label("Column"))
        bar.addWidget(self.column, 1)
        bar.addWidget(label("Validation share"))
        bar.addWidget(self.val)

        self.model = SourcesModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)  # fixed heights: no per-row measuring
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.selectionModel().selectionChanged.connect(self._show_preview)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.encoding_btn = QPushButton("Encoding…")
        self.encoding_btn.setToolTip("Read the selected file(s) with another encoding (also: right-click a file)")
        self.encoding_btn.setEnabled(False)
        self.encoding_btn.clicked.connect(self.choose_encoding)
        self.encoding_note = label("", "warning")  # why the selected file's encoding is unsure
        self.encoding_note.setVisible(False)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a file to preview it.")

        stats = QGroupBox("Corpus")
        grid = QFormLayout(stats)
        self.stat_labels = {}
        for key, name in [("documents", "Documents"), ("characters", "Characters"), ("lines", "Lines"),
                          ("distinct", "Distinct characters"), ("tokens", "Estimated tokens"),
                          ("split", "Train / validation")]:
            self.stat_labels[key] = label("–", "figure")
            grid.addRow(name, self.stat_labels[key])
        # What each family that reads these files as more than text would learn from them: a
        # labelled CSV's classes, a TSV's sentence pairs (Family.describe_data).
        self.readings = label("", "hint")
        self.readings.setWordWrap(True)
        self.readings.setTextFormat(Qt.RichText)
        grid.addRow(self.readings)
        self.message = label("Drop text files or folders here, or use Add files.", "hint")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(stats)
        preview_bar = QHBoxLayout()
        preview_bar.addWidget(label("Preview", None), 1)
        preview_bar.addWidget(self.encoding_btn)
        rl.addLayout(preview_bar)
        rl.addWidget(self.encoding_note)
        rl.addWidget(self.preview, 1)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([640, 420])

        lay = QVBoxLayout(self)
        lay.addWidget(header("Data", "Your texts: files and folders in any language. Nothing is "
                                     "ever written to them."))
        lay.addLayout(bar)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.cancel_btn)
        lay.addLayout(prog)
        lay.addWidget(split, 1)
        lay.addWidget(self.message)

    # drag and drop
    def dragEnterEvent(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e):
        self.add_paths([u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()])

    def _add_files(self):
        files, _ = QFileDialog.getOpenFileNames(self, "Add text files", str(Path.home()),
                                                "Text (*.txt *.md *.jsonl *.csv *.tsv *.text);;All files (*)")
        self.add_paths(files)

    def _add_folder(self):
        folder = QFileDialog.getExistingDirectory(self, "Add a folder", str(Path.home()))
        if folder:
            self.add_paths([folder])

    def add_paths(self, paths) -> None:
        for p in paths:
            p = str(Path(p).resolve())
            if p not in self.paths:
                self.paths.append(p)
        self.rescan()

    def clear(self) -> None:
        """Forget the files and everything shown of them (the preview stayed)."""
        self.paths = []
        self.encodings = {}
        self.sources = []
        self.preview.clear()
        self.encoding_note.setVisible(False)
        self.readings.setText("")
        set_role(self.message, "hint")
        self.message.setText("Drop text files or folders here, or use Add files.")
        self.rescan()

    # encodings
    def _selected_files(self) -> list:
        """The selected sources that are files (not inline text, not a missing path)."""
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [self.sources[r] for r in rows if r < len(self.sources) and self.sources[r].kind != "inline"
                and os.path.isfile(self.sources[r].path)]

    def _context_menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        if not self.table.selectionModel().isRowSelected(index.row(), index.parent()):
            self.table.selectRow(index.row())
        files = self._selected_files()
        menu = QMenu(self)
        act = menu.addAction("Encoding…", self.choose_encoding)
        act.setEnabled(bool(files))
        if any(s.chosen for s in files):
            menu.addAction("Detect the encoding again", lambda: self.set_encoding([s.path for s in files], None))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def choose_encoding(self) -> None:
        """Ask which encoding to read the selected file(s) with (the detected one listed first)."""
        from desktop_llm.gui.encoding_dialog import EncodingDialog

        files = self._selected_files()
        if not files:
            return
        dlg = EncodingDialog(files[0], len(files), self)
        result = dlg.exec()
        if result == QDialog.Accepted:
            self.set_encoding([s.path for s in files], dlg.encoding())
        elif result == EncodingDialog.DETECT:
            self.set_encoding([s.path for s in files], None)

    def set_encoding(self, paths, encoding: str | None) -> None:
        """Read these files with `encoding` (None: detect it again) from now on, in this session
        and in the runs trained from it; the corpus is read again."""
        from desktop_llm.core.corpus import check_encoding

        encoding = check_encoding(encoding) if encoding else None
        for p in paths:
            key = os.path.abspath(p)
            if encoding:
                self.encodings[key] = encoding
            else:
                self.encodings.pop(key, None)
        self._reselect = os.path.abspath(paths[0]) if paths else None
        self.rescan()

    def _cancel(self):
        if self.task:
            self.task.cancel()

    def rescan(self) -> None:
        from desktop_llm.core.corpus import Corpus

        if self.task and self.task.running:
            self.task.cancel()
        column = self.column.text().strip() or None
        val = self.val.value()
        paths = list(self.paths)
        encodings = dict(self.encodings)
        labels, groups = self.session.label_column, self.session.group_column
        self.session.set_corpus(paths, column, val, encodings)
        if not paths:
            self.model.set_sources([])
            for lab in self.stat_labels.values():
                lab.setText("–")
            return

        def work(report, cancelled, emit):
            corpus = Corpus(paths=paths, column=column, encodings=encodings)
            corpus.scan(lambda i, n: report(i / max(1, n) * 0.3, f"Checking {i:,}/{n:,} files…"))
            if cancelled():
                return None
            report(0.3, "Counting characters and lines…")
            last = [0.0]

            def counted(f):  # at most ~100 progress signals, however many records there are
                if f - last[0] >= 0.01:
                    last[0] = f
                    report(0.3 + 0.7 * f, "")

            st = corpus.stats(val, counted, cancelled)
            return corpus, st, readings(paths, column, encodings, val, labels, groups)

        self.progress.setVisible(True)
        self.cancel_btn.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText("Reading the corpus…")
        mine = {}  # a scan this one replaced still reports (its cancellation, late): not over this one's

        def current(slot):
            return lambda *a: slot(*a) if mine["task"] is self.task else None

        self.task = mine["task"] = run_task(self, work, current(self._on_scanned), current(self._on_error),
                                            on_progress=current(self._on_progress))

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(int(100 * fraction))
        if message:
            self.message.setText(message)

    def _on_error(self, msg: str) -> None:
        self._done()
        if msg == "Cancelled.":
            self.message.setText("Cancelled: the corpus was not read to the end.")
            return
        set_role(self.message, "error")
        self.message.setText(msg)

    def _done(self):
        self.progress.setVisible(False)
        self.cancel_btn.setVisible(False)

    def _on_scanned(self, result) -> None:
        self._done()
        if result is None:
            self.message.setText("Cancelled.")
            return
        corpus, st, found = result
        self.readings.setText("<br>".join(
            f"<b>{escape(name)}</b>: {escape(text)}" + (f"<br>{marked_html(parts)} <i>(in colour: what the model "
                                                        "learns to write)</i>" if parts else "")
            for name, text, parts in found))
        self.sources = corpus.sources
        self.model.set_sources(self.sources)
        L = self.stat_labels
        L["documents"].setText(f"{st.documents:,}")
        L["characters"].setText(f"{st.characters:,}")
        # a CSV's or JSONL's one-line texts have no line break inside them: not "0 lines"
        L["lines"].setText(f"{st.lines:,}" if st.lines or not st.documents else "one per text")
        L["distinct"].setText(f"{st.distinct_characters:,}" + (f" ({st.distinct_cjk:,} CJK)" if st.distinct_cjk else ""))
        et = st.estimated_tokens
        L["tokens"].setText(f"{et['char']:,} chars · ~{et['sentencepiece']:,} subwords")
        L["split"].setText(f"{st.train_characters:,} / {st.validation_characters:,}")
        bad = sum(1 for s in self.sources if not s.ok)
        unsure = sum(1 for s in self.sources if s.ok and s.unsure)
        set_role(self.message, "hint")
        usable = len(self.sources) - bad
        self.message.setText(f"{usable} usable source{'s' if usable != 1 else ''}" + (f", {bad} skipped (see Details)" if bad else "")
                             + (f", {unsure} with an unsure encoding (check the preview; Encoding… to change it)"
                                if unsure else "")
                             + ". Next: build a tokenizer.")
        if self.sources:
            row = 0
            if self._reselect:
                row = next((i for i, s in enumerate(self.sources) if os.path.abspath(s.path) == self._reselect), 0)
            elif unsure:
                row = next(i for i, s in enumerate(self.sources) if s.ok and s.unsure)
            self._reselect = None
            self.table.selectRow(row)
        self.stats = st

    def _show_preview(self) -> None:
        from desktop_llm.core.corpus import preview

        rows = self.table.selectionModel().selectedRows()
        self.encoding_btn.setEnabled(bool(self._selected_files()))
        if not rows or rows[0].row() >= len(self.sources):
            self.encoding_note.setVisible(False)
            return
        s = self.sources[rows[0].row()]
        self.encoding_note.setVisible(s.ok and s.unsure)
        if s.ok and s.unsure:
            from desktop_llm.core.corpus import describe_encoding

            why = s.reason.rpartition("unsure: ")[2]
            self.encoding_note.setText(f"⚠ Read as {describe_encoding(s.encoding or '')}, but unsure: {why}. "
                                       "If the text below looks wrong, use Encoding… to choose another.")
        if not s.ok:
            self.preview.setPlainText(f"{s.path}\n\nNot used: {s.reason}")
            return
        try:
            self.preview.setPlainText(preview(s, self.column.text().strip() or None, 3000))
        except OSError as e:
            self.preview.setPlainText(f"Cannot read: {e}")

