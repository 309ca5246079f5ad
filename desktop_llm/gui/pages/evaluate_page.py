"""Evaluate: perplexity of a checkpoint on the run's validation split, a chosen file or typed text,
and the loss of every token shown on the text (darker: the model was more surprised)."""

from __future__ import annotations

import math

from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.widgets import RunPicker, TokenView, header, heat_color, label, set_role
from desktop_llm.gui.workers import in_worker


class EvaluatePage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.task = None
        self.result = None
        self.picker = RunPicker(session)

        self.src_val = QRadioButton("Validation split of the run")
        self.src_file = QRadioButton("A file")
        self.src_text = QRadioButton("This text")
        self.src_val.setChecked(True)
        self.sources = QButtonGroup(self)
        for b in (self.src_val, self.src_file, self.src_text):
            self.sources.addButton(b)
        self.file = QLineEdit()
        self.file.setPlaceholderText("a text file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Paste text to score")
        self.text.setMaximumHeight(90)
        self.text.textChanged.connect(lambda: self.src_text.setChecked(True))
        self.file.textEdited.connect(lambda: self.src_file.setChecked(True))
        self.go = QPushButton("Evaluate")
        self.go.setProperty("role", "primary")
        self.go.setShortcut("Ctrl+Return")
        self.go.setToolTip("Evaluate (Ctrl+Enter)")
        self.go.clicked.connect(self.evaluate)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(lambda: self.task and self.task.cancel())
        self.progress = QProgressBar()
        self.progress.setVisible(False)

        src = QGroupBox("Text to score")
        sl = QVBoxLayout(src)
        sl.addWidget(self.src_val)
        frow = QHBoxLayout()
        frow.addWidget(self.src_file)
        frow.addWidget(self.file, 1)
        frow.addWidget(browse)
        sl.addLayout(frow)
        sl.addWidget(self.src_text)
        sl.addWidget(self.text)
        buttons = QHBoxLayout()
        buttons.addWidget(self.go)
        buttons.addWidget(self.cancel_btn)
        buttons.addWidget(self.progress, 1)
        sl.addLayout(buttons)

        res = QGroupBox("Result")
        rf = QFormLayout(res)
        self.figures = {k: label("–", "figure") for k in ("ppl", "loss", "bits", "bpb", "baselines", "tokens",
                                                           "ckpt")}
        self.figures["baselines"].setWordWrap(True)
        self.figures["baselines"].setToolTip("Models the network must beat, on the same validation split "
                                             "(computed when the run was made)")
        rf.addRow("Perplexity", self.figures["ppl"])
        rf.addRow("Loss (nats / token)", self.figures["loss"])
        rf.addRow("Bits per token", self.figures["bits"])
        rf.addRow("Bits per byte", self.figures["bpb"])
        rf.addRow("Baselines", self.figures["baselines"])
        rf.addRow("Tokens scored", self.figures["tokens"])
        rf.addRow("Checkpoint", self.figures["ckpt"])
        top = QHBoxLayout()
        top.addWidget(src, 3)
        top.addWidget(res, 2)

        self.view = TokenView()
        self.view.setPlaceholderText("Each token's loss is shown on the text after evaluating.")
        self.status = label("", "hint")
        lay = QVBoxLayout(self)
        lay.addWidget(header("Evaluate", "Perplexity: how surprised the model is by text it has not "
                                         "trained on (lower is better). Hover a token for its loss."))
        lay.addWidget(self.picker)
        self.family_note = label("", "figure")  # another family's own figures, instead of perplexity
        self.family_note.setWordWrap(True)
        self.family_note.hide()
        lay.addWidget(self.family_note)
        lay.addLayout(top)
        lay.addWidget(label("Per-token loss (darker: more surprising)"))
        lay.addWidget(self.view, 1)
        lay.addWidget(self.status)

        self.picker.changed.connect(self._adapt_to_family)
        self._adapt_to_family()

    def _adapt_to_family(self) -> None:
        """Perplexity of text is a GPT's measure; for another family the page shows its own
        figures from the run's last validation, and where its full report is."""
        from desktop_llm.core import events as ev
        from desktop_llm.core.config import DEFAULT_FAMILY
        from desktop_llm.core.models import get_family
        from desktop_llm.gui.families import family_ui

        run_id = self.picker.run_id
        try:
            run = self.session.store.get(run_id) if run_id else None
            family = run.config.family if run else DEFAULT_FAMILY
        except Exception:  # noqa: BLE001 - a run folder that vanished: the picker refreshes soon
            run, family = None, DEFAULT_FAMILY
        fam = get_family(family)
        self.go.setEnabled(fam.evaluates_text)
        self.family_note.setVisible(not fam.evaluates_text)
        if fam.evaluates_text:
            return
        evals = [e for e in map(ev.parse, run.metrics()) if isinstance(e, ev.Eval)]
        where = family_ui(family).EVALUATE_ELSEWHERE
        if not evals:
            self.family_note.setText(f"This {family} run has no validation yet. {where[:1].upper()}{where[1:]}.")
            return
        e = evals[-1]
        figures = [f"validation loss {e.val_loss:.3f}"]
        if e.val_accuracy is not None:
            figures.append(f"{fam.accuracy_name} {e.val_accuracy:.1%}")
        if fam.masked_perplexity:
            figures.append(f"perplexity over masked tokens {e.val_ppl:.2f}")
        if e.val_macro_f1 is not None:
            figures.append(f"macro-F1 {e.val_macro_f1:.3f}")
        if e.val_bleu is not None:
            figures.append(f"BLEU {e.val_bleu:.1f}, exact match {e.val_exact_match:.1%}")
        if e.val_bits_per_byte is not None:
            figures.append(f"{e.val_bits_per_byte:.3f} bits per byte")
        if e.val_stops is not None:
            figures.append(f"replies that end with <|end|> {e.val_stops:.0%}")
        self.family_note.setText(f"A {family.replace('_', '-')} run, last validated at step {e.step}: "
                                 + " · ".join(figures) + f". Perplexity of text is a GPT's measure; {where}.")

    def _browse(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Text to evaluate", "", "Text (*.txt *.md *.jsonl *.csv);;All files (*)")
        if f:
            self.file.setText(f)
            self.src_file.setChecked(True)

    def evaluate(self) -> None:
        run_id, which = self.picker.run_id, self.picker.checkpoint
        if not run_id:
            self._error("Train a run first: there is no checkpoint to evaluate.")
            return
        source = "val" if self.src_val.isChecked() else "file" if self.src_file.isChecked() else "text"
        path, text = self.file.text().strip(), self.text.toPlainText()
        if source == "file" and not path:
            self._error("Choose a file to evaluate.")
            return
        if source == "text" and len(text) < 2:
            self._error("Type or paste some text to evaluate.")
            return

        self.go.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        set_role(self.status, "hint")
        self.task = in_worker(self, self.session, "desktop_llm.core.worker_jobs:evaluate", self.status.setText,
                              self._on_done, self._on_failed, self._on_progress, run_id=run_id, which=which,
                              source=source, path=path, text=text)

    def _on_progress(self, fraction: float, msg: str) -> None:
        if msg:  # a stage (loading the model, evaluating): the bar stays busy until counts come
            self.status.setText(msg)
            return
        self.progress.setRange(0, 100)
        self.progress.setValue(int(100 * fraction))

    def _finish(self) -> None:
        self.go.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.progress.setVisible(False)

    def _on_failed(self, msg: str) -> None:
        self._finish()
        self._error(msg)

    def _error(self, msg: str) -> None:
        self._clear_result()  # an error never sits beside the result of an earlier evaluation
        set_role(self.status, "error")
        self.status.setText(msg)

    def _clear_result(self) -> None:
        self.result = None
        for figure in self.figures.values():
            figure.setText("–")
        self.view.reset()

    def _compare(self, loss: float) -> None:
        """Bits per byte, and the baselines of the run's validation split with the verdict (core/
        baselines.py): shown for the validation split, the text they were computed on."""
        from desktop_llm.core.baselines import bits_per_byte, describe, verdict

        run_id = self.picker.run_id
        found = (self.session.store.get(run_id).status().get("baselines") or {}) \
            if self.src_val.isChecked() and run_id else {}
        bpb = bits_per_byte(loss, found.get("bytes_per_token"))
        self.figures["bpb"].setText(f"{bpb:.3f}" if bpb else "–")
        figures = found.get("figures") or {}
        said = verdict(loss, figures)
        self.figures["baselines"].setText(describe(figures) + (f". This model {said}." if said else "")
                                          if figures else "for the validation split")

    def _on_done(self, result) -> None:
        self._finish()
        ev, (ids, tokens, losses), step = result
        self.result = ev
        F = self.figures
        F["ppl"].setText(f"{ev.perplexity:,.3f}")
        F["loss"].setText(f"{ev.loss:.4f}")
        F["bits"].setText(f"{ev.bits_per_token:.3f}")
        self._compare(ev.loss)
        F["tokens"].setText(f"{ev.tokens:,}")
        F["ckpt"].setText(f"{self.picker.checkpoint}, step {step:,}")
        finite = [x for x in losses if not math.isnan(x)]
        top = max(finite) if finite else 1.0
        colors = [None if math.isnan(x) else heat_color(x / max(top, 1e-6)) for x in losses]
        tips = [f"id {i} · loss " + ("– (nothing before it to predict it from)" if math.isnan(x) else
                                     f"{x:.3f} · p {math.exp(-x):.3f}")
                for i, x in zip(ids, losses)]
        self.view.set_tokens(tokens, colors, tips)
        # The first token has no loss (nothing comes before it to predict it from): the count
        # shown is of the tokens that have one, as "Tokens scored" is.
        scored = len(finite)
        first = "the first token has none: nothing comes before it to predict it from"
        set_role(self.status, "hint")
        if ev.tokens > scored:
            self.status.setText(f"Showing the loss of {scored:,} of the {ev.tokens:,} tokens scored ({first}).")
        else:
            self.status.setText(f"Showing the loss of all {scored:,} tokens scored ({first}).")
