"""`desktop-llm gui --screenshot PATH` (hidden; packaging/smoke_test.sh checks a built app with it):
the window opens, is saved to PATH once shown, and the program exits by itself."""

import os
import subprocess
import sys

from PySide6.QtGui import QImage

from tests.conftest import SHAKESPEARE


def test_gui_screenshot_saves_the_window_and_exits(tmp_path):
    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(tmp_path / "home"), "gui",
                        "--corpus", str(SHAKESPEARE), "--screenshot", str(shot), "--screenshot-delay", "1"],
                       capture_output=True, text=True, timeout=120, env=env, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    image = QImage(str(shot))
    assert not image.isNull() and image.width() > 400 and image.height() > 300

    bad = subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(tmp_path / "home"), "gui",
                          "--screenshot", str(tmp_path / "missing" / "window.png"), "--screenshot-delay", "0"],
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    assert bad.returncode == 1 and "cannot save a screenshot" in bad.stderr
