"""The window's Help dialogs: About (versions, device, workspace, Copy diagnostics), the keyboard
shortcuts, and the README. None of them imports TensorFlow: a library the window has not loaded
yet is reported as "not loaded yet"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
)

from desktop_llm import about
from desktop_llm.gui.icons import app_icon


def diagnostics(workspace: str | Path, device: str | None) -> str:
    """The About dialog's text, also what Copy diagnostics puts on the clipboard."""
    import platform

    v = about.versions(loaded_only=True)
    rows = [(name, value or "not installed") for name, value in v.items() if name != "Qt"]
    rows.append(("Qt", v.get("Qt") or "unknown"))
    rows += [("Device", device or "not known yet (still asking TensorFlow in a child process)"),
             ("Workspace", str(workspace)),
             ("Platform", platform.platform())]
    width = max(len(name) for name, _ in rows) + 1
    return "\n".join(f"{name + ':':<{width}} {value}" for name, value in rows)


class AboutDialog(QDialog):
    def __init__(self, workspace, device: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About desktop_llm")
        self.text = diagnostics(workspace, device)

        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        title = QLabel(f"<b style='font-size:18px'>desktop_llm {about.version()}</b><br>"
                       "Train and understand small Transformer language models on your own machine.<br>"
                       "MIT licence. Keras 3 on TensorFlow, keras-hub, PySide6 and pyqtgraph.")
        title.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignTop)
        top.addWidget(title, 1)

        self.details = QPlainTextEdit(self.text)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.NoWrap)
        font = QGuiApplication.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.details.setFont(font)
        lines = self.text.count("\n") + 1
        self.details.setMinimumHeight(self.details.fontMetrics().lineSpacing() * (lines + 1) + 12)
        self.details.setMinimumWidth(min(900, self.details.fontMetrics().horizontalAdvance(
            max(self.text.splitlines(), key=len)) + 40))

        self.copy_btn = QPushButton("Copy diagnostics")
        self.copy_btn.setToolTip("Copy all of this as text, to paste into a bug report")
        self.copy_btn.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.addButton(self.copy_btn, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copied = QLabel("")
        self.copied.setProperty("role", "hint")

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.details, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.copied, 1)
        bottom.addWidget(buttons)
        lay.addLayout(bottom)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text)
        self.copied.setText("Copied to the clipboard.")


class ShortcutsDialog(QDialog):
    """Every shortcut: the menus' and each page's buttons', read from the window itself."""

    def __init__(self, rows: list[tuple[str, str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Keys", "Does", "Where"])
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        self.table.setFocusPolicy(Qt.NoFocus)  # no focus frame on a cell of a list only read
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)
        self.resize(560, min(680, 90 + 28 * len(rows)))


def readme_text() -> str:
    """The README: the installed package's description (the README is its long description), else
    the source checkout's README.md."""
    from importlib import metadata

    try:
        meta = metadata.metadata("desktop_llm")
        body = meta.get_payload() if hasattr(meta, "get_payload") else None
        body = body or meta.get("Description")
        if body and body.strip():
            return body
    except metadata.PackageNotFoundError:
        pass
    readme = Path(__file__).resolve().parents[2] / "README.md"
    try:
        return readme.read_text("utf-8")
    except OSError:
        return "# desktop_llm\n\nThe README is not installed with this copy: `desktop-llm --help` lists the commands."


class ReadmeDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("desktop_llm README")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(readme_text())
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser, 1)
        lay.addWidget(buttons)
        self.resize(900, 700)
