"""The composition root: build the Qt application and the main window, show it, then let the
pages load their heavy parts (TensorFlow is imported only when a worker first needs it)."""

from __future__ import annotations

import os
import sys


def run_app(home: str | None = None, corpus: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtWidgets import QApplication, QMessageBox

    from desktop_llm.gui.main_window import MainWindow
    from desktop_llm.gui.theme import follow_system_theme
    from desktop_llm.store import RunStore, StoreError

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("desktop_llm")
    app.setOrganizationName("desktop_llm")
    follow_system_theme(app)
    try:
        store = RunStore(home)
    except StoreError as e:
        QMessageBox.critical(None, "desktop_llm", str(e))
        return 2
    from desktop_llm.native_log import redirect_native_stderr

    redirect_native_stderr(store.home / "native.log")
    window = MainWindow(store)
    window.show()
    if corpus:  # an explicit corpus replaces the remembered one
        window.data_page.paths = []
        window.data_page.add_paths(corpus)
    return app.exec()
