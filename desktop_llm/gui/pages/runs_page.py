"""Runs: every run in a table; open one to see its curves, select several to overlay them;
resume, delete, export, or import a run someone exported. The table follows the run folders on
disk: a run another machine writes (synced into <workspace>/runs) appears and updates by itself."""

from __future__ import annotations

import contextlib
import os
import time

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core.models import FAMILY_NAMES, get_family
from desktop_llm.gui.model_export import model_export_button
from desktop_llm.gui.plots import MetricsPlots
from desktop_llm.gui.widgets import header, label, set_role
from desktop_llm.gui.workers import run_task
from desktop_llm.store.card import short_duration
from desktop_llm.store.runs import row_family
from desktop_llm.store.sharing import export_zip, import_run

FOLLOW_MS = 2000  # how often the run folders are looked at (a few stat calls per run)
COLUMNS = ["Name", "Status", "Family", "Model", "Step", "Best val loss", "Perplexity", "Duration", "Created"]
MAX_DIFFED = 6  # runs whose settings the details area compares side by side


class RunsPage(QWidget):
    resume_requested = Signal(str)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.rows: list[dict] = []
        self.task = None  # the running import or export, if any
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(COLUMNS.index("Model"), QHeaderView.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self.show_selected)
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Continue a stopped or interrupted run from its last checkpoint")
        self.delete_btn = QPushButton("Delete…")
        self.export_btn = QPushButton("Export zip…")
        self.export_btn.setToolTip(f"Save the selected run as a zip (by default in {session.store.exports_dir})")
        self.report_btn = QPushButton("Report")
        self.report_btn.setToolTip("Write the selected run's report card (HTML and Markdown: identity, data, model, "
                                   "training, baselines, milestones, timeline, samples) and open it; several runs "
                                   "selected give one comparison")
        self.report_btn.clicked.connect(self.write_report)
        self.import_btn = QPushButton("Import…")
        self.import_btn.setToolTip("Add a run from a zip made with Export (checked before anything is kept)")
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setShortcut("F5")
        self.resume_btn.clicked.connect(self._resume)
        self.delete_btn.clicked.connect(self._delete)
        self.export_btn.clicked.connect(self._export)
        self.model_export_btn = model_export_button(self)  # keras-hub, SavedModel, ONNX, LiteRT
        self.import_btn.clicked.connect(self._import)
        self.refresh_btn.clicked.connect(self.refresh)
        bar = QHBoxLayout()
        for b in (self.resume_btn, self.delete_btn, self.export_btn, self.model_export_btn, self.report_btn,
                  self.import_btn):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.refresh_btn)
        self.plots = MetricsPlots(empty_text="Select a run in the table to see its curves here; select "
                                             "several (Ctrl+click, Shift+click) to overlay them.")
        # The selected run, described as `runs show` describes it (model, tokenizer, device, result).
        self.details = label("", "hint")
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table, 1)
        # The card scrolls in a short space: shown in full it made the page 90 px taller than the
        # screen and the splitter jumped between "all rows" and "two rows" (tests/gui/test_fit.py).
        self.details_area = details = QScrollArea()
        details.hide()  # until one run is selected
        details.setWidget(self.details)
        details.setWidgetResizable(True)
        details.setFrameShape(QScrollArea.NoFrame)
        details.setMaximumHeight(8 * self.details.fontMetrics().lineSpacing())
        details.setMinimumHeight(2 * self.details.fontMetrics().lineSpacing())
        tl.addWidget(details)
        self.table.setMinimumHeight(3 * self.table.verticalHeader().defaultSectionSize())
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(self.plots)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([250, 550])
        self.message = label("", "hint")
        lay = QVBoxLayout(self)
        lay.addWidget(header("Runs", f"Every run in {session.store.home}. Runs survive closing the app; "
                                     "a run that was killed shows as interrupted and can be resumed."))
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        lay.addWidget(self.message)
        session.runs_changed.connect(self.refresh)
        self.refresh()
        # Follow the folders: the watcher sees a folder appear or go at once; the timer sees files
        # change inside them (a synced run's metrics and status), which a watcher on runs/ does not.
        self._seen = self._folder_state()
        self.watcher = QFileSystemWatcher(self)
        if session.store.runs_dir.is_dir():
            self.watcher.addPath(str(session.store.runs_dir))
        self.watcher.directoryChanged.connect(lambda *_: self._soon.start())
        self._soon = QTimer(self)  # a burst of changes (a folder being copied) is looked at once
        self._soon.setSingleShot(True)
        self._soon.setInterval(300)
        self._soon.timeout.connect(self.follow)
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(FOLLOW_MS)
        self.follow_timer.timeout.connect(self.follow)
        self.follow_timer.start()

    def _folder_state(self) -> dict[str, tuple]:
        """Each run folder's config, status and metrics files as (size, mtime): what a change shows in."""
        state = {}
        try:
            entries = list(os.scandir(self.session.store.runs_dir))
        except OSError:
            return state
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            sig = []
            for name in ("config.json", "status.json", "metrics.jsonl"):
                try:
                    st = os.stat(os.path.join(entry.path, name))
                    sig.append((st.st_size, st.st_mtime_ns))
                except OSError:
                    sig.append(None)
            state[entry.name] = tuple(sig)
        return state

    def follow(self) -> None:
        """Index the run folders that appeared or changed on disk since the last look (another
        machine's run synced here, a trainer of another window) and show them."""
        from desktop_llm.store.runs import Run

        if not self.window().isVisible():
            return  # a closed window (another workspace opened) looks no more; hidden, it catches up later
        now = self._folder_state()
        changed = {k for k, v in now.items() if self._seen.get(k) != v}
        gone = set(self._seen) - set(now)
        self._seen = now
        if not changed and not gone:
            return
        store = self.session.store
        for run_id in changed:
            run = Run(store.runs_dir / run_id)
            # (a folder still being copied has no config yet, or a damaged one: the next look gets it)
            if run.exists():
                with contextlib.suppress(Exception):
                    store.sync(run)
        if gone & {r["id"] for r in self.rows} and store.writable:
            with contextlib.suppress(Exception):  # (the index is rebuilt at the next change or start)
                store.rebuild()
        self._fill(replot=bool((changed | gone) & set(self.selected_ids())))

    def refresh(self) -> None:
        self._fill(replot=True)

    def _fill(self, replot: bool) -> None:
        import math

        selected = set(self.selected_ids())
        self.rows = self.session.store.list()
        self.table.blockSignals(True)
        mode = self.table.selectionMode()
        # selectRow under ExtendedSelection acts as a click: it kept only the last of several
        # selected runs whenever the folders changed (a run training, another synced in)
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        self.table.clearSelection()  # (MultiSelection's selectRow toggles: from nothing selected)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            best = row.get("best_val_loss")
            family = get_family(row_family(row)) if row_family(row) in FAMILY_NAMES else None
            tokens = family is None or family.loss_over_tokens  # a classifier's loss is over its classes
            cells = [row["name"], row["status"], family.name if family else row_family(row), row.get("summary") or "",
                     f"{row.get('step') or 0:,} / {row['max_steps']:,}",
                     f"{best:.4f}" if best is not None else "–",
                     f"{math.exp(min(best, 30)):.2f}" if best is not None and tokens else "–",
                     short_duration(row.get("duration") or 0), time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, row["id"])
                if c == 1 and row["status"] in ("failed", "interrupted"):
                    item.setForeground(Qt.red)
                    item.setToolTip(row.get("message") or "")
                self.table.setItem(r, c, item)
            if row["id"] in selected:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(COLUMNS.index("Model"), QHeaderView.Stretch)
        if replot:
            self.show_selected()
        else:
            self._update_buttons()  # (the curves shown did not change: keep their zoom)
            self._show_details()

    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.rows[r]["id"] for r in rows if r < len(self.rows)]

    def select(self, run_ids: list[str]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        for r, row in enumerate(self.rows):
            if row["id"] in run_ids:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    def show_selected(self) -> None:
        """Overlay the selected runs' curves: runs of one family (the first selected one's), since
        a classifier's loss and a GPT's do not measure the same thing."""
        self.plots.clear()
        family, left_out = None, []
        for run_id in self.selected_ids():
            run = self.session.store.get(run_id)
            f = run.config.family
            family = family or f
            if f != family:
                left_out.append(run.config.name or run_id)
                continue
            st = run.status()
            self.plots.show_history(run_id, run.config.name or run_id, run.metrics(),
                                    vocabulary=st.get("vocabulary_size") or 0,
                                    baselines=(st.get("baselines") or {}).get("figures"))
        if left_out:
            set_role(self.message, "warning")
            self.message.setText(f"Comparing {family.replace('_', '-')} runs: left out {', '.join(left_out[:5])}"
                                 f"{' and more' if len(left_out) > 5 else ''} (another family).")
        elif self.message.property("role") == "warning":
            set_role(self.message, "hint")
            self.message.setText("")
        self._update_buttons()
        self._show_details()

    def _show_details(self) -> None:
        """One selected run: its card without what the table already shows (name, step, time).
        Several: the settings that differ between them (store/diff.py)."""
        from html import escape

        from desktop_llm.store.card import run_card

        ids = self.selected_ids()
        self.details_area.setVisible(1 <= len(ids) <= MAX_DIFFED)
        if len(ids) > 1:
            self.details.setText(self._diff_html(ids) if len(ids) <= MAX_DIFFED else "")
            return
        if len(ids) != 1:
            self.details.setText("")
            return
        shown = ("device", "message", "best val", "baselines", "family", "tokenizer", "model", "training", "corpus")
        rows = [(k, v) for k, v in run_card(self.session.store.get(ids[0])) if k in shown]
        self.details.setText("<table>" + "".join(
            f"<tr><td style='padding-right:12px'>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
            + "</table>")

    def _diff_html(self, ids: list[str]) -> str:
        from html import escape

        from desktop_llm.store.diff import config_diff

        runs = [self.session.store.get(i) for i in ids]
        rows = config_diff([r.config for r in runs])
        if not rows:
            return "These runs have the same settings (besides their names)."
        cell = "<td style='padding-right:12px'>{}</td>"
        head = "<tr>" + cell.format("<b>settings that differ</b>") + "".join(
            cell.format(f"<b>{escape(r.config.name or r.id)}</b>") for r in runs) + "</tr>"
        body = "".join("<tr>" + cell.format(escape(k)) + "".join(cell.format(escape(v)) for v in vals) + "</tr>"
                       for k, vals in rows)
        return f"<table>{head}{body}</table>"

    def _update_buttons(self) -> None:
        ids = self.selected_ids()
        can_resume = len(ids) == 1 and self.session.store.get(ids[0]).status().get("status") in (
            "stopped", "interrupted", "failed")
        self.resume_btn.setEnabled(can_resume)
        self.delete_btn.setEnabled(bool(ids))
        self.export_btn.setEnabled(len(ids) == 1)
        self.model_export_btn.setEnabled(len(ids) == 1)
        self.report_btn.setEnabled(bool(ids))

    def _resume(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.resume_requested.emit(ids[0])

    def _delete(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        if QMessageBox.question(self, "Delete runs", f"Delete {len(ids)} run(s) and their checkpoints?") != QMessageBox.Yes:
            return
        for run_id in ids:
            try:
                self.session.store.delete(run_id)
            except Exception as e:  # noqa: BLE001
                self.message.setText(str(e))
        self.session.runs_changed.emit()

    def _say(self, text: str, role: str = "hint") -> None:
        self.message.setText(text)
        set_role(self.message, role)

    def _busy(self) -> bool:
        return bool(self.task and not self.task.settled)

    def write_report(self, open_it: bool = True):
        """The selected runs' report card, written into the run's folder (several runs: the workspace's
        reports folder), then opened in the browser. Returns the HTML page's path."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from desktop_llm.store import report

        ids = self.selected_ids()
        if not ids:
            return None
        runs = [self.session.store.get(i) for i in ids]
        folder = runs[0].folder / "report" if len(runs) == 1 else self.session.store.home / "reports" / "-".join(
            r.id[:15] for r in runs[:4])
        from desktop_llm.core.peak import cpu_peak

        try:  # MFU where this machine's peak is known already (`desktop-llm report` measures it once)
            page, _ = report.write(runs, folder, cpu_peak(measure=False))
        except OSError as e:
            self.message.setText(f"The report could not be written: {e}")
            return None
        self.message.setText(f"Report written: {page}")
        if open_it:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(page)))
        return page

    def _export(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1 or self._busy():
            return
        store = self.session.store
        try:
            store.exports_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        dest, _ = QFileDialog.getSaveFileName(self, "Export run", str(store.exports_dir / f"{ids[0]}.zip"),
                                              "Zip archive (*.zip)")
        if not dest:
            return
        run_id = ids[0]
        self._say(f"Exporting {run_id}…")
        self.task = run_task(self, lambda report, cancelled, emit: export_zip(store, run_id, dest),
                             lambda path: self._say(f"Exported to {path}"),
                             lambda msg: self._say(f"Export failed: {msg}", "error"))

    def _import(self) -> None:
        if self._busy():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import a run", str(self.session.store.exports_dir),
                                              "Zip archive (*.zip)")
        if not path:
            return
        store = self.session.store
        self.import_btn.setEnabled(False)
        self._say("Checking and importing the archive…")
        self.task = run_task(self, lambda report, cancelled, emit: import_run(store, path).id,
                             self._on_imported, self._on_import_failed)

    def _on_imported(self, run_id: str) -> None:
        self.import_btn.setEnabled(True)
        self.session.runs_changed.emit()
        self.select([run_id])
        self._say(f"Imported as run {run_id}.")

    def _on_import_failed(self, msg: str) -> None:
        self.import_btn.setEnabled(True)
        self._say(f"Import refused: {msg}", "error")

