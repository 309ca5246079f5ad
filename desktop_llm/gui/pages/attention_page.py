"""Attention: the weights of each layer and head as heatmaps with the tokens on both axes; one
head at a time, or all heads of a layer in a grid. Hover shows the token pair and the weight."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.plots import MatrixPlot
from desktop_llm.gui.widgets import RunPicker, header, label, set_role, visible_token
from desktop_llm.gui.workers import in_worker


def _ticks(tokens: list[str], max_labels: int = 32, chars: int = 8, first: int = 0, last: int | None = None):
    """Tick labels (the tokens with visible whitespace, cut to `chars`) of tokens first..last (the
    part of the map in view), every n-th so that at most `max_labels` are shown: pyqtgraph draws
    every label it is given, overlapping or not."""
    last = len(tokens) if last is None else last
    shown = [(i + 0.5, visible_token(tokens[i])[:chars]) for i in range(first, last)]
    step = max(1, -(-len(shown) // max(1, max_labels)))
    return [shown[::step]]


class Heatmap(MatrixPlot):
    """One attention matrix: rows are queries (tokens attending), columns keys."""

    def __init__(self, title: str = "", small: bool = False, parent=None):
        super().__init__(title=title, parent=parent)
        if not small:
            self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"),
                                            interactive=False, width=14, label="weight")
            self.colorbar.setImageItem(self.image, insert_in=self.getPlotItem())
        self.weights = None
        self.causal = False
        # cells a causal mask hides, in the page's background colour, so that "not allowed to
        # look" differs from "looked with weight 0" (which viridis draws as the darkest purple)
        self.masked = pg.ImageItem()
        self.masked.setZValue(1)
        self.addItem(self.masked)
        self.tokens: list[str] = []
        self.columns: list[str] = []
        self.hover_text = ""
        self.small = small
        # Token labels a little smaller than the text: two more rows labelled in every ten.
        tick_font = QFont(self.font())
        tick_font.setPointSizeF(max(6.0, tick_font.pointSizeF() * 0.85))
        self.tick_font = tick_font
        for name in ("left", "bottom"):
            self.getAxis(name).setStyle(tickFont=tick_font)
        if small:  # the grid shows the token labels on its left column and bottom row only
            self.show_labels(left=False, bottom=False)
        # more tokens than labels fit: the wheel zooms in until every one is labelled
        self.setMouseEnabled(x=True, y=True)
        self.plotItem.vb.sigRangeChanged.connect(self._update_ticks)
        self.plotItem.vb.sigResized.connect(self._update_ticks)
        self.scene().sigMouseMoved.connect(self._on_move)

    def show_labels(self, left: bool, bottom: bool) -> None:
        for name, shown in (("left", left), ("bottom", bottom)):
            if shown:
                self.showAxis(name)
            else:
                self.hideAxis(name)

    def _update_ticks(self, *_) -> None:
        """As many token labels as fit the map's size without overlapping (on every resize)."""
        if not self.tokens:
            return
        chars = 5 if self.small else 8
        fm = QFontMetrics(self.tick_font)
        vb = self.plotItem.vb
        (x0, x1), (y0, y1) = vb.viewRange()

        def in_view(lo, hi, n):
            return max(0, int(np.floor(lo))), min(n, int(np.ceil(hi)))

        rows_in_view = in_view(y0, y1, len(self.tokens))
        cols_in_view = in_view(x0, x1, len(self.columns))
        rows = int(vb.height() // max(1, fm.height()))
        widest = max(fm.horizontalAdvance(visible_token(t)[:chars]) for t in self.columns)
        # one space between labels: with two, a character model's 58-token line showed every
        # other character on a 960-pixel map ("R M O ␣ u" for "ROMEO: But")
        cols = int(vb.width() // max(1, widest + fm.horizontalAdvance(" ")))
        self.getAxis("left").setTicks(_ticks(self.tokens, min(64, rows), chars, *rows_in_view))
        self.getAxis("bottom").setTicks(_ticks(self.columns, min(64, cols), chars, *cols_in_view))

    def set_weights(self, w: np.ndarray, tokens: list[str], columns: list[str] | None = None,
                    causal: bool = False) -> None:
        """Rows: the tokens attending; columns: the tokens attended to (the same tokens, except in
        cross-attention, where they are the source's). `causal`: the cells above the diagonal
        are masked (a token sees only those before it) and drawn as background."""
        self.weights, self.tokens, self.columns, self.causal = w, tokens, columns or tokens, causal
        hidden = np.zeros(w.shape + (4,), np.uint8)
        if causal:
            bg = self.palette().color(self.backgroundRole())
            hidden[np.triu(np.ones(w.shape, bool), k=1)] = (bg.red(), bg.green(), bg.blue(), 255)
        self.masked.setImage(hidden, levels=(0, 255))
        self.masked.setRect(0, 0, w.shape[1], w.shape[0])
        top = float(max(1e-6, w.max()))
        self.image.setImage(w, levels=(0.0, top))
        if hasattr(self, "colorbar"):
            self.colorbar.setLevels((0.0, top))
        self.image.setRect(0, 0, w.shape[1], w.shape[0])
        # zoom and pan stay on the map; zoomed out all the way, it is the whole map again
        self.plotItem.vb.setLimits(xMin=0, xMax=w.shape[1], yMin=0, yMax=w.shape[0],
                                   minXRange=min(4, w.shape[1]), minYRange=min(4, w.shape[0]))
        self.autoRange(padding=0)
        self._update_ticks()

    def describe(self, row: int, col: int) -> str:
        q, k = visible_token(self.tokens[row]), visible_token(self.columns[col])
        if self.causal and col > row:
            return f"{q} (#{row}) cannot see {k} (#{col}): it comes later (causal mask)"
        return f"{q} (#{row}) attends to {k} (#{col}): {self.weights[row, col]:.4f}"

    def _on_move(self, pos) -> None:
        if self.weights is None:
            return
        p = self.plotItem.vb.mapSceneToView(pos)
        col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= row < self.weights.shape[0] and 0 <= col < self.weights.shape[1]:
            self.hover_text = self.describe(row, col)
            self.setToolTip(self.hover_text)


class AttentionPage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.maps = None
        self.task = None
        self.picker = RunPicker(session)
        self.text = QTextEdit()
        self.text.setAcceptRichText(False)
        self.text.setPlainText("ROMEO: But, soft! what light through yonder window breaks?")
        self._example = self.text.toPlainText()  # replaced by the chosen run's own text until the user types
        self.text.setMaximumHeight(80)
        self.go = QPushButton("Show attention")
        self.go.setProperty("role", "primary")
        self.go.setShortcut("Ctrl+Return")
        self.go.clicked.connect(self.compute)
        self.layer = QSpinBox()
        self.head = QSpinBox()
        self.kind = QComboBox()  # a translator's three attentions
        for text, value in (("encoder (source ↔ source)", "encoder"), ("decoder (target → earlier target)",
                                                                       "decoder"),
                            ("cross (target → source)", "cross")):
            self.kind.addItem(text, value)
        self.kind.setCurrentIndex(2)
        self.kind.setToolTip("A translator attends three ways: within the source, within its own output "
                             "so far, and from each output token to the source")
        self.kind_label = label("Attention")
        self.picker.changed.connect(self._adapt_to_family)
        self.layer.valueChanged.connect(self._draw)
        self.head.valueChanged.connect(self._draw)
        self.single = Heatmap()
        self.grid_maps: list[Heatmap] = []
        self.tabs = QTabWidget()
        self.tabs.addTab(self.single, "One head")
        self.grid_host = QWidget()
        self.grid_layout = QGridLayout(self.grid_host)
        self.tabs.addTab(self.grid_host, "All heads of the layer")
        self.hover = label("Hover over a cell to read the weight; the wheel zooms in until every token "
                           "is labelled.", "hint")
        self.single.scene().sigMouseMoved.connect(lambda *_: self.hover.setText(self.single.hover_text or self.hover.text()))
        self.status = label("", "hint")

        sel = QHBoxLayout()
        sel.addWidget(label("Layer"))
        sel.addWidget(self.layer)
        sel.addWidget(label("Head"))
        sel.addWidget(self.head)
        sel.addWidget(self.kind_label)
        sel.addWidget(self.kind)
        sel.addStretch(1)
        sel.addWidget(self.go)
        lay = QVBoxLayout(self)
        self.explain = label("", "hint")
        lay.addWidget(header("Attention", "Where each token looks. Row: the token attending; column: the "
                                          "token it attends to."))
        lay.addWidget(self.explain)
        lay.addWidget(self.picker)
        lay.addWidget(self.text)
        lay.addLayout(sel)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.hover)
        lay.addWidget(self.status)
        self._adapt_to_family()

    def _adapt_to_family(self) -> None:
        """Say what the maps show for the chosen run's family; a translator picks which attention."""
        from desktop_llm.core.config import DEFAULT_FAMILY
        from desktop_llm.core.models import get_family
        from desktop_llm.gui.families import family_ui

        run_id = self.picker.run_id
        try:
            run = self.session.store.get(run_id) if run_id else None
            family = run.config.family if run else DEFAULT_FAMILY
        except Exception:  # noqa: BLE001 - a run folder that vanished: the picker refreshes soon
            run, family = None, DEFAULT_FAMILY
        several = len(get_family(family).attention_kinds) > 1  # a translator's encoder, decoder, cross
        self.kind.setVisible(several)
        self.kind_label.setVisible(several)
        self.explain.setText(family_ui(family).ATTENTION_NOTE)
        text = self.text.toPlainText()
        if run is not None and (not text.strip() or text == self._example):  # not a text the user typed
            sample = get_family(family).sample_text(run.config)  # the run's own language and kind of text
            if sample:
                self._example = sample.splitlines()[0][:120]
                self.text.setPlainText(self._example)

    def compute(self) -> None:
        run_id, which, text = self.picker.run_id, self.picker.checkpoint, self.text.toPlainText()
        kind = self.kind.currentData() if self.kind.isVisibleTo(self) else "self"
        if not run_id:
            self._on_error("Train a run first: there is no checkpoint to inspect.")
            return

        self.go.setEnabled(False)
        set_role(self.status, "hint")
        self.task = in_worker(self, self.session, "desktop_llm.core.worker_jobs:attention", self.status.setText,
                              self._on_maps, self._on_error, lambda _f, msg: msg and self.status.setText(msg),
                              run_id=run_id, which=which, text=text, kind=kind)

    def _on_error(self, msg: str) -> None:
        self.go.setEnabled(True)
        set_role(self.status, "error")
        self.status.setText(msg)

    def _on_maps(self, result) -> None:
        self.go.setEnabled(True)
        set_role(self.status, "hint")
        self.maps, step = result
        L, H = self.maps.num_layers, self.maps.num_heads
        self.layer.setRange(0, L - 1)
        self.head.setRange(0, H - 1)
        note = "".join(f" · {n}" for n in self.maps.notes)
        self.status.setText(f"{len(self.maps.tokens)} tokens · {L} layers × {H} heads · checkpoint at step "
                            f"{step}{note}")
        self._draw()

    def _draw(self) -> None:
        if self.maps is None:
            return
        layer, head = self.layer.value(), self.head.value()
        self.single.setTitle(f"Layer {layer}, head {head}")
        causal = self.maps.kind == "causal"
        self.single.set_weights(self.maps.weights[layer, head], self.maps.tokens, self.maps.key_tokens, causal)
        H = self.maps.num_heads
        while len(self.grid_maps) < H:
            m = Heatmap(small=True)
            m.setMinimumSize(120, 120)
            if self.grid_maps:  # one zoom for all heads (same size maps: pyqtgraph links by screen position)
                m.setXLink(self.grid_maps[0])
                m.setYLink(self.grid_maps[0])
            cols = max(2, math.ceil(math.sqrt(H)))
            self.grid_layout.addWidget(m, len(self.grid_maps) // cols, len(self.grid_maps) % cols)
            self.grid_maps.append(m)
        shown = {self.grid_layout.getItemPosition(self.grid_layout.indexOf(m))[:2]
                 for i, m in enumerate(self.grid_maps) if i < H}
        for i, m in enumerate(self.grid_maps):
            m.setVisible(i < H)
            if i < H:
                row, col = self.grid_layout.getItemPosition(self.grid_layout.indexOf(m))[:2]
                # row labels on every map (head 1 of two had none); column labels on the bottom row
                m.show_labels(left=True, bottom=(row + 1, col) not in shown)
                m.setTitle(f"head {i}")
                m.set_weights(self.maps.weights[layer, i], self.maps.tokens, self.maps.key_tokens, causal)
