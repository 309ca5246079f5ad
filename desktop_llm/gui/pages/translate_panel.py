"""Translate: the Generate page's face for a translator run. Type a sentence; its translation
appears piece by piece as the decoder produces it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from desktop_llm.gui.widgets import label, set_role
from desktop_llm.gui.workers import model_pool_telling, run_task


class TranslatePanel(QWidget):
    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(parent)
        self.session = session
        self.run_id_fn = run_id_fn  # () -> (run id, which checkpoint) chosen on the page
        self.task = None
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
        self.status = label("A translator run reads the whole sentence, then writes its translation "
                            "token by token (greedy decoding).", "hint")
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(self.translate_btn, 0, Qt.AlignTop)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.status)
        lay.addWidget(self.output, 1)

    def translate(self) -> None:
        run_id, which = self.run_id_fn()
        if not run_id:
            set_role(self.status, "error")
            self.status.setText("Choose a translator run above.")
            return
        text = self.source.toPlainText().strip()

        def work(report, cancelled, emit):
            from desktop_llm.core.config import ConfigError
            from desktop_llm.core.models.translator.decode import Translator

            if not text:
                raise ConfigError("Type a sentence to translate.")
            report(0.0, "Loading the model…")
            model, tok, _ = self.session.load_model(run_id, which)
            T = self.session.store.get(run_id).config.model.sequence_length
            report(0.5, "Translating…")
            return Translator(model, tok, T).stream(text, emit)

        self.output.clear()
        self.pieces = 0
        self.translate_btn.setEnabled(False)
        set_role(self.status, "hint")
        pool = model_pool_telling(lambda msg: (self.status.setText(msg), self.status.repaint()))
        self.task = run_task(self, work, self._on_done, self._on_error, on_emit=self._on_piece, pool=pool,
                             on_progress=lambda _f, msg: msg and self.status.setText(msg))

    def _on_piece(self, piece: str) -> None:
        self.pieces += 1
        self.output.insertPlainText(piece)

    def _on_done(self, text: str) -> None:
        self.translate_btn.setEnabled(True)
        self.result = text
        self.output.setPlainText(text)
        self.status.setText(f"{self.pieces} pieces, greedy decoding." if text else
                            "The model ended at once: it has not learned this yet (train longer).")

    def _on_error(self, msg: str) -> None:
        self.translate_btn.setEnabled(True)
        self.result = None
        set_role(self.status, "error")
        self.status.setText(msg)
