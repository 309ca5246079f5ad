"""Choose the encoding a file is read with (the Data page's Encoding… action): a list of common
encodings with the detected one first, and the file's first lines as each choice reads them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from desktop_llm.core.corpus import (
    COMMON_ENCODINGS,
    CorpusError,
    check_encoding,
    describe_encoding,
    garbled_characters,
    normalize_preview,
)
from desktop_llm.gui.widgets import label, set_role

PREVIEW_BYTES = 4096


def _same(a: str, b: str) -> bool:
    import codecs

    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return a == b


class EncodingDialog(QDialog):
    """exec() returns Accepted (read with `encoding()`), DETECT (detect it again) or Rejected."""

    DETECT = 2

    def __init__(self, source, count: int = 1, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Encoding")
        self.setObjectName("encoding_dialog")
        self.path = source.path
        name = Path(source.path).name
        others = f" and {count - 1} other selected file{'s' if count > 2 else ''}" if count > 1 else ""
        intro = label(f"Read “{name}”{others} with this encoding:")

        self.combo = QComboBox()
        self.combo.setEditable(True)  # any name Python knows: koi8-r, cp1251, euc-jp...
        self.combo.setInsertPolicy(QComboBox.NoInsert)
        self.combo.setMinimumWidth(420)
        first = source.encoding
        if first:
            how = "chosen" if source.chosen else f"detected, {source.confidence:.0%} sure"
            self.combo.addItem(f"{first} — {describe_encoding(first)} ({how})", first)
        for enc in COMMON_ENCODINGS:
            if not (first and _same(enc, first)):
                self.combo.addItem(f"{enc} — {describe_encoding(enc)}", enc)
        self.combo.setCurrentIndex(0)

        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setMinimumSize(520, 180)
        self.note = label("", "hint")
        try:
            with open(source.path, "rb") as f:
                self.sample = f.read(PREVIEW_BYTES)
        except OSError as e:
            self.sample = b""
            self.note.setText(f"Cannot read the file: {e.strerror or e}")

        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.detect_btn = QPushButton("Detect automatically")
        self.detect_btn.setToolTip("Forget the chosen encoding and detect it again")
        self.detect_btn.setVisible(bool(source.chosen))  # only a chosen encoding can be forgotten
        self.buttons.addButton(self.detect_btn, QDialogButtonBox.ResetRole)
        self.detect_btn.clicked.connect(lambda: self.done(self.DETECT))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.combo)
        lay.addWidget(label("The first lines read with it:", "hint"))
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.note)
        lay.addWidget(self.buttons)
        self.combo.currentIndexChanged.connect(self._update)
        self.combo.editTextChanged.connect(self._update)
        self._update()

    def encoding(self) -> str:
        """The chosen encoding's name: a listed one, or what was typed."""
        i = self.combo.currentIndex()
        if i >= 0 and self.combo.currentText() == self.combo.itemText(i):
            return str(self.combo.itemData(i))
        return self.combo.currentText().strip()

    def select(self, encoding: str) -> None:
        """Choose `encoding` (listed or not), as a person would in the list."""
        for i in range(self.combo.count()):
            if _same(str(self.combo.itemData(i)), encoding):
                self.combo.setCurrentIndex(i)
                return
        self.combo.setEditText(encoding)

    def _update(self, *_):
        ok_btn = self.buttons.button(QDialogButtonBox.Ok)
        try:
            enc = check_encoding(self.encoding())
        except CorpusError as e:
            ok_btn.setEnabled(False)
            set_role(self.note, "error")
            self.note.setText(str(e))
            self.preview.setPlainText("")
            return
        ok_btn.setEnabled(True)
        import codecs

        text = codecs.getincrementaldecoder(enc)(errors="replace").decode(self.sample, final=False)
        self.preview.setPlainText(normalize_preview(text, PREVIEW_BYTES))
        bad = garbled_characters(text)
        set_role(self.note, "error" if bad > 0.01 * max(1, len(text)) else "hint")
        self.note.setText(f"{bad:,} character{'s' if bad != 1 else ''} could not be read with {enc}: "
                          "probably the wrong encoding." if bad else
                          "Every character reads. If the text looks right, this is the encoding.")
