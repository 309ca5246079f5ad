"""Small shared widgets: page headers, a run/checkpoint chooser, token colouring."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette, QTextCursor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTextBrowser, QToolTip, QVBoxLayout, QWidget

from desktop_llm.gui.theme import composite, readable_text_on
from desktop_llm.store.report import best_figure
from desktop_llm.store.runs import row_family


class Header(QWidget):
    """A page's title and one line under it; `show_text` changes both (a page that adapts to a run)."""

    def __init__(self, title: str, hint: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 6)
        self.title = QLabel(title)
        self.title.setProperty("role", "title")
        self.hint = QLabel(hint)
        self.hint.setProperty("role", "hint")
        self.hint.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.hint)

    def show_text(self, title: str, hint: str) -> None:
        self.title.setText(title)
        self.hint.setText(hint)


def header(title: str, hint: str) -> Header:
    return Header(title, hint)


def set_role(widget: QWidget, role: str) -> None:
    """Restyle a label as "hint" or "error" (the style sheet keys on the property; a re-polish applies it)."""
    widget.setProperty("role", role)
    widget.style().polish(widget)


_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def visible_token(text: str) -> str:
    """A token as a reader can see it: whitespace as ␣ ⏎ ⇥ ␍, other invisible characters as a
    \\u escape of their code point (\\u0000), the empty token as ∅; everything else (any
    script, `<unk>`) as it is."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out) or "∅"


def label(text: str = "", role: str | None = None) -> QLabel:
    lab = QLabel(text)
    if role:
        lab.setProperty("role", role)
    lab.setWordWrap(True)
    return lab


class RunPicker(QWidget):
    """Choose a run (with a checkpoint) among those that have one. The choice is the session's
    `current_run`, shared by every picker: choosing on one page chooses on all; with no choice
    yet (or the chosen run gone) the newest run is chosen."""

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
        self.which.addItem("best", "best")
        self.which.addItem("latest", "latest")
        self.which.setToolTip("Checkpoint: the best validation loss, the newest, or the model at a step of its "
                              "training (a weight snapshot the run kept)")
        lay.addWidget(QLabel("Run"))
        lay.addWidget(self.runs, 1)
        lay.addWidget(QLabel("Checkpoint"))
        lay.addWidget(self.which)
        self.runs.currentIndexChanged.connect(self._on_chosen)
        self.which.currentIndexChanged.connect(self.changed)
        session.runs_changed.connect(self.refresh)
        session.current_run_changed.connect(self._follow)
        self.refresh()

    def refresh(self) -> None:
        previous = self.run_id
        self.runs.blockSignals(True)
        self.runs.clear()
        for r in self.session.store.list():  # newest first
            if self.session.store.usable(r["id"]):  # a checkpoint to load (the command line's rule too)
                best = f" · {figure}" if (figure := best_figure(r)) else ""
                self.runs.addItem(f"{r['name']} · {row_family(r)} · {r['status']} · step {r['step']}{best}", r["id"])
        i = -1
        for wanted in (self.session.current_run, previous):
            if wanted and i < 0:
                i = self.runs.findData(wanted)
        if i < 0 and self.runs.count():
            i = 0
        self.runs.setCurrentIndex(i)
        self.runs.blockSignals(False)
        self._fill_points()
        self.session.set_current_run(self.run_id)
        self.changed.emit()

    def _fill_points(self) -> None:
        """best, latest, then the steps the chosen run keeps snapshots of (core/snapshots.py)."""
        from desktop_llm.core import snapshots

        current = self.which.currentData()
        self.which.blockSignals(True)
        while self.which.count() > 2:
            self.which.removeItem(2)
        try:
            kept = snapshots.steps(self.session.store.get(self.run_id)) if self.run_id else []
        except Exception:  # noqa: BLE001 - a run folder that vanished: best and latest only
            kept = []
        for step in kept:
            self.which.addItem(f"step {step:,}", str(step))
        self.which.setCurrentIndex(max(0, self.which.findData(current)))
        self.which.blockSignals(False)

    def choose_point(self, which: str) -> bool:
        """Show `which` (best, latest or a kept step) if the run has it."""
        i = self.which.findData(which)
        if i >= 0:
            self.which.setCurrentIndex(i)
        return i >= 0

    def _on_chosen(self) -> None:
        self._fill_points()
        self.session.set_current_run(self.run_id)
        self.changed.emit()

    def _follow(self, run_id: str) -> None:
        """Another page (or a run that just finished) chose a run: show it here too."""
        i = self.runs.findData(run_id)
        if i >= 0 and i != self.runs.currentIndex():
            self.runs.blockSignals(True)
            self.runs.setCurrentIndex(i)
            self.runs.blockSignals(False)
            self._fill_points()
            self.changed.emit()

    @property
    def run_id(self) -> str | None:
        return self.runs.currentData()

    @property
    def checkpoint(self) -> str:
        return self.which.currentData() or self.which.currentText()


def heat_color(x: float) -> QColor:
    """0..1 -> a light-to-strong red tint (for losses), laid over the view's background: the
    text on it is black or white by contrast (TokenView), so it reads in both themes."""
    x = max(0.0, min(1.0, x))
    return QColor(226, 87, 76, round(255 * (0.08 + 0.62 * x)))


def token_colors(color, base, default_text: str) -> tuple[str | None, str]:
    """(background, text) for a token: `color` (a QColor or a name, possibly translucent; None:
    none) shown over the opaque `base`, with black or white text, whichever contrasts more
    (WCAG); an absent or fully transparent colour keeps the view's own text colour."""
    c = QColor(color) if color is not None else None
    if c is None or not c.isValid() or c.alpha() == 0:
        return None, default_text
    bg = composite(c, base)
    return bg.name(), readable_text_on(bg).name()


def token_span(index: int, text: str, color: str | None, text_color: str, prose: bool = False) -> str:
    """One token as an anchor `#t<index>` so that TokenView can show its tooltip on hover
    (Qt's rich text ignores `title`, but `anchorAt` finds anchors). Tokens are shown with visible
    spaces and ↵; prose (generated text) wraps at spaces and breaks lines instead."""
    shown = html.escape(text)
    if prose:
        shown = shown.replace("\n", "<br>")
        ws = "white-space:pre-wrap;"
    else:
        shown = shown.replace(" ", "&nbsp;").replace("\n", "↵<br>")
        ws = ""
    bg = f"background:{color};" if color else ""
    return f'<a href="#t{index}" style="{bg}{ws} color:{text_color}; text-decoration:none">{shown}</a>'


class TokenView(QTextBrowser):
    """Text shown token by token, each with a background colour and a tooltip on hover."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setMouseTracking(True)
        self.tips: list[str] = []

    @property
    def text_color(self) -> str:
        return self.palette().color(QPalette.Text).name()

    def _span(self, index: int, text: str, color, prose: bool = False) -> str:
        bg, fg = token_colors(color, self.palette().color(QPalette.Base), self.text_color)
        return token_span(index, text, bg, fg, prose)

    def set_tokens(self, tokens: list[str], colors: list, tips: list[str], footer: str = "") -> None:
        self.tips = list(tips)
        spans = [self._span(i, t, c) for i, (t, c) in enumerate(zip(tokens, colors))]
        self.setHtml("<div style='font-family:monospace; font-size:14px; line-height:1.9'>"
                     + "&#8203;".join(spans) + "</div>" + footer)

    def append_tokens(self, tokens: list[str], colors: list, tips: list[str]) -> None:
        """Add tokens at the end (streaming): inserted through a cursor, so cost grows with the new text only."""
        first = len(self.tips)
        self.tips.extend(tips)
        added = "".join(self._span(first + i, t, c, prose=True)
                        for i, (t, c) in enumerate(zip(tokens, colors)) if t)
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertHtml(added)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def append_html(self, fragment: str) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.End)
        cursor.insertHtml(fragment)

    def reset(self, fragment: str = "") -> None:
        self.tips = []
        self.setHtml("")
        if fragment:
            self.append_html(fragment)

    def tip_at(self, pos) -> str:
        href = self.anchorAt(pos)
        if href.startswith("#t"):
            i = int(href[2:])
            if 0 <= i < len(self.tips):
                return self.tips[i]
        return ""

    def mouseMoveEvent(self, e) -> None:
        tip = self.tip_at(e.position().toPoint())
        if tip:
            QToolTip.showText(e.globalPosition().toPoint(), tip, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(e)
