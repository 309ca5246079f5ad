"""The composition root: build the Qt application and the main window, show it, then let the
pages load their heavy parts (TensorFlow is imported only when a worker first needs it)."""

from __future__ import annotations

import os
import sys


def make_app():
    """The QApplication, with desktop_llm's name, icon, desktop file and theme."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from desktop_llm.about import version
    from desktop_llm.gui.fonts import ensure_cjk_font
    from desktop_llm.gui.icons import app_icon
    from desktop_llm.gui.theme import follow_system_theme

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("desktop_llm")
    app.setOrganizationName("desktop_llm")
    app.setApplicationVersion(version())
    app.setWindowIcon(app_icon())
    QGuiApplication.setDesktopFileName("desktop_llm")  # packaging/desktop_llm.desktop (Wayland's app id)
    follow_system_theme(app)
    ensure_cjk_font()
    collect_garbage_on_the_ui_thread()
    return app


_collector = None


def collect_garbage_on_the_ui_thread():
    """Python's cyclic garbage collector, run only by the UI thread (pyqtgraph's GarbageCollector:
    automatic collection off, a timer collects). Left automatic, a collection can start in any
    thread that allocates (a corpus scan, a tokenizer worker), free a dead window's widgets there,
    and deadlock: the worker holds Qt's object mutex and waits for the GIL, the UI thread holds the
    GIL and waits for the mutex (seen in the test suite: py-spy showed exactly that pair)."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=1.0)
    return _collector


def open_window(store, corpus: list[str] | None = None, first_corpus: list[str] | None = None):
    """The main window on `store`, shown; an explicit corpus (every path of it) replaces the
    remembered one; `first_corpus` is opened only where nothing was ever remembered (`make run`
    replaced the user's corpus with the sample at every launch)."""
    from desktop_llm.gui.main_window import MainWindow

    window = MainWindow(store)
    window.show()
    if not corpus and first_corpus and not window.settings.contains("workspace/paths"):
        corpus = first_corpus
    if corpus:
        window.data_page.paths = []
        window.data_page.add_paths(corpus)
    return window


def _screenshot_then_quit(app, window, path: str, delay_s: float, result: list[int]) -> None:
    """After `delay_s` seconds, save the window to `path` (a PNG) and quit: `result[0]` becomes 0 if
    it was saved, else 1. For checking a build without looking at a screen."""
    from PySide6.QtCore import QTimer

    def shoot():
        ok = window.grab().save(path)
        if not ok:
            print(f"error: cannot save a screenshot to {path}", file=sys.stderr)
        result[0] = 0 if ok else 1
        window.close()
        app.quit()

    QTimer.singleShot(max(0, int(delay_s * 1000)), shoot)


def run_app(home: str | None = None, corpus: list[str] | None = None, screenshot: str | None = None,
            screenshot_delay: float = 3.0, first_corpus: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtWidgets import QMessageBox

    from desktop_llm.store import RunStore, StoreError

    app = make_app()
    try:
        store = RunStore(home)
    except StoreError as e:
        QMessageBox.critical(None, "desktop_llm", str(e))
        return 2
    from desktop_llm.native_log import redirect_native_stderr

    redirect_native_stderr(store.home / "native.log")
    window = open_window(store, corpus, first_corpus)  # kept alive while the app runs
    if screenshot:
        result = [1]
        _screenshot_then_quit(app, window, screenshot, screenshot_delay, result)
        app.exec()
        return result[0]
    return app.exec()
