"""The translator on the Generate page: Translate. Type a sentence; its translation
appears piece by piece as the decoder produces it."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.families.panel import FamilyPanel


class TranslatePanel(FamilyPanel):
    TITLE = "Translate"
    DESCRIPTION = "A translator run reads a sentence and writes it in the other language, token by token."
    RUNS = "a translator run"

    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(session, run_id_fn, "A translator run reads the whole sentence, then writes its "
                         "translation token by token (greedy decoding).", parent)
        self.result: str | None = None
        self.pieces = 0
        self.source = QPlainTextEdit("I love you.")
        self.source.setPlaceholderText("A sentence in the source language")
        self.source.setMaximumHeight(90)
        self.translate_btn = QPushButton("Translate")
        self.translate_btn.setProperty("role", "primary")
        self.translate_btn.setShortcut("Ctrl+Return")
        self.translate_btn.setToolTip("Translate (Ctrl+Enter)")
        self.translate_btn.clicked.connect(self.translate)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The translation appears here as it is decoded.")
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(self.translate_btn, 0, Qt.AlignTop)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.output, 1)

    def primary(self) -> None:
        self.translate()

    def example_box(self):
        return self.source

    def translate(self) -> None:
        if not self.chosen():
            return
        text = self.source.toPlainText().strip()
        if not text:
            self._on_error("Type a sentence to translate.")
            return
        self.output.clear()
        self.pieces = 0
        self.translate_btn.setEnabled(False)
        self.run_with_model("desktop_llm.core.models.translator.tab_work:translate", "Translating…", self._on_done,
                            self._on_error, on_emit=self._on_piece, text=text)

    def _on_piece(self, piece: str) -> None:
        self.pieces += 1
        self.output.insertPlainText(piece)

    def _on_done(self, result: tuple[str, str | None]) -> None:
        text, note = result
        self.translate_btn.setEnabled(True)
        self.result = text
        self.output.setPlainText(text)
        if note:  # a source longer than the context: say what was lost
            self.say(note, "warning")
            return
        self.status.setText(f"{self.pieces} pieces, greedy decoding." if text else
                            "The model ended at once: it has not learned this yet (train longer).")

    def _on_error(self, msg: str) -> None:
        self.translate_btn.setEnabled(True)
        self.result = None
        self.say(msg, "error")


class TranslatorOptions(QWidget):
    """The Train page's translator settings: one tokenizer for both sides, or one each. One line, no
    frame: the Train page must still fit a 1280x800 screen."""

    changed = Signal()

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.separate = QCheckBox("A tokenizer for each side of the pairs")
        self.separate.setToolTip("Learn one vocabulary for the source sentences and another for the targets "
                                 "(e.g. English words and Chinese characters), instead of one shared")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Tokenizers", self.separate)

    def fine_tunes(self) -> bool:
        return False

    def settings(self) -> dict:
        return {"separate": self.separate.isChecked()}

    def apply_settings(self, values: dict) -> None:
        self.separate.setChecked(values.get("separate") is True)

    def apply(self, cfg):
        """Its tokenizer learns both sides of the pairs, in the run."""
        from desktop_llm.core.config import TokenizerConfig

        return replace(cfg, tokenizer=TokenizerConfig(kind=self.session.tokenizer_kind or "char",
                                                      separate=self.separate.isChecked()))


CHOICE = "Translator: sentence pairs (encoder-decoder)"
TrainOptions = TranslatorOptions
TABS = (TranslatePanel,)
HEADER = ("Translate", "A translator run reads a sentence and writes it in the other language, token by token.")
ATTENTION_NOTE = "Type a source sentence: the maps are over it and the model's own translation (shown below)."  # the Attention page, for its runs
EVALUATE_ELSEWHERE = 'the Translate tab on the Generate page translates'  # the Evaluate page: where this family's own evaluation is
