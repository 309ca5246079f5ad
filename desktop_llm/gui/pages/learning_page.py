"""Learning: what the model learned, and when, from the fixed probe its run takes at every
evaluation (core/probes.py): no checkpoint is loaded, so the page follows a run live.

- Timeline: evaluation steps x the fixed prompts; each cell the greedy continuation (a masked LM:
  each token of the prompt guessed with it masked), every token
  tinted by its surprise and what changed since the row above in bold; the milestones on top.
- What it learned when: the probe text's per-token loss, tokens x evaluations, the tokens sorted by
  the step they were learned; lists of the early, the late, the never and the got-worse; click a
  row for that token's curve.
- In context: the mean loss at each position of the context, at several evaluations.
- Heads: the head atlas (core/heads.py), layer x head, each head coloured by its role at the
  evaluation the slider (or Play) picks, and the best induction score, lowest entropy and largest
  sink mass over training; a click opens that head's map on the Attention page.
- Health: per layer, the net change per step (log axis, the usual 1e-3 shaded), the gradient norm, dormant
  feed-forward units and the largest attention logit, with what looks off in plain words.
- Embeddings: the token embeddings' 2-D map at each weight snapshot (core/embedding_space.py),
  aligned to the final one; click a token for its nearest neighbours at each step; drift and
  neighbour overlap over training; the position embeddings' similarity.
- Sentences (encoder runs): their sentence embeddings at each snapshot, coloured by source, and how
  often a sentence's nearest neighbour shares its source, against TF-IDF and chance.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core import heads
from desktop_llm.gui.pages.generate_page import prob_color
from desktop_llm.gui.widgets import RunPicker, header, label, visible_token

NO_PROBES = ("This run has no probes yet. A GPT or masked-LM run trained by this version probes itself at every "
             "evaluation: "
             "the same prompts and text each time, so you can watch what it learns and when.")


def _cell_colour(surprise: float) -> str:
    """A token's tint over the page's white, by its surprise (as the Generate page tints)."""
    c = prob_color(math.exp(-surprise))
    a = c.alpha() / 255
    return "#" + "".join(f"{round(a * v + (1 - a) * 255):02x}" for v in (c.red(), c.green(), c.blue()))


def timeline_html(prompts: list[str], recs: list[dict]) -> str:
    """The timeline as an HTML table (steps down, prompts across)."""
    from desktop_llm.core import probes

    head = "".join(f"<th align='left'>“{html.escape(probes.shortened(p, 48))}”</th>" for p in prompts)
    rows = []
    previous: dict[int, list[str]] = {}
    for r in recs:
        cells = []
        for i, c in enumerate(r["continuations"]):
            new = probes.changed(previous.get(i, []), c["tokens"])
            previous[i] = c["tokens"]
            spans = "".join(
                f"<span style='background-color:{_cell_colour(s)};{'font-weight:600;' if n else ''}'>"
                f"{html.escape(t).replace(chr(10), '⏎').replace(' ', '&nbsp;')}</span>"
                for t, s, n in zip(c["tokens"], c["surprise"], new))
            cells.append(f"<td style='font-family:monospace'>{spans}</td>")
        rows.append(f"<tr><td align='right'><b>{r['step']:,}</b></td>{''.join(cells)}</tr>")
    return (f"<table cellspacing='0' cellpadding='4'><tr><th align='right'>step</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _split(first: QWidget, second: QWidget, vertical: bool = False) -> QSplitter:
    """Two views, the first given 3/5 of the room; neither can be collapsed away."""
    split = QSplitter(Qt.Vertical if vertical else Qt.Horizontal)
    split.addWidget(first)
    split.addWidget(second)
    split.setStretchFactor(0, 3)
    split.setStretchFactor(1, 2)
    split.setChildrenCollapsible(False)
    return split


ROLE_COLOURS = heads.COLOURS


class HeadAtlas(QWidget):
    """Layer x head, each head's role at one evaluation; a slider and Play move through them, and
    the curves below show the best induction score, the lowest entropy and the largest sink mass."""

    head_clicked = Signal(int, int)  # layer, head (at `shown_step`)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.recs: list[dict] = []
        self.grid = QTableWidget()
        self.grid.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.grid.setSelectionMode(QAbstractItemView.NoSelection)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.grid.verticalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.grid.setToolTip("Each head's role at this evaluation; click one to open its map on the Attention page")
        self.grid.cellClicked.connect(lambda r, c: self.head_clicked.emit(r, c))
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setToolTip("The evaluation whose heads are shown")
        self.slider.valueChanged.connect(self._show)
        self.play = QPushButton("Play")
        self.play.setToolTip("Step through the evaluations: watch the roles form")
        self.play.setCheckable(True)
        self.play.toggled.connect(self._toggle)
        self.step_label = label("", None)
        self.step_label.setWordWrap(False)
        self.step_label.setMinimumWidth(180)
        self.timer = QTimer(self)
        self.timer.setInterval(600)
        self.timer.timeout.connect(self._advance)
        self.legend = label(" ".join(
            f"<span style='background-color:{ROLE_COLOURS[k]}'>&nbsp;{html.escape(v)}&nbsp;</span>"
            for k, v in _role_labels().items()), None)
        self.curves = pg.PlotWidget()
        self.curves.setBackground(None)
        self.curves.setMinimumHeight(120)
        self.curves.getPlotItem().setLabel("bottom", "step")
        self.curves.getPlotItem().setLabel("left", "score")
        self.curves.getPlotItem().setYRange(0, 1)
        self.curves.addLegend(offset=(-10, 10))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", style=Qt.DashLine))
        row = QHBoxLayout()
        row.addWidget(self.play)
        row.addWidget(self.slider, 1)
        row.addWidget(self.step_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.legend)
        lay.addWidget(_split(self.grid, self.curves, vertical=True), 1)

    def set_records(self, recs: list[dict]) -> None:
        from desktop_llm.core import heads

        follow = not self.recs or self.slider.value() == self.slider.maximum()  # a live run: keep to the newest
        self.recs = [r for r in recs if r.get("heads")]
        self.slider.setRange(0, max(0, len(self.recs) - 1))
        if follow:
            self.slider.setValue(self.slider.maximum())
        self.curves.clear()
        c = heads.curves(self.recs)
        for key, name, colour in (("induction", "best induction score", "#f28e2b"),
                                  ("entropy", "lowest entropy", "#3574f0"), ("sink", "largest sink mass", "#888888")):
            self.curves.plot(c["steps"], c[key], pen=pg.mkPen(colour, width=2), name=name)
        self.curves.addItem(self.marker)
        self._show()

    def _show(self) -> None:
        from desktop_llm.core import heads

        if not self.recs:
            self.grid.clear()
            self.grid.setRowCount(0)
            self.step_label.setText("")
            return
        rec = self.recs[min(self.slider.value(), len(self.recs) - 1)]
        roles = heads.roles(rec["heads"])
        L, H = len(roles), len(roles[0]) if roles else 0
        self.grid.setRowCount(L)
        self.grid.setColumnCount(H)
        self.grid.setVerticalHeaderLabels([f"layer {i}" for i in range(L)])
        self.grid.setHorizontalHeaderLabels([f"head {i}" for i in range(H)])
        for layer in range(L):
            for h in range(H):
                role = roles[layer][h]
                key = role if role in heads.SCORES else ("entropy" if role == "broad" else None)
                score = heads.matrix(rec["heads"], key)[layer, h] if key else None
                item = QTableWidgetItem(heads.LABELS[role] + (f"\n{score:.2f}" if score is not None else ""))
                item.setTextAlignment(Qt.AlignCenter)
                item.setBackground(QColor(ROLE_COLOURS[role]))
                item.setForeground(QColor("#202020"))
                item.setToolTip(" · ".join(f"{heads.LABELS.get(n, n)} {v:.2f}" for n in heads.SCORES
                                           if not math.isnan(v := heads.matrix(rec["heads"], n)[layer, h])))
                self.grid.setItem(layer, h, item)
        self.step_label.setText(f"step {rec['step']:,} ({self.slider.value() + 1} of {len(self.recs)})")
        self.marker.setValue(rec["step"])
        self.shown_step = rec["step"]

    def _toggle(self, on: bool) -> None:
        if on:
            if self.slider.value() == self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start()
        else:
            self.timer.stop()
        self.play.setText("Pause" if on else "Play")

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play.setChecked(False)
            return
        self.slider.setValue(self.slider.value() + 1)


K_NEIGHBOURS = 10  # core/embedding_space.K
PALETTE = ["#3574f0", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


class HealthView(QWidget):
    """The training's health per layer over the run (core/health.py)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        from desktop_llm.core import health

        self.flags = label("", None)
        self.flags.setWordWrap(True)
        self.change = pg.PlotWidget()
        self.change.setBackground(None)
        self.change.setLogMode(y=True)
        self.change.getPlotItem().setLabel("left", "net change per step")
        self.change.getPlotItem().setLabel("bottom", "step")
        self.change.addLegend(offset=(-10, 10))
        self.change.setToolTip(f"|W now - W at the previous evaluation| / |W| / steps between. About "
                               f"{health.RULE_OF_THUMB:g} is usual (shaded: 10x either way)")
        self.grad = pg.PlotWidget()
        self.grad.setBackground(None)
        self.grad.setLogMode(y=True)
        self.grad.getPlotItem().setLabel("left", "gradient norm")
        self.grad.getPlotItem().setLabel("bottom", "step")
        self.grad.getPlotItem().setTitle("colours: the groups, as above · lines: mean since the last evaluation · "
                                         "▼: the largest, at its step", size="8pt")
        self.grad.setToolTip("Per group, the norm of the training step's gradient (before clipping): its mean over "
                             "the steps since the previous evaluation, and the largest one at its own step (on "
                             "several devices: the loss's gradient on a few of the probe's validation windows). "
                             f"A norm {health.SPIKE:g}x its usual is a spike")
        self.dormant = pg.PlotWidget()
        self.dormant.setBackground(None)
        self.dormant.getPlotItem().setLabel("left", "dormant units (%)")
        self.dormant.getPlotItem().setTitle("colours: the blocks, as on the left", size="8pt")
        self.dormant.getPlotItem().setLabel("bottom", "step")
        self.dormant.setToolTip("Feed-forward units whose mean |activation| on the probe text is at most "
                                f"{health.DORMANT:g} of the block's average unit's")
        self.logit = pg.PlotWidget()
        self.logit.setBackground(None)
        self.logit.getPlotItem().setLabel("left", "largest attention logit")
        self.logit.getPlotItem().setLabel("bottom", "step")
        self.logit.setToolTip(f"Before the softmax. Sharp heads are normal; logits growing past about "
                              f"{health.SATURATES:g} are a sign of instability")
        for plot in (self.change, self.grad, self.dormant, self.logit):  # no "(x0.001)": the figures as they are
            plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.dormant.getPlotItem().setYRange(0, 100)
        right = self.right = QSplitter(Qt.Vertical)
        right.addWidget(self.dormant)
        right.addWidget(self.logit)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.flags)
        left = QSplitter(Qt.Vertical)
        left.addWidget(self.change)
        left.addWidget(self.grad)
        lay.addWidget(_split(left, right), 1)

    def set_records(self, recs: list[dict]) -> None:
        from desktop_llm.core import health

        for plot in (self.change, self.grad, self.dormant, self.logit):
            plot.clear()
        steps, names, values = health.series(recs, "change_per_step")
        if steps:
            band = pg.LinearRegionItem(values=(np.log10(health.RULE_OF_THUMB) - 1, np.log10(health.RULE_OF_THUMB) + 1),
                                       orientation="horizontal", movable=False, brush=pg.mkBrush(89, 161, 79, 28),
                                       pen=pg.mkPen(None))
            self.change.addItem(band)
        for i, name in enumerate(names):
            keep = ~np.isnan(values[:, i]) & (values[:, i] > 0)  # a log axis has no zero
            self.change.plot(np.asarray(steps)[keep], values[keep, i], pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2),
                             symbol="o", symbolSize=4, name=name)
        steps, names, values = health.series(recs, "grad_norm")
        for i in range(len(names)):
            keep = ~np.isnan(values[:, i]) & (values[:, i] > 0)
            self.grad.plot(np.asarray(steps)[keep], values[keep, i], pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2),
                           symbol="o", symbolSize=4)
        _, _, peaks = health.series(recs, "grad_peak")
        _, _, at = health.series(recs, "grad_peak_step")
        for i in range(peaks.shape[1] if peaks.size else 0):
            keep = ~np.isnan(peaks[:, i]) & (peaks[:, i] > 0)
            self.grad.plot(at[keep, i], peaks[keep, i], pen=None, symbol="t", symbolSize=7,
                           symbolBrush=PALETTE[i % len(PALETTE)], symbolPen=None)
        if peaks.size:
            values = np.concatenate([values, peaks], 1)
        shown = values[~np.isnan(values) & (values > 0)] if steps else np.array([])
        if shown.size:  # whole decades: a log axis then labels its decades, not every minor tick
            self.grad.setYRange(math.floor(np.log10(shown.min())), math.ceil(np.log10(shown.max()) + 1e-9), padding=0)
        for plot, key, scale in ((self.dormant, "dormant", 100.0), (self.logit, "max_logit", 1.0)):
            steps, names, values = health.series(recs, key)
            for i in range(len(names)):
                plot.plot(steps, values[:, i] * scale, pen=pg.mkPen(PALETTE[(i + 1) % len(PALETTE)], width=2),
                          name=names[i])
        found = health.flags(recs)
        blocks = bool(health.series(recs, "dormant")[1])  # a model whose blocks the probe reads (not BART's)
        self.right.setVisible(blocks or not steps)
        self.flags.setText(("<b>Looks off:</b> " + " · ".join(f"step {s:,}: {html.escape(w)}" for s, w in found))
                           if found else (("Nothing looks off: every layer changes at a usual rate, its feed-forward "
                                           "units fire, its attention logits stay moderate." if blocks else
                                           "Nothing looks off: every layer changes at a usual rate.") if steps else
                                          "The training's health appears here from the first evaluation."))


class SnapshotMap(QWidget):
    """A 2-D map at each weight snapshot, a slider over the snapshots, a side panel and a status
    line: the token embeddings' view and an encoder's sentences' view. `space` holds "steps" and
    "coords" (snapshots, points, 2); a subclass draws its points in `_draw` (the slider calls it)."""

    def __init__(self, what: str, parent=None):
        super().__init__(parent)
        self.space: dict | None = None
        self.task = None
        self.key = None  # (run, snapshots) of the space shown: recomputed only when they change
        self.status = label("", "hint")
        self.status.setWordWrap(True)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setToolTip(f"The snapshot whose {what} are drawn")
        self.slider.valueChanged.connect(self._draw)
        self.step_label = label("", None)
        self.step_label.setWordWrap(False)
        self.step_label.setMinimumWidth(180)
        self.map = pg.PlotWidget()
        self.map.setBackground(None)
        self.map.getPlotItem().setLabel("bottom", "1st direction (of the final embeddings)")
        self.map.getPlotItem().setLabel("left", "2nd direction")
        for axis in ("left", "bottom"):
            self.map.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)

    def _lay_out(self, side: QWidget) -> None:
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.step_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(_split(self.map, side), 1)
        lay.addWidget(self.status)

    def _shown_snapshot(self) -> int | None:
        """The index of the snapshot the slider picks, its step labelled; None without any."""
        if not self.space or not self.space["steps"]:
            self.step_label.setText("")
            return None
        i = min(self.slider.value(), len(self.space["steps"]) - 1)
        self.step_label.setText(f"step {self.space['steps'][i]:,} ({i + 1} of {len(self.space['steps'])})")
        return i


class EmbeddingView(SnapshotMap):
    """The token embeddings over training, from the run's weight snapshots (read off the UI thread)."""

    LABELLED = 80  # tokens named on the map (all of a character vocabulary; the first of a larger one)

    def __init__(self, parent=None):
        super().__init__("embeddings", parent)
        self.tokens: list[str] = []
        self.points = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(53, 116, 240, 150), pen=pg.mkPen(None))
        self.points.sigClicked.connect(self._on_point)
        self.map.addItem(self.points)
        self.labels: list[pg.TextItem] = []
        self.neighbours = label("<i>Click a token on the map for its nearest neighbours at each snapshot.</i>", None)
        self.neighbours.setWordWrap(True)
        self.curves = pg.PlotWidget()
        self.curves.setBackground(None)
        self.curves.setMinimumHeight(110)
        self.curves.getPlotItem().setLabel("bottom", "step")
        self.curves.addLegend(offset=(-10, 46))  # between the overlap (near 1) and the drift (near 0)
        self.curves.getPlotItem().setYRange(0, 1.05)
        self.positions = pg.PlotWidget()
        self.positions.setBackground(None)
        self.positions.setTitle("position embeddings: cosine similarity")
        self.positions.invertY(True)
        self.positions.getPlotItem().setMouseEnabled(x=False, y=False)
        self.pos_image = pg.ImageItem()
        self.pos_image.setColorMap(pg.colormap.get("viridis"))
        self.positions.addItem(self.pos_image)
        side = QSplitter(Qt.Vertical)
        side.addWidget(self.neighbours)
        side.addWidget(self.curves)
        side.addWidget(self.positions)
        self._lay_out(side)

    def set_run(self, run) -> None:
        """Compute the run's embedding space in the background when its snapshots changed."""
        from desktop_llm.core import snapshots
        from desktop_llm.gui.workers import run_task

        if run is None:
            self.key, self.space = None, None
            self._draw()
            return
        kept, size = snapshots.usage(run)
        budget = run.config.training.snapshot_budget_mb
        self.status.setText(f"Weight snapshots: {kept} kept, {size / 1e6:.1f} MB of the run's {budget} MB budget "
                            "(thinned to fit: dense early, log-spaced later).")
        key = (str(run.folder), tuple(snapshots.steps(run)))
        if key == self.key:
            return
        self.key = key
        if not kept:
            self.space = None
            self._draw()
            return

        def work(report, cancelled, emit):
            from desktop_llm.core import embedding_space
            from desktop_llm.core.loading import load_run_tokenizer

            try:
                tok = load_run_tokenizer(run.tokenizer_dir)
                names, V = [tok.token_text(i) for i in range(tok.vocabulary_size)], tok.vocabulary_size
            except Exception:  # noqa: BLE001 - a tokenizer that no longer loads: tokens by id
                names, V = None, None
            return embedding_space.space(run, V), names

        self.task = run_task(self, work, self._on_space, lambda msg: self.status.setText(msg))

    def _on_space(self, result) -> None:
        self.space, names = result
        V = self.space["coords"].shape[1] if self.space["steps"] else 0
        self.tokens = names[:V] if names else [str(i) for i in range(V)]
        self.slider.setRange(0, max(0, len(self.space["steps"]) - 1))
        self.slider.setValue(self.slider.maximum())
        self.curves.clear()
        s = self.space
        self.curves.plot(s["steps"], s["overlap"], pen=pg.mkPen("#3574f0", width=2), symbol="o", symbolSize=4,
                         name=f"neighbours shared with the final ({K_NEIGHBOURS} nearest)")
        drift = [(st, d) for st, d in zip(s["steps"], s["drift"]) if d is not None]
        if drift:
            self.curves.plot([a for a, _ in drift], [b for _, b in drift], pen=pg.mkPen("#f28e2b", width=2),
                             symbol="o", symbolSize=4, name="drift since the previous snapshot")
        if s["positions"] is not None:
            self.pos_image.setImage(np.ascontiguousarray(s["positions"]), levels=(-1, 1))
        self._draw()

    def _draw(self) -> None:
        for item in self.labels:
            self.map.removeItem(item)
        self.labels = []
        i = self._shown_snapshot()
        if i is None:
            self.points.clear()
            return
        xy = self.space["coords"][i]
        self.points.setData(pos=xy, data=list(range(len(xy))))
        for j in range(min(self.LABELLED, len(xy))):
            t = pg.TextItem(visible_token(self.tokens[j]), color="#303030", anchor=(0.5, 1.2))
            t.setPos(float(xy[j, 0]), float(xy[j, 1]))
            self.map.addItem(t)
            self.labels.append(t)

    def _on_point(self, _item, points, *_) -> None:
        if points:
            self.show_neighbours(int(points[0].data()))

    def show_neighbours(self, token: int) -> None:
        from desktop_llm.core.embedding_space import nearest_over_training

        rows = nearest_over_training(self.space, token, 5)
        self.neighbours.setText(
            f"<b>Nearest to <code>{html.escape(visible_token(self.tokens[token]))}</code></b><br>" + "<br>".join(
                f"step {step:,}: " + " ".join(f"<code>{html.escape(visible_token(self.tokens[n]))}</code>" for n in near)
                for step, near in rows))
        self.shown_token = token


class SentenceView(SnapshotMap):
    """An encoder run's sentence embeddings over training (core/embedding_space.sentence_space):
    computed in the model worker's process (core/worker_jobs.py) when the tab is first shown for
    a run's snapshots (it builds the model and embeds a few hundred sentences per snapshot)."""

    def __init__(self, session, parent=None):
        super().__init__("sentence embeddings", parent)
        self.session = session
        self.run = None
        self.map.addLegend(offset=(10, 10))
        self.points: list[pg.ScatterPlotItem] = []
        self.picked = label("<i>Click a sentence on the map to read it.</i>", None)
        self.picked.setWordWrap(True)
        self.curves = pg.PlotWidget()
        self.curves.setBackground(None)
        self.curves.getPlotItem().setLabel("bottom", "step")
        self.curves.getPlotItem().setLabel("left", "nearest neighbour from the same source")
        self.curves.addLegend(offset=(-10, -10))
        self.curves.getPlotItem().setYRange(0, 1.05)
        side = QSplitter(Qt.Vertical)
        side.addWidget(self.picked)
        side.addWidget(self.curves)
        self._lay_out(side)

    def set_run(self, run) -> None:
        self.run = run
        if self.isVisible():
            self.compute()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.compute()

    def compute(self) -> None:
        """Map the run's snapshots' sentence embeddings, unless they are mapped already."""
        from desktop_llm.core import snapshots
        from desktop_llm.gui.workers import in_worker

        run = self.run
        if run is None:
            return
        key = (str(run.folder), tuple(snapshots.steps(run)))
        if key == self.key or (self.task is not None and not self.task.settled):
            return
        self.key = key

        def failed(message):
            self.status.setText(message)

        self.task = in_worker(self, self.session, "desktop_llm.core.worker_jobs:sentences",
                              lambda m: self.status.setText(f"Embedding the run's sentences at each weight snapshot "
                                                            f"({m[0].lower()}{m[1:]})"),
                              self._on_space, failed,
                              lambda _f, m: self.status.setText(f"Embedding the run's sentences: {m}"), run=run)

    def _on_space(self, space: dict) -> None:
        self.space = space
        steps = space["steps"]
        self.slider.setRange(0, max(0, len(steps) - 1))
        self.slider.setValue(self.slider.maximum())
        self.curves.clear()
        if steps:
            self.curves.plot(steps, space["agreement"], pen=pg.mkPen("#3574f0", width=2), symbol="o", symbolSize=4,
                             name="the model's vectors")
            for value, colour, name in ((space["baseline"], "#59a14f", "TF-IDF character n-grams"),
                                        (space["chance"], "#999999", "chance")):
                if value is not None:
                    self.curves.plot([steps[0], steps[-1]], [value, value], name=name,
                                     pen=pg.mkPen(colour, width=2, style=Qt.DashLine))
        sources = sorted(set(space["sources"]))
        if not steps:
            self.status.setText("This run keeps no weight snapshots: nothing to map over training.")
        elif len(sources) < 2:
            self.status.setText(f"{len(space['texts'])} sentences, all from one source: the map shows how they "
                                "spread, but there is nothing to group them by. Train on several files (or labelled "
                                "texts) to see the encoder tell them apart.")
        else:
            final, base = space["agreement"][-1], space["baseline"]
            said = "beats" if base is not None and final > base else "does not beat"
            self.status.setText(f"{len(space['texts'])} sentences from {len(sources)} sources. At step {steps[-1]:,}, "
                                f"{final:.0%} have their nearest neighbour from their own source (chance "
                                f"{space['chance']:.0%}): the model {said} TF-IDF's {base:.0%}.")
        self._draw()

    def _draw(self) -> None:
        for item in self.points:
            self.map.removeItem(item)
        self.points = []
        i = self._shown_snapshot()
        if i is None:
            return
        xy = self.space["coords"][i]
        sources = np.array(self.space["sources"])
        for k, source in enumerate(sorted(set(sources))[: len(PALETTE)]):
            idx = np.flatnonzero(sources == source)
            colour = QColor(PALETTE[k])
            colour.setAlpha(170)
            item = pg.ScatterPlotItem(pos=xy[idx], data=idx.tolist(), size=7, brush=pg.mkBrush(colour),
                                      pen=pg.mkPen(None), name=source)
            item.sigClicked.connect(self._on_point)
            self.map.addItem(item)
            self.points.append(item)

    def _on_point(self, _item, points, *_) -> None:
        if points:
            self.show_sentence(int(points[0].data()))

    def show_sentence(self, j: int) -> None:
        self.picked.setText(f"<b>{html.escape(self.space['sources'][j])}</b><br>{html.escape(self.space['texts'][j])}")
        self.shown = j


def _role_labels() -> dict:
    from desktop_llm.core.heads import LABELS

    return LABELS


class LearningPage(QWidget):
    head_requested = Signal(int, int, str, int)  # layer, head, the probe's text, the step: the Attention page shows it

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.spec: dict | None = None
        self.recs: list[dict] = []
        self.order: list[int] = []  # token positions of the heatmap's rows, top to bottom
        self.picker = RunPicker(session)
        self.picker.which.hide()  # probes are records of the run, not of a checkpoint
        self.picker.layout().itemAt(2).widget().hide()  # the "Checkpoint" label
        self.picker.changed.connect(self.refresh)
        self.status = label(NO_PROBES, "hint")
        self.milestones = label("", "hint")

        self.timeline = QTextBrowser()
        self.timeline.setPlaceholderText("The greedy continuations of the fixed prompts, one row per evaluation.")
        self.replayed: dict[tuple, list[dict]] = {}  # (run, prompts) -> their records on the weight snapshots
        self.replay_task = None
        self._replay_failed: tuple | None = None
        self.prompts_btn = QPushButton("Your own prompts…")
        self.prompts_btn.setToolTip("Write the prompts the timeline follows: they run on the weight snapshots of the "
                                    "steps before, and a run that is training uses them from its next evaluation.")
        self.prompts_btn.clicked.connect(self.edit_prompts)
        self.prompts_note = label("", "hint")
        timeline_tab = QWidget()
        tl = QVBoxLayout(timeline_tab)
        tl.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.prompts_btn)
        row.addWidget(self.prompts_note, 1)
        tl.addLayout(row)
        tl.addWidget(self.timeline, 1)

        self.heat = pg.PlotWidget()
        self.heat.setBackground(None)
        self.heat.getPlotItem().setLabel("bottom", "evaluation")
        self.heat.getPlotItem().setMouseEnabled(x=False, y=False)
        self.heat.invertY(True)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.heat.addItem(self.image)
        self.image.mouseClickEvent = self._on_click
        self.colorbar = pg.ColorBarItem(values=(0, 3), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        width=14, label="loss (nats)")
        self.colorbar.setImageItem(self.image, insert_in=self.heat.getPlotItem())
        self.curve = pg.PlotWidget()
        self.curve.setBackground(None)
        self.curve.setMinimumHeight(96)
        self.curve.getPlotItem().setLabel("left", "loss (nats)")
        self.curve.getPlotItem().setLabel("bottom", "step")
        self.lists = label("", None)
        self.lists.setWordWrap(True)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.lists)
        sl.addWidget(self.curve, 1)
        when = _split(self.heat, side)

        self.context = pg.PlotWidget()
        self.context.setBackground(None)
        self.context.getPlotItem().setLabel("left", "mean loss (nats)")
        self.context.getPlotItem().setLabel("bottom", "position in the context")
        self.context.addLegend(offset=(-10, 10))

        self.tabs = QTabWidget()
        self.tabs.addTab(timeline_tab, "Timeline")
        self.tabs.addTab(when, "What it learned when")
        self.tabs.addTab(self.context, "In context")
        self.atlas = HeadAtlas()
        self.atlas.head_clicked.connect(self._open_head)
        self.tabs.addTab(self.atlas, "Heads")
        self.health = HealthView()
        self.tabs.addTab(self.health, "Health")
        self.embeddings = EmbeddingView()
        self.tabs.addTab(self.embeddings, "Embeddings")
        self.sentences = SentenceView(session)
        self.tabs.addTab(self.sentences, "Sentences")  # shown for encoder runs only
        self.tabs.setTabVisible(self.tabs.indexOf(self.sentences), False)
        # the views a family's records may lack (a classifier's or translator's loss is not per
        # token of a text; a translator's BART blocks give no head atlas): hidden for such runs
        self._optional = {when: "token_losses", self.context: "position_loss", self.atlas: "heads"}
        self._stale: set = set()
        self.tabs.currentChanged.connect(self._draw_shown)

        lay = QVBoxLayout(self)
        lay.addWidget(header("Learning", "What the model learned, and when: the same probe at every evaluation, "
                                         "live while it trains."))
        top = QHBoxLayout()
        top.addWidget(self.picker, 1)
        lay.addLayout(top)
        lay.addWidget(self.milestones)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.status)
        self.timer = QTimer(self)  # a run that trains grows its records: read them again now and then
        self.timer.setInterval(3000)
        self.timer.timeout.connect(self._poll)
        self.timer.start()
        self._seen = 0
        self.refresh()

    # ------------------------------------------------------------------ data
    def _poll(self) -> None:
        if self.isVisible() and self.picker.run_id:
            from desktop_llm.core import probes

            run = self.session.store.get(self.picker.run_id)
            size = probes.records_path(run).stat().st_size if probes.records_path(run).exists() else 0
            if size != self._seen:
                self.refresh()

    def refresh(self) -> None:
        from desktop_llm.core import probes

        run_id = self.picker.run_id
        run = self.session.store.get(run_id) if run_id else None
        self.spec = probes.spec(run) if run is not None else None
        self.recs = probes.records(run) if run is not None else []
        self._seen = probes.records_path(run).stat().st_size if run is not None and \
            probes.records_path(run).exists() else 0
        if not self.spec or not self.recs:
            self.status.setText(NO_PROBES)
            self.timeline.clear()
            self.image.clear()
            self.curve.clear()
            self.context.clear()
            self._stale = set()
            self.atlas.set_records([])
            self.health.set_records([])
            self.embeddings.set_run(None)
            self.sentences.set_run(None)
            self.tabs.setTabVisible(self.tabs.indexOf(self.sentences), False)
            self.lists.setText("")
            self.milestones.setText("")
            return
        evals = [m for m in run.metrics() if m.get("type") == "eval"]
        found = probes.milestones(evals, run.status().get("baselines"), self.recs)
        self.milestones.setText("Milestones: " + " · ".join(f"step {s:,}: {w}" for s, w in found) if found else
                                "Milestones appear here: the step it beats each baseline, the validation minimum.")
        self._show_timeline(run)
        self._show_learned(run)
        self._show_context()
        self._stale = {self.atlas, self.health}  # the costly plots: drawn when their tab is shown
        self._draw_shown()
        self.embeddings.set_run(run)
        from desktop_llm.core.models import get_family

        family = get_family(run.config.family)
        encoder = family.embeds_sentences
        self.tabs.setTabVisible(self.tabs.indexOf(self.sentences), encoder)
        for view, key in self._optional.items():
            self.tabs.setTabVisible(self.tabs.indexOf(view), any(r.get(key) for r in self.recs))
        self.sentences.set_run(run if encoder else None)

        cells = family.timeline_cells
        self.status.setText(f"{len(self.recs)} evaluations probed, the last at step {self.recs[-1]['step']:,}. "
                            f"Timeline: {cells}; tints: how surprised the model was by each token; bold: changed "
                            "since the row above.")

    def _draw_shown(self, *_) -> None:
        """Draw the head atlas or the health where its tab is shown and its records changed: a live
        run's poll then redraws one view, not all (the health's plots took 150 ms of a 240 ms refresh)."""
        view = self.tabs.currentWidget()
        if view in self._stale:
            self._stale.discard(view)
            view.set_records(self.recs)

    # ------------------------------------------------------------------ the timeline's prompts
    def _show_timeline(self, run) -> None:
        from desktop_llm.core import probes
        from desktop_llm.core.models import get_family

        wanted = probes.prompts(run, self.spec)
        live = probes.same_prompts(self.recs, self.spec, wanted)
        key = (run.id, tuple(wanted))
        rows = {r["step"]: r for r in self.replayed.get(key, [])}
        rows.update({r["step"]: r for r in live})  # an evaluation's own record over the snapshot's replay
        own = wanted != list(self.spec.get("prompts") or [])
        busy = self.replay_task is not None and not self.replay_task.settled
        if key not in self.replayed and len(live) < len(self.recs) and not busy and self.isVisible() \
                and key != self._replay_failed:  # (shown: not while the window is still being built)
            self._replay(run, wanted)
        elif not busy:
            self.prompts_note.setText("Your prompts: the evaluations before them ran on the kept weight snapshots."
                                       if own else f"The probe's prompts: {get_family(run.config.family).probe_prompts_origin}.")
        self.timeline.setHtml(timeline_html(wanted, [rows[k] for k in sorted(rows)]))

    def edit_prompts(self, texts: list[str] | None = None) -> None:
        """Ask for the prompts (one a line; empty: back to the probe's), keep them, replay them."""
        from PySide6.QtWidgets import QInputDialog

        from desktop_llm.core import probes

        run_id = self.picker.run_id
        if not run_id or not self.spec:
            return
        run = self.session.store.get(run_id)
        if texts is None:
            text, ok = QInputDialog.getMultiLineText(
                self, "The timeline's prompts", f"One prompt a line (at most {probes.MAX_PROMPTS}); leave it empty "
                "for the probe's own:", "\n".join(probes.prompts(run, self.spec)))
            if not ok:
                return
            texts = text.split("\n")
        try:
            probes.set_prompts(run, texts)
        except (probes.ProbeError, OSError) as e:
            self.prompts_note.setText(str(e))
            return
        self._replay_failed = None
        self.refresh()

    def _replay(self, run, wanted: list[str]) -> None:
        from desktop_llm.gui.workers import in_worker

        key = (run.id, tuple(wanted))

        def done(recs):
            self.replayed[key] = recs
            self.replay_task = None  # settled: the note may say what the table shows
            if self.picker.run_id == run.id:
                self._show_timeline(run)

        def failed(message):
            self._replay_failed = key  # not again by itself: the message stays until the prompts are set again
            self.replay_task = None
            self.prompts_note.setText(message)

        self.replay_task = in_worker(
            self, self.session, "desktop_llm.core.worker_jobs:replay",
            lambda m: self.prompts_note.setText(f"Running the prompts on the kept weight snapshots ({m[0].lower()}{m[1:]})"),
            done, failed, lambda _f, m: self.prompts_note.setText(f"Running the prompts on the kept weight snapshots: {m}"),
            run=run, wanted=list(wanted))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.spec and self.picker.run_id:  # prompts whose replay waited for the page to be shown
            self.refresh()

    def _tokens(self, run) -> list[str]:
        from desktop_llm.core.loading import load_run_tokenizer
        from desktop_llm.errors import DesktopLLMError

        try:
            tok = load_run_tokenizer(run.tokenizer_dir)
        except (DesktopLLMError, OSError):
            return [str(i) for i in self.spec["window"][1:]]
        return [tok.token_text(int(i)) for i in self.spec["window"][1:]]

    def _show_learned(self, run) -> None:
        from desktop_llm.core import probes
        from desktop_llm.core.models import get_family

        self.steps, losses = probes.loss_matrix(self.recs)
        self.losses = losses
        if losses.size == 0:  # a classifier's or translator's loss is per text or pair, not per token of a text
            self.image.clear()
            self.curve.clear()
            self.tokens, self.order = [], []
            self.lists.setText(f"A {get_family(run.config.family).title.lower()} run's loss is not one per token "
                               "of a running text, so this map has nothing to show; the Timeline shows what it "
                               "answers at each evaluation." if self.recs else "")
            return
        self.tokens = self._tokens(run)[: losses.shape[1]]
        when = probes.learned_when(self.steps, losses)
        never = max(self.steps, default=0) + 1
        self.order = sorted(range(losses.shape[1]), key=lambda j: (when["learned_at"][j] or never, j))
        top = max(1.0, float(np.percentile(losses, 99)))
        self.image.setImage(np.ascontiguousarray(losses[:, self.order].T), levels=(0, top))  # rows: tokens
        self.colorbar.setLevels((0, top))
        ticks = [(i + 0.5, visible_token(self.tokens[j])) for i, j in enumerate(self.order)]
        step = max(1, len(ticks) // 32)
        self.heat.getPlotItem().getAxis("left").setTicks([ticks[::step]])
        self.heat.getPlotItem().getAxis("bottom").setTicks([[(i + 0.5, f"{s:,}") for i, s in enumerate(self.steps)]
                                                            [:: max(1, len(self.steps) // 8)]])

        def listed(js) -> str:
            return " ".join(f"<code>{html.escape(visible_token(self.tokens[j]))}</code>" for j in js[:16]) or "–"

        learned = sorted((s, j) for j, s in enumerate(when["learned_at"]) if s is not None)
        third = max(1, len(learned) // 3)
        self.lists.setText(
            f"<b>Learned early</b> (loss under {probes.LEARNED:g} nat and staying): {listed([j for _, j in learned[:third]])}"
            f"<br><b>Learned late</b>: {listed([j for _, j in learned[-third:]][::-1])}"
            f"<br><b>Not yet</b>: {listed([j for j, s in enumerate(when['learned_at']) if s is None])}"
            f"<br><b>Got worse</b>: {listed([j for j, w in enumerate(when['got_worse']) if w])}"
            "<br><i>Click a row of the map for that token's curve.</i>")
        if self.order:
            self.show_token(self.order[-1])

    def show_token(self, j: int) -> None:
        """One token's loss over the evaluations (the map's row for it)."""
        self.curve.clear()
        self.curve.plot(self.steps, self.losses[:, j], pen=pg.mkPen("#3574f0", width=2), symbol="o", symbolSize=5)
        self.curve.getPlotItem().setTitle(f"“{visible_token(self.tokens[j])}” (token {j + 1} of the probe text)")
        self.shown_token = j

    def _open_head(self, layer: int, head: int) -> None:
        """The head's map on the Attention page, for the probe's own text."""
        from desktop_llm.core.loading import load_run_tokenizer
        from desktop_llm.errors import DesktopLLMError

        run = self.session.store.get(self.picker.run_id) if self.picker.run_id else None
        try:
            text = load_run_tokenizer(run.tokenizer_dir).decode([int(i) for i in self.spec["window"][:64]])
        except (DesktopLLMError, OSError, TypeError, AttributeError):  # no run, or its tokenizer is gone
            text = ""
        self.head_requested.emit(layer, head, text, getattr(self.atlas, "shown_step", 0))

    def _on_click(self, event) -> None:
        row = int(event.pos().y())
        if 0 <= row < len(self.order):
            self.show_token(self.order[row])

    def _show_context(self) -> None:
        self.context.clear()
        rows = [r for r in self.recs if r.get("position_loss")]
        picks = sorted({0, len(rows) // 2, len(rows) - 1}) if rows else []
        colours = ["#b0b0b0", "#f28e2b", "#3574f0"]
        for colour, i in zip(colours[-len(picks):], picks):
            r = rows[i]
            self.context.plot(np.arange(1, len(r["position_loss"]) + 1), r["position_loss"],
                              pen=pg.mkPen(colour, width=2), name=f"step {r['step']:,}")
