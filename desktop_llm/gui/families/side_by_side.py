"""Side by side: one prompt and seed through 2-4 runs, or one run at 2-4 points of its training
(its checkpoints and weight snapshots), streamed in columns (core/side_by_side.py; the command
line's `compare`)."""

from __future__ import annotations

import random

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core.side_by_side import MAX_COLUMNS
from desktop_llm.errors import DesktopLLMError
from desktop_llm.gui.families.panel import FamilyPanel


class Column(QWidget):
    """A run, the point of its training, and the text it writes."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.run = QComboBox()
        self.run.setToolTip("The run this column's model comes from")
        self.which = QComboBox()
        self.which.setToolTip("Its best or latest checkpoint, or a step it kept a weight snapshot of")
        self.output = QTextBrowser()
        self.output.setPlaceholderText("Its text streams here.")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.run)
        lay.addWidget(self.which)
        lay.addWidget(self.output, 1)
        self.run.currentIndexChanged.connect(self.fill_points)
        self.text = ""

    def fill_runs(self, runs: list[tuple[str, str]], chosen: str | None) -> None:
        current = self.run.currentData() or chosen
        self.run.blockSignals(True)
        self.run.clear()
        for name, run_id in runs:
            self.run.addItem(name, run_id)
        self.run.setCurrentIndex(max(0, self.run.findData(current)))
        self.run.blockSignals(False)
        self.fill_points()

    def fill_points(self) -> None:
        from desktop_llm.core.side_by_side import choices

        run_id = self.run.currentData()
        current = self.which.currentData()
        self.which.clear()
        if not run_id:
            return
        for text, which in choices(self.session.store.get(run_id)):
            self.which.addItem(text, which)
        self.which.setCurrentIndex(max(0, self.which.findData(current)))

    def target(self) -> tuple[str, str] | None:
        return (self.run.currentData(), self.which.currentData()) if self.run.currentData() and \
            self.which.currentData() else None


class SideBySidePanel(FamilyPanel):
    TITLE = "Side by side"
    DESCRIPTION = ("One prompt and seed through several runs, or one run at several points of its training: "
                   "what changed, with the sampling's luck held still.")
    RUNS = "a run that writes text"

    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(session, run_id_fn, "The same prompt and seed in every column: the models differ, not "
                         "the draws. A run keeps weight snapshots over its training: choose steps to watch it learn.",
                         parent)
        self.prompt = QLineEdit("ROMEO:")
        self.prompt.setPlaceholderText("The text every column continues")
        self.prompt.returnPressed.connect(self.primary)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2000)
        self.max_tokens.setValue(80)
        self.max_tokens.setSuffix(" tokens")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.temperature.setPrefix("temperature ")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(random.randrange(10_000))
        self.seed.setPrefix("seed ")
        self.seed.setToolTip("The one seed every column samples with")
        self.count = QSpinBox()
        self.count.setRange(2, MAX_COLUMNS)
        self.count.setValue(3)
        self.count.setSuffix(" columns")
        self.count.valueChanged.connect(self._show_columns)
        self.go = QPushButton("Compare")
        self.go.setProperty("role", "primary")
        self.go.clicked.connect(self.primary)
        top = QHBoxLayout()
        top.addWidget(self.prompt, 1)
        for w in (self.max_tokens, self.temperature, self.seed, self.count, self.go):
            top.addWidget(w)
        self.columns = [Column(session) for _ in range(MAX_COLUMNS)]
        row = QHBoxLayout()
        for c in self.columns:
            row.addWidget(c, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(row, 1)
        lay.addWidget(self.status)
        session.runs_changed.connect(self.refresh)
        self.refresh()
        self._show_columns()

    def refresh(self) -> None:
        """Every run that writes text; a new panel starts with the chosen run at spread-out points."""
        from desktop_llm.core.models import get_family

        runs = []
        for info in self.session.store.list():
            try:
                run = self.session.store.get(info["id"])
                if get_family(run.config.family).writes_text:
                    runs.append((f"{run.config.name or run.id} ({run.id[-4:]})", run.id))
            except Exception:  # noqa: BLE001, S112 - a run folder that vanished or a broken config: not offered
                continue
        chosen = self.run_id_fn()[0]
        fresh = all(c.run.count() == 0 for c in self.columns)
        for c in self.columns:
            c.fill_runs(runs, chosen)
        if fresh:
            self.spread()

    def spread(self) -> None:
        """Columns at the run's first snapshot, its middle and its best: how it learned."""
        first = self.columns[0]
        points = [first.which.itemData(i) for i in range(first.which.count())]
        steps = [p for p in points if p not in ("best", "latest")]
        picks = [steps[0], steps[len(steps) // 2]] if len(steps) >= 2 else steps[:1]
        picks += [p for p in ("best", "latest") if p in points]
        for c, which in zip(self.columns, picks + picks[-1:] * MAX_COLUMNS):
            c.which.setCurrentIndex(max(0, c.which.findData(which)))

    def _show_columns(self) -> None:
        for i, c in enumerate(self.columns):
            c.setVisible(i < self.count.value())

    def primary(self) -> None:
        from desktop_llm.core.generation import SamplingConfig

        targets = [c.target() for c in self.columns[: self.count.value()]]
        if not all(targets):
            self.say("Choose a run and a point of its training in every column.", "error")
            return
        cfg = SamplingConfig(max_new_tokens=self.max_tokens.value(), temperature=self.temperature.value(),
                             seed=self.seed.value())
        prompt = self.prompt.text()
        for c in self.columns:
            c.text = ""
            c.output.clear()
        try:
            runs = [(self.session.store.get(run_id), which) for run_id, which in targets]
        except DesktopLLMError as e:  # a run deleted meanwhile
            self.say(str(e), "error")
            return
        self.go.setEnabled(False)
        self.call_worker("desktop_llm.core.worker_jobs:side_by_side", self._done, self._failed, self._on_piece,
                         targets=runs, prompt=prompt, cfg=cfg)

    def _on_piece(self, piece) -> None:
        i, text, step = piece
        column = self.columns[i]
        if step is not None:
            column.output.setToolTip(f"The model at step {step:,}")
        column.text += text
        column.output.setPlainText(column.text)

    def _done(self, steps) -> None:
        self.go.setEnabled(True)
        self.say(f"Seed {self.seed.value()} in every column; the models at steps "
                 + ", ".join(f"{s:,}" for s in steps) + ".")

    def _failed(self, message: str) -> None:
        self.go.setEnabled(True)
        self.say(message, "error")
