"""Live training curves: loss (train and validation), perplexity, learning rate, tokens/s.

One `Series` per run keeps its arrays and plot items; new points call `setData` on the existing
items (no re-creation), and several runs can be overlaid to compare them. The legend (each run's
colour and name, and what the line styles mean) is a line of text above the plots, not a box
inside them, so it never covers a curve or gets cut off.
"""

from __future__ import annotations

import html
import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from desktop_llm.core import events as ev
from desktop_llm.gui.theme import COLORS, themed_plot


class Series:
    def __init__(self, plots: MetricsPlots, name: str, color: str):
        self.name = name
        self.color = color
        self.steps, self.loss, self.lr, self.tps = [], [], [], []
        self.vsteps, self.vloss, self.vaccuracy = [], [], []
        self.plots = plots
        pen = pg.mkPen(color, width=2)
        self.items = {
            "loss": plots.loss.plot([], [], pen=pen, name=f"{name} train"),
            "val": plots.loss.plot([], [], pen=pg.mkPen(color, width=2, style=pg.QtCore.Qt.DashLine),
                                   symbol="o", symbolSize=6, symbolBrush=color, name=f"{name} validation"),
            "ppl": plots.ppl.plot([], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                                  symbolBrush=color, name=name),
            "lr": plots.lr.plot([], [], pen=pen),
            "tps": plots.tps.plot([], [], pen=pen),
        }

    def add(self, e) -> None:
        """A typed event (`core.events`), or its dict as metrics.jsonl holds it."""
        if isinstance(e, dict):
            e = ev.parse(e)
        if isinstance(e, ev.Step) and math.isfinite(e.loss):
            self.steps.append(e.step)
            self.loss.append(e.loss)
            self.lr.append(e.lr)
            self.tps.append(e.tokens_per_sec)
        elif isinstance(e, ev.Eval):
            self.vsteps.append(e.step)
            self.vloss.append(e.val_loss)
            if e.classes is not None and e.val_accuracy is not None:  # a classifier: no text perplexity
                self.vaccuracy.append(100 * e.val_accuracy)

    def redraw(self) -> None:
        self.items["loss"].setData(self.steps, self.loss)
        self.items["val"].setData(self.vsteps, self.vloss)
        if self.vaccuracy:
            self.items["ppl"].setData(self.vsteps[-len(self.vaccuracy):], self.vaccuracy)
            self.plots.show_accuracy(True)
        else:
            self.items["ppl"].setData(self.vsteps, [math.exp(min(v, 30)) for v in self.vloss])
        self.items["lr"].setData(self.steps, self.lr)
        self.items["tps"].setData(self.steps, self.tps)

    def remove(self, plots) -> None:
        for key, item in self.items.items():
            {"loss": plots.loss, "val": plots.loss, "ppl": plots.ppl, "lr": plots.lr, "tps": plots.tps}[key].removeItem(item)


class MetricsPlots(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)

        def plot(title, ylabel):
            w = themed_plot(pg.PlotWidget(title=title))
            w.showGrid(x=True, y=True, alpha=0.15)
            w.setLabel("bottom", "step")
            w.setLabel("left", ylabel)
            w.setMinimumHeight(160)
            return w

        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(4, 0, 4, 0)
        self.loss = plot("Loss", "cross-entropy (nats)")
        self.ppl = plot("Validation perplexity", "perplexity")
        self.lr = plot("Learning rate", "lr")
        self.tps = plot("Throughput", "tokens / s")
        grid.addWidget(self.legend, 0, 0, 1, 2)
        grid.addWidget(self.loss, 1, 0, 1, 2)
        grid.addWidget(self.ppl, 2, 0)
        grid.addWidget(self.tps, 2, 1)
        grid.addWidget(self.lr, 3, 0, 1, 2)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 2)
        grid.setRowStretch(3, 1)
        # One step axis: the others show the loss plot's steps (it starts first). Not setXLink:
        # pyqtgraph links by screen position, so the half-width plots showed half the steps.
        for w in (self.ppl, self.tps, self.lr):
            w.enableAutoRange(x=False)
        self.loss.getViewBox().sigXRangeChanged.connect(self._follow_steps)
        self.series: dict[str, Series] = {}
        self._update_legend()

    def _follow_steps(self, _vb, x_range) -> None:
        for w in (self.ppl, self.tps, self.lr):
            w.getViewBox().setXRange(*x_range, padding=0)

    def show_accuracy(self, on: bool) -> None:
        """The second plot shows a classifier's validation accuracy instead of perplexity."""
        title, unit = ("Validation accuracy", "% correct") if on else ("Validation perplexity", "perplexity")
        item = self.ppl.getPlotItem()
        if item.titleLabel.text != title:
            item.setTitle(title, color=item.titleLabel.opts.get("color"))
            self.ppl.setLabel("left", unit)
        if on:  # the whole scale: 100% read as a line across 99.6-100.4%, noise looked like a swing
            self.ppl.enableAutoRange(y=False)
            self.ppl.getViewBox().setYRange(0, 100, padding=0.02)
        else:
            self.ppl.enableAutoRange(y=True)

    def series_for(self, key: str, name: str | None = None) -> Series:
        if key not in self.series:
            self.series[key] = Series(self, name or key, COLORS[len(self.series) % len(COLORS)])
            self._update_legend()
        return self.series[key]

    def _update_legend(self) -> None:
        runs = "&nbsp;&nbsp;&nbsp; ".join(
            f"<span style='color:{s.color}; font-size:15px'>&#9632;</span>&nbsp;{html.escape(s.name)}"
            for s in self.series.values())
        self.legend.setText(runs + ("&nbsp;&nbsp;&nbsp;&nbsp; " if runs else "")
                            + "<span style='color:gray'>Loss: solid line training, dashed line with dots "
                              "validation</span>")

    def add_event(self, key: str, e: dict, redraw: bool = True) -> None:
        s = self.series_for(key)
        s.add(e)
        if redraw:
            s.redraw()

    def show_history(self, key: str, name: str, metrics: list[dict]) -> None:
        s = self.series_for(key, name)
        for m in metrics:
            s.add(m)
        s.redraw()

    def clear(self) -> None:
        for s in self.series.values():
            s.remove(self)
        self.series.clear()
        self._update_legend()
        self.show_accuracy(False)
        # An empty plot keeps the range it had: the next run must not start in the old one's axes
        # (the perplexity plot stays empty until the first evaluation), nor in a zoom the user made.
        for w in (self.loss, self.ppl, self.lr, self.tps):
            vb = w.getPlotItem().getViewBox()
            vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            vb.enableAutoRange(axis="y")
            if w is self.loss:  # the others follow its step axis
                vb.enableAutoRange(axis="x")

    def point_count(self, key: str) -> int:
        s = self.series.get(key)
        return len(s.steps) if s else 0


class MatrixPlot(pg.PlotWidget):
    """A matrix drawn as an image (viridis), row 0 at the top, fixed view: attention maps and the
    classifier's confusion matrix."""

    def __init__(self, title: str = "", parent=None):
        super().__init__(parent=parent, title=title)
        themed_plot(self)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.addItem(self.image)
        self.invertY(True)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
