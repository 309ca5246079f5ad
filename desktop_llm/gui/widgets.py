"""Small shared widgets: page headers, a run/checkpoint chooser, token colouring."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget


def header(title: str, hint: str) -> QWidget:
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 6)
    t = QLabel(title)
    t.setProperty("role", "title")
    h = QLabel(hint)
    h.setProperty("role", "hint")
    h.setWordWrap(True)
    lay.addWidget(t)
    lay.addWidget(h)
    return w


def label(text: str = "", role: str | None = None) -> QLabel:
    lab = QLabel(text)
    if role:
        lab.setProperty("role", role)
    lab.setWordWrap(True)
    return lab


class RunPicker(QWidget):
    """Choose a run (with a checkpoint) among those that have one."""

    changed = Signal()

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.runs = QComboBox()
        self.runs.setMinimumWidth(320)
        self.runs.setToolTip("A trained run")
        self.which = QComboBox()
        self.which.addItems(["best", "latest"])
        self.which.setToolTip("Checkpoint: the best validation loss, or the newest")
        lay.addWidget(QLabel("Run"))
        lay.addWidget(self.runs, 1)
        lay.addWidget(QLabel("Checkpoint"))
        lay.addWidget(self.which)
        self.runs.currentIndexChanged.connect(self.changed)
        self.which.currentIndexChanged.connect(self.changed)
        session.runs_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        current = self.run_id
        self.runs.blockSignals(True)
        self.runs.clear()
        for r in self.session.store.list():
            if (r.get("step") or 0) > 0:
                best = f" · best {r['best_val_loss']:.3f}" if r.get("best_val_loss") is not None else ""
                self.runs.addItem(f"{r['name']} · {r['status']} · step {r['step']}{best}", r["id"])
        if current:
            i = self.runs.findData(current)
            if i >= 0:
                self.runs.setCurrentIndex(i)
        self.runs.blockSignals(False)
        self.changed.emit()

    @property
    def run_id(self) -> str | None:
        return self.runs.currentData()

    @property
    def checkpoint(self) -> str:
        return self.which.currentText()


def heat_color(x: float) -> str:
    """0..1 -> a light-to-strong red background (for losses) readable on light and dark themes."""
    x = max(0.0, min(1.0, x))
    return f"rgba(226, 87, 76, {0.08 + 0.62 * x:.2f})"


def token_html(tokens: list[str], colors: list[str], tips: list[str]) -> str:
    spans = []
    for t, c, tip in zip(tokens, colors, tips):
        shown = html.escape(t).replace("\n", "↵<br>").replace(" ", "&nbsp;")
        spans.append(f'<span style="background:{c}; border-radius:3px" title="{html.escape(tip)}">{shown}</span>')
    return "<div style='font-family:monospace; font-size:14px; line-height:1.9'>" + "&#8203;".join(spans) + "</div>"
