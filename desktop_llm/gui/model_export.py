"""The Runs page's "Export model…" menu: the selected run as a keras-hub preset, a SavedModel,
ONNX or LiteRT (core/export), written by the model worker (core/worker_process.py): it loads the
checkpoint and traces TensorFlow functions, which the window's own process never does.

Its own module so the Runs page only places the button.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton

from desktop_llm.core.export import FORMAT_LABELS, FORMATS, ExportError, check_exportable, default_path
from desktop_llm.gui.workers import in_worker


def model_export_button(page) -> QToolButton:
    """A button with one menu entry per format; `page` is the RunsPage (selected_ids, _busy, _say, task)."""
    button = QToolButton(page)
    button.setText("Export model…")
    button.setToolTip("Write the selected run for other tools: a keras-hub preset or TensorFlow SavedModel "
                      "(both generate), or ONNX or LiteRT (forward pass only)")
    button.setPopupMode(QToolButton.InstantPopup)
    menu = QMenu(button)
    for fmt in FORMATS:
        action = menu.addAction(FORMAT_LABELS[fmt])
        action.setData(fmt)
        action.triggered.connect(lambda _=False, f=fmt: export_model(page, f))
    button.setMenu(menu)
    return button


def export_model(page, fmt: str, dest: str | None = None) -> None:
    """Ask where (default <workspace>/exports/<run>-<format>/), then export in the background.
    `dest` skips the dialog (tests)."""
    ids = page.selected_ids()
    if len(ids) != 1 or page._busy():
        return
    store = page.session.store
    run = store.get(ids[0])
    try:
        check_exportable(run, fmt)  # an untied run for keras-hub: say so before asking anything
    except ExportError as e:
        page._say(f"Cannot export: {e}", "error")
        return
    if dest is None:
        dest, _ = QFileDialog.getSaveFileName(page, f"Export {FORMAT_LABELS[fmt]} to a folder",
                                              str(default_path(run, fmt, store.exports_dir)))
        if not dest:
            return
    label = FORMAT_LABELS[fmt]


    def done(result):
        notes = "".join(f" Note: {n}." for n in result.notes)
        page._say(f"Exported {label} to {result.path}.{notes}")

    page.task = in_worker(page, page.session, "desktop_llm.core.worker_jobs:export",
                          lambda msg: page._say(f"Exporting {run.id} as {label}: {msg[0].lower()}{msg[1:]}"), done,
                          lambda msg: page._say(f"Export failed: {msg}", "error"),
                          lambda fraction, msg: page._say(msg) if msg else None, run=run, fmt=fmt, out=dest,
                          exports_dir=store.exports_dir)
