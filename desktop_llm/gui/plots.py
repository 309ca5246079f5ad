"""Live training curves: loss (train and validation), perplexity, learning rate, tokens/s.

One `Series` per run keeps its arrays and plot items; new points call `setData` on the existing
items (no re-creation), and several runs can be overlaid to compare them. The legend (each run's
colour and name, and what the line styles mean) is a line of text above the plots, not a box
inside them, so it never covers a curve or gets cut off. The loss plot carries its first baseline:
a dotted line at ln(n), the loss of guessing uniformly among the n tokens (or classes), and a
right-hand axis in bits.
"""

from __future__ import annotations

import html
import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QStackedLayout, QWidget

from desktop_llm.core import events as ev
from desktop_llm.gui.theme import COLORS, themed_plot

LN2 = math.log(2)


class BitsAxis(pg.AxisItem):
    """The loss axis again, in bits (nats / ln 2), with its own round ticks: pyqtgraph scales an
    axis by powers of ten only, and a second ViewBox would have to follow every zoom."""

    def tickValues(self, minVal, maxVal, size):
        return [(spacing * LN2, [v * LN2 for v in values])
                for spacing, values in super().tickValues(minVal / LN2, maxVal / LN2, size)]

    def tickStrings(self, values, scale, spacing):
        return super().tickStrings([v / LN2 for v in values], scale, spacing / LN2)


class Series:
    def __init__(self, plots: MetricsPlots, name: str, color: str):
        self.name = name
        self.color = color
        self.vocabulary = 0  # what the loss chooses among: tokens (Start), or classes (Data)
        self.classes = 0
        self.baselines: dict = {}  # name -> figures (a `baselines` event, or the run's status)
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
        if isinstance(e, ev.Baselines):
            self.baselines = e.figures or {}
        elif isinstance(e, ev.Start):
            self.vocabulary = e.vocabulary_size
        elif isinstance(e, ev.Data) and e.classes:
            self.classes = len(e.classes)
        elif isinstance(e, ev.Step) and math.isfinite(e.loss):
            self.steps.append(e.step)
            self.loss.append(e.loss)
            self.lr.append(e.lr)
            self.tps.append(e.tokens_per_sec)
        elif isinstance(e, ev.Eval):
            self.vsteps.append(e.step)
            self.vloss.append(e.val_loss)
            self.classes = len(e.classes or ()) or self.classes
            if e.classes is not None and e.val_accuracy is not None:  # a classifier: no text perplexity
                self.vaccuracy.append(100 * e.val_accuracy)

    @property
    def choices(self) -> int:
        """How many answers the loss is over: uniform guessing scores ln of this."""
        return self.classes or self.vocabulary

    def redraw(self) -> None:
        self.plots.show_uniform(self.choices)
        self.plots.show_baselines(self.baselines, accuracy=bool(self.vaccuracy or self.classes))
        self.items["loss"].setData(self.steps, self.loss)
        self.items["val"].setData(self.vsteps, self.vloss)
        if self.vaccuracy:
            self.items["ppl"].setData(self.vsteps[-len(self.vaccuracy):], self.vaccuracy)
            self.plots.show_accuracy(True)
        else:
            self.items["ppl"].setData(self.vsteps, [math.exp(min(v, 30)) for v in self.vloss])
        self.items["lr"].setData(self.steps, self.lr)
        self.items["tps"].setData(self.steps, self.tps)
        if len(self.plots.series) == 1:  # one run's story; several runs compared would clutter it
            from desktop_llm.core.probes import milestones

            evals = [{"step": s, "val_loss": v} for s, v in zip(self.vsteps, self.vloss)]
            self.plots.show_milestones(milestones(evals, {"figures": self.baselines}))

    def remove(self, plots) -> None:
        for key, item in self.items.items():
            {"loss": plots.loss, "val": plots.loss, "ppl": plots.ppl, "lr": plots.lr, "tps": plots.tps}[key].removeItem(item)


class MetricsPlots(QWidget):
    """The four plots, or, while they have nothing to draw, `empty_text` in their place (bare
    0-1 axes told a user nothing)."""

    def __init__(self, parent=None, empty_text: str = ""):
        super().__init__(parent)
        self.pages = QStackedLayout(self)
        self.empty = QLabel(empty_text)
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setProperty("role", "hint")
        body = QWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(body)
        self.pages.setCurrentIndex(0 if empty_text else 1)
        grid = QGridLayout(body)
        grid.setContentsMargins(0, 0, 0, 0)

        def plot(title, ylabel, **axes):
            w = themed_plot(pg.PlotWidget(title=title, axisItems=axes))
            w.showGrid(x=True, y=True, alpha=0.15)
            w.setLabel("bottom", "step")
            w.setLabel("left", ylabel)
            # Small enough that the Train and Runs pages fit a 1366x768 screen (tests/gui/test_fit.py).
            w.setMinimumHeight(96)
            return w

        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(4, 0, 4, 0)
        self.loss = plot("Loss (cross-entropy)", "nats", right=BitsAxis("right"))
        self.loss.setLabel("right", "bits")
        dotted = pg.mkPen("#9a9a9a", width=1, style=Qt.DotLine)
        self.uniform = pg.InfiniteLine(angle=0, movable=False, pen=dotted, label="",
                                       labelOpts={"position": 0.98, "color": "#9a9a9a", "anchors": [(1, 0), (1, 0)]})
        self.uniform.hide()
        self.loss.addItem(self.uniform)  # in the view: where the loss starts, what it must get below
        self.baseline_lines: list = []  # (plot, line) of the baselines shown
        self.milestone_lines: list = []  # vertical lines at a run's milestones (core/probes.milestones)
        self.milestones_shown: list = []
        self.loss.setMinimumHeight(128)
        self.ppl = plot("Validation perplexity", "perplexity")
        self.lr = plot("Learning rate", "lr")
        self.tps = plot("Throughput", "tokens / s")
        self.lr.getAxis("left").enableAutoSIPrefix(False)  # "lr (x1e-06)" was cut off at this height
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

    def show_uniform(self, choices: int) -> None:
        """The dotted line of uniform guessing among `choices` answers (one line: the runs compared
        are of one family, and the first run's vocabulary names it)."""
        if choices < 2 or self.uniform.isVisible():
            return
        self.uniform.show()  # first: pyqtgraph does not write the label of a hidden line
        self.uniform.setValue(math.log(choices))
        self.uniform.label.setFormat(f"guessing uniformly among {choices:,}: ln {choices:,} = "
                                     f"{math.log(choices):.2f} nats, {math.log2(choices):.2f} bits")

    def show_baselines(self, figures: dict, accuracy: bool = False) -> None:
        """Dotted lines at the baselines the model must beat (core/baselines.py): their loss on the
        loss plot, or, where the second plot shows accuracy (a classifier), their accuracy there.
        One set: the runs compared are of one family and split."""
        if self.baseline_lines or not figures:
            return
        dotted = pg.mkPen("#b08a3c", width=1, style=Qt.DotLine)
        for name, f in figures.items():
            value = 100 * f["accuracy"] if accuracy and f.get("accuracy") is not None else (
                None if accuracy else f.get("loss"))
            if value is None:
                continue
            plot = self.ppl if accuracy else self.loss
            text = f"{name} {value:.1f}%" if accuracy else f"{name} {value:.2f}"
            line = pg.InfiniteLine(angle=0, movable=False, pen=dotted, label=text,
                                   labelOpts={"position": 0.02, "color": "#b08a3c", "anchors": [(0, 1), (0, 1)]})
            plot.addItem(line)  # in the view: the curve is read against them
            line.setValue(value)
            self.baseline_lines.append((plot, line))

    def show_milestones(self, found: list[tuple[int, str]]) -> None:
        """Vertical marks on the loss plot where the run beat each baseline and where its validation
        loss was lowest before rising (overfitting): the run's story at a glance."""
        if found == self.milestones_shown:
            return
        for line in self.milestone_lines:
            self.loss.removeItem(line)
        self.milestone_lines.clear()
        self.milestones_shown = list(found)
        pen = pg.mkPen("#8a8f98", width=1, style=Qt.DashLine)
        for i, (step, what) in enumerate(found):
            line = pg.InfiniteLine(pos=step, angle=90, movable=False, pen=pen, label=what,
                                   labelOpts={"position": 0.95 - 0.12 * (i % 4), "color": "#6b7078",
                                              "anchors": [(0, 0), (0, 0)]})
            self.loss.addItem(line)
            self.milestone_lines.append(line)

    def series_for(self, key: str, name: str | None = None) -> Series:
        self.pages.setCurrentIndex(1)
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

    def show_history(self, key: str, name: str, metrics: list[dict], vocabulary: int = 0,
                     baselines: dict | None = None) -> None:
        """A run's recorded events (metrics.jsonl keeps steps and evaluations; its vocabulary, for
        the uniform-guess line, and its baselines are in its status)."""
        s = self.series_for(key, name)
        s.vocabulary = vocabulary or s.vocabulary
        s.baselines = baselines or s.baselines
        for m in metrics:
            s.add(m)
        s.redraw()

    def clear(self) -> None:
        for s in self.series.values():
            s.remove(self)
        self.series.clear()
        self._update_legend()
        self.show_accuracy(False)
        self.uniform.hide()
        for plot, line in self.baseline_lines:
            plot.removeItem(line)
        self.baseline_lines.clear()
        self.show_milestones([])
        if self.empty.text():
            self.pages.setCurrentIndex(0)
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
