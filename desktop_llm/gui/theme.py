"""Light and dark themes that follow the system colour scheme; pyqtgraph matched to them."""

from __future__ import annotations

import os
import weakref

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
DARK_BASE, DARK_ACCENT = "#1e1f22", "#3574f0"  # the dark palette's Base and Highlight
_chosen: str | None = None  # View > Theme's choice; None: DESKTOP_LLM_THEME or the system


def is_dark(app: QApplication | None = None) -> bool:
    """The system's choice, unless View > Theme (`choose_theme`) or DESKTOP_LLM_THEME=dark|light
    says otherwise."""
    forced = (_chosen or os.environ.get("DESKTOP_LLM_THEME", "")).lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    app = app or QApplication.instance()
    try:
        return app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    except AttributeError:
        return app.palette().color(QPalette.Window).lightness() < 128


def follow_system_theme(app: QApplication) -> None:
    """Apply the theme now and again whenever the system switches between light and dark."""
    apply_theme(app)
    try:
        app.styleHints().colorSchemeChanged.connect(lambda *_: apply_theme(app))
    except AttributeError:  # Qt before 6.5
        pass


def chosen_theme() -> str:
    """"light" or "dark" where the menu or DESKTOP_LLM_THEME forces one, else "system"."""
    forced = (_chosen or os.environ.get("DESKTOP_LLM_THEME", "")).lower()
    return forced if forced in THEMES else "system"


def choose_theme(app: QApplication, theme: str) -> None:
    """Use the light or dark theme whatever the system says, or follow the system ("system"),
    and repaint now. The menu's choice wins over DESKTOP_LLM_THEME."""
    global _chosen
    if theme not in THEMES:
        raise ValueError(f"theme is one of {', '.join(THEMES)} (got {theme!r})")
    _chosen = theme
    apply_theme(app)


def apply_theme(app: QApplication) -> None:
    import pyqtgraph as pg

    app.setStyle("Fusion")
    dark = is_dark(app)
    pal = QPalette()
    if dark:
        base, window, text = QColor(DARK_BASE), QColor(43, 45, 48), QColor(223, 225, 229)
        pal.setColor(QPalette.Window, window)
        pal.setColor(QPalette.WindowText, text)
        pal.setColor(QPalette.Base, base)
        pal.setColor(QPalette.AlternateBase, window)
        pal.setColor(QPalette.Text, text)
        pal.setColor(QPalette.Button, window)
        pal.setColor(QPalette.ButtonText, text)
        pal.setColor(QPalette.ToolTipBase, base)
        pal.setColor(QPalette.ToolTipText, text)
        pal.setColor(QPalette.Highlight, QColor(DARK_ACCENT))
        pal.setColor(QPalette.HighlightedText, QColor(255, 255, 255))
        pal.setColor(QPalette.PlaceholderText, QColor(140, 143, 150))
        dimmed = QColor(115, 118, 124)  # disabled controls must look disabled in the dark too
        for role in (QPalette.ButtonText, QPalette.WindowText, QPalette.Text):
            pal.setColor(QPalette.Disabled, role, dimmed)
    else:
        pal = app.style().standardPalette()
    app.setPalette(pal)
    background, foreground = ((30, 31, 34), (200, 200, 200)) if dark else ((255, 255, 255), (60, 60, 60))
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major", background=background, foreground=foreground)
    app.setStyleSheet(STYLE + (DARK_STYLE if dark else ""))
    restyle_plots(app, background, foreground)


_plots: weakref.WeakSet = weakref.WeakSet()


def themed_plot(widget):
    """Register a pyqtgraph plot so a theme change repaints it; returns the widget.

    A registry, not a scan of `QApplication.allWidgets()`: wrapping every widget the application
    knows, some mid-teardown from `deleteLater`, crashed the interpreter (segfault seen in CI)."""
    _plots.add(widget)
    return widget


def restyle_plots(app: QApplication, background, foreground) -> None:
    """pyqtgraph reads its colours when a plot is made: repaint the plots that already exist."""
    import shiboken6

    for widget in list(_plots):
        if not shiboken6.isValid(widget):
            _plots.discard(widget)
            continue
        widget.setBackground(background)
        item = widget.getPlotItem()
        for axis in item.axes.values():
            axis["item"].setPen(foreground)
            axis["item"].setTextPen(foreground)
        if item.titleLabel.text:
            item.titleLabel.setText(item.titleLabel.text, color=foreground)
        if item.legend is not None:
            item.legend.setLabelTextColor(foreground)


STYLE = """
QListWidget#nav { border: none; font-size: 14px; padding-top: 8px; }
QListWidget#nav { background: palette(window); outline: 0; }
QListWidget#nav::item { padding: 9px 14px; border-radius: 6px; margin: 1px 6px; color: palette(window-text); }
QListWidget#nav::item:hover { background: rgba(127, 127, 127, 0.14); }
QListWidget#nav::item:selected { background: palette(highlight); color: palette(highlighted-text); }
QLabel[role="title"] { font-size: 20px; font-weight: 600; }
QLabel[role="hint"] { color: palette(placeholder-text); }
QLabel[role="error"] { color: #d9453d; }
QLabel[role="warning"] { background: rgba(240, 190, 20, 0.22); border: 1px solid rgba(200, 150, 0, 0.65);
                         border-radius: 4px; padding: 4px 8px; color: palette(window-text); }
QLabel[role="figure"] { font-size: 14px; font-weight: 600; }
QGroupBox { font-weight: 600; margin-top: 14px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QPushButton { padding: 5px 14px; }
QPushButton[role="primary"] { font-weight: 600; }
"""

# Fusion outlines radio buttons with the window colour made darker, which on a dark window is
# nearly the window itself: the buttons vanished (Evaluate page). Drawn here with a visible ring.
DARK_STYLE = ("""
QRadioButton::indicator { width: 12px; height: 12px; border-radius: 7px; border: 1px solid #8c8f96;
                          background: {base}; }
QRadioButton::indicator:hover { border-color: #b4b7bd; }
QRadioButton::indicator:checked { border-color: {accent}; background: qradialgradient(cx:0.5, cy:0.5,
    radius:0.5, fx:0.5, fy:0.5, stop:0 {accent}, stop:0.45 {accent}, stop:0.55 {base}, stop:1 {base}); }
QRadioButton::indicator:disabled { border-color: #55585e; }
QRadioButton::indicator:checked:disabled { background: qradialgradient(cx:0.5, cy:0.5, radius:0.5,
    fx:0.5, fy:0.5, stop:0 #55585e, stop:0.45 #55585e, stop:0.55 {base}, stop:1 {base}); }
""".replace("{base}", DARK_BASE).replace("{accent}", DARK_ACCENT))


def relative_luminance(color) -> float:
    """WCAG 2 relative luminance of an (opaque) colour: 0 for black, 1 for white."""
    c = QColor(color)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast_ratio(a, b) -> float:
    """WCAG 2 contrast ratio of two opaque colours, 1 (none) to 21 (black on white)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def composite(color, base) -> QColor:
    """The opaque colour a translucent `color` shows as over the opaque `base`."""
    c, b = QColor(color), QColor(base)
    a = c.alphaF()
    return QColor.fromRgbF(*(a * x + (1 - a) * y for x, y in
                             ((c.redF(), b.redF()), (c.greenF(), b.greenF()), (c.blueF(), b.blueF()))))


def readable_text_on(background) -> QColor:
    """Black or white, whichever contrasts more with `background` (always at least 4.58:1)."""
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    return black if contrast_ratio(background, black) >= contrast_ratio(background, white) else white


# Series colours that read on light and dark backgrounds (Tableau 10).
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
          "#9c755f", "#bab0ac"]
