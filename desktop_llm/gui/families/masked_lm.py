"""The masked LM on the Generate page: Fill mask, and Similar sentences (its encoder's embeddings).

Fill mask: Type "床前[MASK]月光" or "To be or
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
)

from desktop_llm.core.models.masked_lm.fill_mask import MASK
from desktop_llm.gui.families.panel import FamilyPanel
from desktop_llm.gui.families.similar import SimilarPanel
from desktop_llm.gui.families.start_from import StartFromOptions
from desktop_llm.gui.widgets import visible_token


class FillMaskPanel(FamilyPanel):
    TITLE = "Fill mask"
    DESCRIPTION = "A masked-LM run guesses the tokens hidden behind [MASK], reading the text on both sides."
    RUNS = "a masked-LM run"

    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(session, run_id_fn, "A masked-LM run guesses hidden tokens from both sides of the text.",
                         parent)
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
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        row.addWidget(self.top_k)
        row.addWidget(self.fill_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)

    def primary(self) -> None:
        self.fill()

    def example_box(self):
        return self.text

    def example_from(self, sample: str) -> str:
        """The sample's first line with its middle letter hidden."""
        line = sample.splitlines()[0][:60]
        letters = [i for i, c in enumerate(line) if c.isalnum()]
        if not letters:
            return line + MASK
        i = letters[len(letters) // 2]
        return line[:i] + MASK + line[i + 1:]

    def fill(self) -> None:
        if not self.chosen():
            return
        self.fill_btn.setEnabled(False)
        self.run_with_model("desktop_llm.core.models.masked_lm.tab_work:fill", "Filling the masks…", self._on_done,
                            self._on_error, text=self.text.text(), top_k=self.top_k.value())

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
        self.say(f"{len(masks)} mask{'s' if len(masks) != 1 else ''}, "
                            f"{self.top_k.value()} candidates each, likeliest first.")

    def _on_error(self, msg: str) -> None:
        self.fill_btn.setEnabled(True)
        self.result = None
        self.table.setRowCount(0)
        self.say(msg, "error")


# The Generate page for a masked-LM run: these tabs, under this header.

class ContinueOptions(StartFromOptions):
    """Continued pretraining: a masked-LM run's tokenizer, shape and weights, on new text."""

    FAMILY, BASES = "masked_lm", ("masked_lm",)
    TIP = ("A masked-LM run to continue on this corpus (its tokenizer, shape and best weights, at a gentler "
           "learning rate); or scratch: a new encoder with the Tokenizer and Model pages' settings")


TrainOptions = ContinueOptions
CHOICE = "Masked LM: guess hidden tokens (BERT-style)"
TABS = (FillMaskPanel, SimilarPanel)
HEADER = ("Fill mask", "A masked-LM run guesses the tokens hidden behind [MASK], reading the text on both sides.")
ATTENTION_NOTE = 'An encoder reads both ways: each token sees every token of the text.'  # the Attention page, for its runs
EVALUATE_ELSEWHERE = 'Fill mask on the Generate page guesses hidden tokens'  # the Evaluate page: where this family's own evaluation is
