"""Similar: sentence embeddings of an encoder run (a masked LM, or a classifier on one). Search the
corpus' sentences by meaning (top-k with cosine scores), see them all in two dimensions (PCA,
coloured by source file or class; hover shows the text), export them for TensorBoard's projector."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.families.panel import FamilyPanel
from desktop_llm.gui.theme import COLORS, themed_plot
from desktop_llm.gui.widgets import label


class SimilarPanel(FamilyPanel):
    """Shared by the families with an encoder (their TABS list it)."""

    TITLE = "Similar sentences"
    DESCRIPTION = ("An encoder turns each sentence into a vector: find the corpus' sentences closest in meaning, "
                   "and see them all in two dimensions.")
    RUNS = "a masked-LM or classifier run"

    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(session, run_id_fn, "An encoder turns each sentence into a vector; close vectors, "
                         "close meaning.", parent)
        self.index = None  # core.inference.embeddings.Index of the run's sentences
        self._index_key = None
        self.hits: list[dict] | None = None
        self.exported: tuple | None = None
        self.query = QLineEdit("举头望明月")
        self.query.setPlaceholderText("A sentence to find the closest sentences of the corpus to")
        self.query.returnPressed.connect(self.search)
        self.pooling = QComboBox()
        self.pooling.addItem("mean of the tokens", "mean")
        self.pooling.addItem("[CLS] token", "cls")
        self.pooling.setToolTip("How a sentence's token states become one vector (then L2-normalised)")
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 100)
        self.top_k.setValue(10)
        self.top_k.setPrefix("top ")
        self.search_btn = QPushButton("Search")
        self.search_btn.setProperty("role", "primary")
        self.search_btn.clicked.connect(self.search)
        self.export_btn = QPushButton("Export for the projector…")
        self.export_btn.setToolTip("vectors.tsv and metadata.tsv of the sentences, for TensorBoard's projector "
                                   "or projector.tensorflow.org (into the workspace's exports folder)")
        self.export_btn.clicked.connect(self.export)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Cosine", "Source", "Sentence"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.scatter_plot = themed_plot(pg.PlotWidget(title="Sentences, 2-D projection (PCA)"))
        self.scatter_plot.setMinimumSize(280, 240)
        self.scatter_plot.addLegend(offset=(-10, 10))
        self.scatter_plot.setLabel("bottom", "first principal component")
        self.scatter_plot.setLabel("left", "second principal component")
        # One scale on both axes: the second component's spread is seen against the first's (an
        # axis zoomed on its own drew a 1000x smaller spread at the same size).
        self.scatter_plot.setAspectLocked(True)
        self.hover = label("", "hint")

        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.pooling)
        row.addWidget(self.top_k)
        row.addWidget(self.search_btn)
        row.addWidget(self.export_btn)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.scatter_plot, 1)
        rl.addWidget(self.hover)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([520, 420])
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        self.scatter_plot.scene().sigMouseMoved.connect(self._on_move)
        self._points = None  # (2-D points, items) for hover

    # ------------------------------------------------------------------ work
    def _job(self, then, button, **kwargs) -> None:
        """The model worker's work on the run's sentence index (core/worker_jobs.similar), which it
        builds once per checkpoint and pooling and sends back for the map."""
        if not (chosen := self.chosen()):
            return
        run_id, which = chosen
        pooling = self.pooling.currentData()
        key = (run_id, which, pooling)

        def done(result):
            index, value = result
            fresh = key != self._index_key or self.index is None or len(index.items) != len(self.index.items)
            self.index, self._index_key = index, key
            if fresh:
                self._draw_scatter()
            button.setEnabled(True)
            self.say(self.status.text())
            then(value)

        def failed(msg):
            button.setEnabled(True)
            self.say(msg, "error")

        button.setEnabled(False)
        self.call_worker("desktop_llm.core.worker_jobs:similar", done, failed, run_id=run_id, which=which,
                         pooling=pooling, **kwargs)

    def primary(self) -> None:
        self.search()

    def example_box(self):
        return self.query

    def example_from(self, sample: str) -> str:
        return sample.splitlines()[0][:80]

    def search(self) -> None:
        self._job(self._show_hits, self.search_btn, query=self.query.text(), k=self.top_k.value())

    def _show_hits(self, hits: list[dict]) -> None:
        self.hits = hits
        self.table.setRowCount(len(hits))
        for i, h in enumerate(hits):
            for col, v in enumerate((f"{h['score']:.3f}", h["source"], h["text"].replace("\n", " "))):
                item = QTableWidgetItem(v)
                if col == 2:
                    item.setToolTip(h["text"][:2000])
                self.table.setItem(i, col, item)
        self.status.setText(f"The {len(hits)} closest of {len(self.index.items):,} sentences, by cosine "
                            "similarity (1 is the same direction).")

    def export(self) -> None:
        def shown(paths):
            self.exported = paths
            self.status.setText(f"Wrote {paths[0]} and {paths[1].name}: load both in TensorBoard's projector "
                                "or at projector.tensorflow.org.")

        run_id = (self.chosen() or (None, None))[0]
        if run_id:
            self._job(shown, self.export_btn, projector_to=str(self.session.store.exports_dir / f"{run_id}-projector"))

    # ------------------------------------------------------------------ the 2-D view
    def _draw_scatter(self) -> None:
        from desktop_llm.core.inference.embeddings import pca_2d

        plot = self.scatter_plot
        plot.clear()
        if plot.plotItem.legend is not None:
            plot.plotItem.legend.clear()
        items = self.index.items
        xy = pca_2d(self.index.vectors)
        self._points = (xy, items)
        sources = sorted({s.source for s in items})
        labels = np.array([s.source for s in items])
        for n, source in enumerate(sources[:12]):  # a legend of more would hide the points
            pts = xy[labels == source]
            plot.plot(pts[:, 0], pts[:, 1], pen=None, symbol="o", symbolSize=5,
                      symbolBrush=COLORS[n % len(COLORS)], symbolPen=None, name=source)

    def _on_move(self, pos) -> None:
        if self._points is None:
            return
        xy, items = self._points
        vb = self.scatter_plot.plotItem.vb
        p = vb.mapSceneToView(pos)
        scale = np.array([vb.viewRange()[0][1] - vb.viewRange()[0][0], vb.viewRange()[1][1] - vb.viewRange()[1][0]])
        d = np.abs((xy - [p.x(), p.y()]) / np.maximum(scale, 1e-9)).sum(1)
        i = int(d.argmin())
        if d[i] < 0.02:
            self.hover.setText(f"[{items[i].source}] {items[i].text[:160]}")
