"""The window's frame: its menus (File, View, Help), the theme choice, the About dialog and its
diagnostics, the app's identity (icon, desktop file name), and File > Open workspace."""

import json
import os
import subprocess
import sys
import textwrap

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

import desktop_llm
from desktop_llm.gui import main_window as main_window_module
from desktop_llm.gui.main_window import PAGES
from tests.conftest import SHAKESPEARE, TANGSHI
from tests.gui.conftest import wait_task


def _run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _texts(menu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_menus_hold_their_actions(window):
    bar = window.menuBar()
    assert [a.text().replace("&", "") for a in bar.actions()] == ["File", "View", "Help"]
    assert _texts(window.menus["File"]) == ["Add corpus…", "Open workspace…", "Export run…", "Quit"]
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    view = window.menus["View"]
    assert _texts(view) == [*PAGES, "Theme"]
    for i, act in enumerate(window.page_actions):
        assert act.shortcut().toString() == f"Ctrl+{i + 1}"
    theme_menu = next(a.menu() for a in view.actions() if a.menu())
    assert _texts(theme_menu) == ["System", "Light", "Dark"]
    assert _texts(window.menus["Help"]) == ["README", "Keyboard shortcuts", "About desktop_llm"]


def test_view_actions_and_their_shortcuts_switch_pages(window, qtbot):
    for name, act in zip(reversed(PAGES), reversed(window.page_actions)):
        act.trigger()
        assert window.current_page == name and act.isChecked()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key_3, Qt.ControlModifier)  # one shortcut per key: none is ambiguous
    assert window.current_page == "Model"
    window.nav.setCurrentRow(4)  # the sidebar and the menu agree
    assert window.page_actions[4].isChecked()


def test_theme_menu_forces_light_or_dark_and_is_remembered(window):
    from desktop_llm.gui import theme

    app = QApplication.instance()
    try:
        window.theme_actions["Dark".lower()].trigger()
        assert theme.is_dark() and app.palette().color(QPalette.Window).lightness() < 128
        assert window.settings.value("window/theme") == "dark"
        window.theme_actions["light"].trigger()
        assert not theme.is_dark() and app.palette().color(QPalette.Window).lightness() > 128
        window.theme_actions["system"].trigger()
        assert theme.chosen_theme() == "system" and window.theme_actions["system"].isChecked()
    finally:
        theme._chosen = None
        theme.apply_theme(app)


def test_about_shows_versions_device_and_workspace_and_copies_them(window, qtbot, home):
    window.session.device_known.emit("GPU: Test Card 9000")
    dialog = window.show_about()
    qtbot.addWidget(dialog)
    text = dialog.details.toPlainText()
    assert text == dialog.text
    fields = {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}
    assert fields["desktop_llm"] == desktop_llm.__version__
    assert fields["Workspace"] == str(home) and fields["Device"] == "GPU: Test Card 9000"
    for name in ("Python", "TensorFlow", "Keras", "keras-hub", "PySide6", "Qt", "pyqtgraph", "numpy"):
        assert fields[name] and fields[name] != "not installed", name
    if "tensorflow" not in sys.modules:
        assert fields["TensorFlow"].startswith("not loaded yet")
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_btn, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == text


def test_about_does_not_import_tensorflow():
    """The window avoids TensorFlow at start-up; About must not pull it in to report its version."""
    out = _run_python("""
        import sys, tempfile
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from desktop_llm.gui.main_window import MainWindow
        from desktop_llm.store import RunStore
        w = MainWindow(RunStore(tempfile.mkdtemp()), restore=False)
        w.show()
        d = w.show_about()
        d.copy_btn.click()
        w.show_shortcuts()
        app.processEvents()
        lines = {l.split(":")[0]: l for l in d.text.splitlines()}
        print("tensorflow" in sys.modules, "keras" in sys.modules, "keras_hub" in sys.modules,
              "not loaded yet" in lines["TensorFlow"], "not loaded yet" in lines["keras-hub"],
              app.clipboard().text() == d.text)
    """)
    assert out.split() == ["False", "False", "False", "True", "True", "True"]


def test_the_app_has_its_icon_and_desktop_file_and_loads_every_corpus_path(tmp_path):
    """make_app and open_window, as `desktop-llm gui --corpus A B C` runs them."""
    third = tmp_path / "c.txt"
    third.write_text("A third corpus.\n" * 50, encoding="utf-8")
    paths = [str(SHAKESPEARE), str(TANGSHI), str(third)]
    out = _run_python(f"""
        import json, time
        from PySide6.QtGui import QGuiApplication
        from desktop_llm.app import make_app, open_window
        from desktop_llm.store import RunStore
        app = make_app()
        w = open_window(RunStore({str(tmp_path / 'ws')!r}), {paths!r})
        end = time.time() + 60
        while not (w.data_page.task is not None and w.data_page.task.settled) and time.time() < end:
            app.processEvents()
            time.sleep(0.02)
        print(json.dumps({{"desktop": QGuiApplication.desktopFileName(), "app_icon": not app.windowIcon().isNull(),
                          "sizes": sorted(s.width() for s in app.windowIcon().availableSizes()),
                          "window_icon": not w.windowIcon().isNull(), "paths": w.data_page.paths,
                          "usable": len(w.data_page.sources)}}))
        w.close()
    """)
    r = json.loads(out.strip().splitlines()[-1])
    assert r["desktop"] == "desktop_llm" and r["app_icon"] and r["window_icon"]
    assert r["sizes"] == [16, 32, 48, 64, 128, 256]
    assert r["paths"] == paths and r["usable"] == 3


def test_window_icon_is_set(window):
    assert not window.windowIcon().isNull()


def test_file_add_corpus_uses_the_data_page(window, qtbot, monkeypatch, shakespeare_small):
    from desktop_llm.gui.pages import data_page

    monkeypatch.setattr(data_page.QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(shakespeare_small)], "")))
    window.show_page("Runs")
    window.add_corpus_action.trigger()
    assert window.current_page == "Data"
    wait_task(qtbot, window.data_page)
    assert window.data_page.paths == [str(shakespeare_small)]


def test_file_export_run_exports_the_selected_or_current_run(window, qtbot, monkeypatch, tmp_path):
    from desktop_llm.core.config import RunConfig
    from desktop_llm.gui.pages import runs_page

    window.export_run_action.trigger()  # no run yet: says what to do, opens nothing
    assert window.current_page == "Runs" and "Select one run" in window.statusBar().currentMessage()

    run = window.session.store.create(RunConfig(name="to-export"))
    window.session.runs_changed.emit()
    window.runs_page.refresh()
    window.session.set_current_run(run.id)
    dest = tmp_path / "exported.zip"
    monkeypatch.setattr(runs_page.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(dest), "")))
    window.show_page("Data")
    window.export_run_action.trigger()
    assert window.current_page == "Runs" and window.runs_page.selected_ids() == [run.id]
    wait_task(qtbot, window.runs_page)
    assert dest.is_file()


def test_open_workspace_reopens_the_window_on_the_other_folder(window, qtbot, tmp_path):
    other = tmp_path / "other workspace"
    new = window.open_workspace(str(other))
    assert new is not None
    qtbot.addWidget(new)
    try:
        assert new.session.store.home == other and (other / "runs").is_dir()
        assert new.isVisible() and not window.isVisible()
        assert new.open_workspace(str(other)) is None  # the same folder: nothing to do
    finally:
        new.train_page.shutdown()
        if new in main_window_module._OPEN_WINDOWS:
            main_window_module._OPEN_WINDOWS.remove(new)


def test_shortcuts_and_readme_dialogs(window, qtbot):
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    rows = {(dialog.table.item(r, 0).text(), dialog.table.item(r, 2).text()) for r in range(dialog.table.rowCount())}
    assert ("Ctrl+1", "View") in rows and ("Ctrl+8", "View") in rows and ("Ctrl+Q", "File") in rows
    assert ("Ctrl+T", "Tokenizer page") in rows and ("Ctrl+O", "Data page") in rows
    readme = window.show_readme()
    qtbot.addWidget(readme)
    assert "desktop_llm" in readme.browser.toPlainText()


def test_cycles_holding_widgets_are_freed_by_the_ui_thread_not_a_worker(qtbot):
    """Automatic garbage collection is off and a UI-thread timer collects (desktop_llm.app): a
    worker that allocates a lot does not free a dead widget's cycle (freeing Qt objects there
    deadlocked the suite once), and the UI thread does."""
    import gc
    import threading
    import weakref

    from PySide6.QtWidgets import QWidget

    from desktop_llm.app import collect_garbage_on_the_ui_thread

    collector = collect_garbage_on_the_ui_thread()
    assert not gc.isenabled() and collector.timer.isActive()

    class Holder:
        pass

    h = Holder()
    h.widget = QWidget()
    h.widget.holder = h  # a cycle through a Qt wrapper
    ref = weakref.ref(h)
    del h
    worker = threading.Thread(target=lambda: [[] for _ in range(200_000)])  # far past gc's thresholds
    worker.start()
    worker.join()
    assert ref() is not None  # the worker's allocations collected nothing
    gc.collect()  # what the timer does, on this (the UI) thread
    assert ref() is None
