"""Tokenizer: choose the kind and vocabulary size, train it off the UI thread, browse the
vocabulary, and see any text split into coloured tokens with their ids."""

from __future__ import annotations

import time
from collections import Counter

from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core.tokenizers import DEFAULT_VOCAB, KIND_LABELS, KINDS
from desktop_llm.gui.theme import COLORS
from desktop_llm.gui.widgets import TokenView, header, label, set_role, visible_token
from desktop_llm.gui.workers import Cancelled, run_task

SAMPLE = "ROMEO: But, soft! what light through yonder window breaks?\n床前明月光，疑是地上霜。"


def corpus_example(paths, column, encodings) -> str | None:
    """example_from the corpus, or None when it cannot be read (the fixed sample stays)."""
    from desktop_llm.core.corpus import Corpus, example_from
    from desktop_llm.errors import DesktopLLMError

    try:
        return example_from(Corpus(paths=paths, column=column, encodings=encodings).iter_text()) or None
    except (DesktopLLMError, OSError):
        return None


class TokenizerPage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.task = None
        self.coverage_task = None  # counts the corpus characters a char tokenizer does not cover
        self._coverage_key = None
        self._counting = False
        self.uncovered: Counter | None = None  # those characters and how often each occurs
        self.kind = QComboBox()
        for k in KINDS:
            self.kind.addItem(KIND_LABELS[k], k)
        self.kind.currentIndexChanged.connect(self._on_kind)
        self.vocab = QSpinBox()
        self.vocab.setRange(0, 200_000)
        self.vocab.setSingleStep(500)
        self.vocab.setSpecialValueText("all characters")
        self.vocab.setToolTip("Number of tokens (0 for character: every character seen). Left at its "
                              "default, a learned vocabulary grows to fit a corpus of many distinct "
                              "characters (Chinese).")
        # The default size is a suggestion: like the command line without --vocab-size, it may
        # grow for a corpus with more frequent characters than it holds. A size the user set is kept.
        self.vocab_is_default = True
        self._setting_vocab = False
        self.vocab.valueChanged.connect(self._on_vocab_edited)
        self.train_btn = QPushButton("Train tokenizer")
        self.train_btn.setProperty("role", "primary")
        self.train_btn.setShortcut("Ctrl+T")
        self.train_btn.setToolTip("Train on the corpus from the Data page (Ctrl+T)")
        self.train_btn.clicked.connect(self.train)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setVisible(False)
        self.cancel_btn.setToolTip("Stop training the tokenizer; nothing is saved")
        self.cancel_btn.clicked.connect(self.cancel)
        self.status = label("Load a corpus on the Data page, then train a tokenizer.", "hint")

        form_box = QGroupBox("Tokenizer")
        form = QFormLayout(form_box)
        form.addRow("Kind", self.kind)
        form.addRow("Vocabulary size", self.vocab)
        form.addRow(self.train_btn)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.cancel_btn)
        form.addRow(prog)
        form.addRow(self.status)

        self.vocab_list = QListWidget()
        self.vocab_list.setToolTip("The vocabulary: id and token (␣ a space, ⏎ a line break, ⇥ a tab)")
        self.vocab_list.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))  # ids line up
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(form_box)
        ll.addWidget(label("Vocabulary"))
        ll.addWidget(self.vocab_list, 1)

        self.input = QTextEdit()
        self.input.setPlainText(SAMPLE)
        self.auto_example = SAMPLE  # the text put there for the user, replaced by the corpus's own
        self.input.setAcceptRichText(False)
        self.input.textChanged.connect(self._render_tokens)
        self.tokens_view = TokenView()
        self.ratio = label("", "figure")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(label("Try it: type any text"))
        rl.addWidget(self.input, 1)
        rl.addWidget(self.ratio)
        rl.addWidget(self.tokens_view, 2)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 700])
        lay = QVBoxLayout(self)
        lay.addWidget(header("Tokenizer", "How text becomes token ids. Character and byte tokenizers "
                                          "need no training; WordPiece, SentencePiece and BPE learn a vocabulary."))
        lay.addWidget(split, 1)
        self._on_kind()
        session.corpus_changed.connect(self.show_state)

    def _on_kind(self):
        k = self.kind.currentData()
        self.vocab.setEnabled(k != "byte")
        self._show_vocab(DEFAULT_VOCAB[k])
        self.vocab_is_default = True

    def _show_vocab(self, size: int) -> None:
        """Set the size box without making it the user's choice."""
        self._setting_vocab = True
        try:
            self.vocab.setValue(size)
        finally:
            self._setting_vocab = False

    def _on_vocab_edited(self, _value: int) -> None:
        if not self._setting_vocab:
            self.vocab_is_default = False

    def train(self) -> None:
        from desktop_llm.core.corpus import Corpus
        from desktop_llm.core.tokenizers import train_tokenizer

        s = self.session
        if not s.paths:
            self._error("Add some text on the Data page first.")
            return
        kind = self.kind.currentData()
        size = None if self.vocab_is_default else (self.vocab.value() or None)
        paths, column, encodings = list(s.paths), s.column, dict(s.encodings)
        corpus = s.corpus_key  # what it is trained on: a later change of corpus makes it stale
        folder = s.store.home / "tokenizers" / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}"

        def work(report, cancelled, emit):
            corpus = Corpus(paths=paths, column=column, encodings=encodings)
            corpus.require_text()

            def texts():  # cancelling stops the trainer at its next piece of text
                for t in corpus.iter_text():
                    if cancelled():
                        raise Cancelled("Cancelled: no tokenizer was saved.")
                    yield t

            tok = train_tokenizer(kind, texts(), size)
            if cancelled():
                raise Cancelled("Cancelled: no tokenizer was saved.")
            tok.save(folder)
            return tok, corpus_example(paths, column, encodings)

        self.train_btn.setEnabled(False)
        self.cancel_btn.setVisible(True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"Training a {KIND_LABELS[kind].lower()}…")
        mine = {}  # results of a cancelled (older) task must not touch a newer one's display

        def done(result):
            if mine["task"] is self.task:
                self._on_trained(result[0], str(folder), corpus, example=result[1])

        def failed(msg):
            if mine["task"] is self.task and not mine["task"].cancelled():
                self._error(msg)

        self.task = mine["task"] = run_task(self, work, done, failed)

    def load(self, folder: str, corpus: tuple | None = None) -> None:
        """Reopen a tokenizer saved earlier (the last workspace); a missing one is just skipped.
        `corpus`: the Session.corpus_key it was trained on (default: the corpus loaded then)."""
        from pathlib import Path

        from desktop_llm.core.loading import load_run_tokenizer as load_tokenizer

        if not Path(folder).is_dir():
            return

        s = self.session
        paths, column, encodings = list(s.paths), s.column, dict(s.encodings)

        def work(report, cancelled, emit):
            return load_tokenizer(folder), (corpus_example(paths, column, encodings) if paths else None)

        def done(result):
            tok, example = result
            i = self.kind.findData(tok.kind)
            if i >= 0:
                self.kind.setCurrentIndex(i)
            if tok.kind != "char":
                self._show_vocab(tok.vocabulary_size)
            self._on_trained(tok, folder, corpus, example=example)

        self.task = run_task(self, work, done, self._error)

    def cancel(self) -> None:
        """Return to ready at once; the worker stops at its next check and its result is dropped."""
        if self.task and self.task.running:
            self.task.cancel()
            self._error("Cancelled: no tokenizer was saved.")

    def _error(self, msg: str) -> None:
        self.cancel_btn.setVisible(False)
        self.train_btn.setEnabled(True)
        self.progress.setVisible(False)
        set_role(self.status, "error")
        self.status.setText(msg)

    def _on_trained(self, tok, folder: str, corpus: tuple | None = None, example: str | None = None) -> None:
        if self.task is not None and self.task.cancelled():
            return
        self.cancel_btn.setVisible(False)
        self.train_btn.setEnabled(True)
        self.progress.setVisible(False)
        self.session.set_tokenizer(tok, folder, corpus)
        if tok.kind not in ("char", "byte") and self.vocab_is_default:
            self._show_vocab(tok.vocabulary_size)  # what the default became (grown for Chinese)
        self.show_state(force=True)
        self.vocab_list.clear()
        n = min(tok.vocabulary_size, 20000)
        self.vocab_list.addItems([f"{i:>6}  {visible_token(tok.token_text(i))}"[:60] for i in range(n)])
        if example and self.input.toPlainText() in (SAMPLE, self.auto_example):  # never what the user typed
            self.auto_example = example
            self.input.setPlainText(example)  # renders the tokens
        else:
            self._render_tokens()

    # ------------------------------------------------------------------ status line
    def show_state(self, force: bool = False) -> None:
        """The status line for where the work stands: no corpus yet, no tokenizer yet, a
        tokenizer for this corpus, or one trained on another corpus (a warning)."""
        if not force and self.task is not None and self.task.running:
            return  # training or loading: its end shows the state
        s, tok = self.session, self.session.tokenizer
        if tok is None:
            set_role(self.status, "hint")
            self.status.setText("Next: choose a kind and train a tokenizer (Ctrl+T)." if s.paths else
                                "Load a corpus on the Data page, then train a tokenizer.")
        elif s.tokenizer_stale:
            self._show_stale()
            self._count_uncovered()
        else:
            set_role(self.status, "hint")
            self.status.setText(f"Vocabulary: {tok.vocabulary_size:,} tokens. Lossless round trip: "
                                f"{'yes' if tok.lossless else 'no (whitespace is dropped)'}. Next: the model.")

    def _show_stale(self) -> None:
        tok = self.session.tokenizer
        text = "This tokenizer was trained on a different corpus than the one loaded now."
        role = "error"
        if tok.kind == "char":
            missing = self.uncovered if self._coverage_key == self._coverage_for() else None
            if missing is None:
                text += " Counting the characters it does not cover…" if self._counting else ""
            elif missing:
                shown = " ".join(visible_token(c) for c, _ in missing.most_common(8))
                text += (f" {len(missing):,} distinct characters of the new corpus ({sum(missing.values()):,} "
                         f"occurrences) are not in its vocabulary and become <unk>, e.g. {shown}.")
            else:
                text += " It covers every character of the new corpus."
                role = "hint"
        else:
            text += " Its vocabulary may not fit the new text."
        set_role(self.status, role)
        self.status.setText(text + " Retrain it (Ctrl+T).")

    def _coverage_for(self) -> tuple:
        return id(self.session.tokenizer), self.session.corpus_key

    def _count_uncovered(self) -> None:
        """Off the UI thread: which characters of the corpus a char tokenizer has no id for."""
        from desktop_llm.core.corpus import Corpus

        tok = self.session.tokenizer
        key = self._coverage_for()
        if tok is None or tok.kind != "char" or key == self._coverage_key:
            return  # counted (or being counted) already
        if self.coverage_task is not None:
            self.coverage_task.cancel()
        self._coverage_key, self.uncovered, self._counting = key, None, True
        known = set(tok.chars)
        paths, column, encodings = list(self.session.paths), self.session.column, dict(self.session.encodings)

        def work(report, cancelled, emit):
            corpus = Corpus(paths=paths, column=column, encodings=encodings)
            missing = Counter()
            for chunk in corpus.iter_text():
                if cancelled():
                    raise Cancelled("Cancelled.")
                for ch in set(chunk) - known:
                    missing[ch] += chunk.count(ch)
            return missing

        def done(missing):
            if self._coverage_key == key:
                self.uncovered, self._counting = missing, False
                if self.session.tokenizer_stale and self._coverage_for() == key:
                    self._show_stale()

        def failed(_msg):  # an unreadable corpus: the Data page says why; the warning stays, uncounted
            if self._coverage_key == key:
                self._counting = False
                if self.session.tokenizer_stale and self._coverage_for() == key:
                    self._show_stale()

        self.coverage_task = run_task(self, work, done, failed)

    def _render_tokens(self) -> None:
        tok = self.session.tokenizer
        text = self.input.toPlainText()
        if tok is None or not text:
            self.tokens_view.setHtml("")
            self.ratio.setText("")
            return
        ids = tok.encode(text)
        pieces = [tok.token_text(i) for i in ids]
        colors = [QColor(COLORS[i % len(COLORS)]) for i in range(len(ids))]
        for c in colors:
            c.setAlpha(0x55)  # a light tint of the series colours; TokenView picks the text colour
        tips = [f"id {i} · {visible_token(p)}" for i, p in zip(ids, pieces)]
        self.tokens_view.set_tokens(pieces, colors, tips, footer="<p style='color:gray; font-size:12px'>ids: "
                                    + " ".join(map(str, ids[:400])) + ("…" if len(ids) > 400 else "") + "</p>")
        self.ratio.setText(f"{len(ids)} tokens · {len(text) / max(1, len(ids)):.2f} characters per token")
