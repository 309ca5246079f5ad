"""Fill mask: the Generate page's face for a masked-LM run. Type "床前[MASK]月光" or "To be or
[MASK] to be" and see the model's top candidates for each mask with their probabilities."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.widgets import label, set_role, visible_token
from desktop_llm.gui.workers import model_pool_telling, run_task


class FillMaskPanel(QWidget):
    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(parent)
        self.session = session
        self.run_id_fn = run_id_fn  # () -> (run id, which checkpoint) chosen on the page
        self.task = None
        self.result: list[dict] | None = None
        self.text = QLineEdit("To be, or not to be, th[MASK]t is the question")
        self.text.setPlaceholderText("Write [MASK] where a token is hidden")
        self.text.returnPressed.connect(self.fill)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 100)
        self.top_k.setValue(10)
        self.top_k.setPrefix("top ")
        self.top_k.setToolTip("Candidates shown for each mask")
        self.fill_btn = QPushButton("Fill")
        self.fill_btn.setProperty("role", "primary")
        self.fill_btn.clicked.connect(self.fill)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Mask", "Candidate", "Probability"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.status = label("A masked-LM run guesses hidden tokens from both sides of the text.", "hint")
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        row.addWidget(self.top_k)
        row.addWidget(self.fill_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)

    def fill(self) -> None:
        run_id, which = self.run_id_fn()
        if not run_id:
            set_role(self.status, "error")
            self.status.setText("Choose a masked-LM run above.")
            return
        text, k = self.text.text(), self.top_k.value()

        def work(report, cancelled, emit):
            from desktop_llm.core.models.masked_lm.fill_mask import fill_mask

            report(0.0, "Loading the model…")
            model, tok, _ = self.session.load_model(run_id, which)
            report(0.5, "Filling the masks…")
            return fill_mask(model, tok, text, top_k=k)

        self.fill_btn.setEnabled(False)
        set_role(self.status, "hint")
        pool = model_pool_telling(lambda msg: (self.status.setText(msg), self.status.repaint()))
        self.task = run_task(self, work, self._on_done, self._on_error, pool=pool,
                             on_progress=lambda _f, msg: msg and self.status.setText(msg))

    def _on_done(self, masks: list[dict]) -> None:
        self.fill_btn.setEnabled(True)
        self.result = masks
        rows = [(i, c) for i, m in enumerate(masks, 1) for c in m["candidates"]]
        self.table.setRowCount(len(rows))
        for r, (i, c) in enumerate(rows):
            shown = visible_token(c["token"])
            for col, value in enumerate((f"#{i}", shown, f"{c['p']:.1%}")):
                item = QTableWidgetItem(value)
                if col == 2:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(r, col, item)
        set_role(self.status, "hint")
        self.status.setText(f"{len(masks)} mask{'s' if len(masks) != 1 else ''}, "
                            f"{self.top_k.value()} candidates each, likeliest first.")

    def _on_error(self, msg: str) -> None:
        self.fill_btn.setEnabled(True)
        self.result = None
        self.table.setRowCount(0)
        set_role(self.status, "error")
        self.status.setText(msg)
