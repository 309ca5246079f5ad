"""The Train page's classifier settings: the pretrained run to fine-tune (or none), the label
column of CSV / JSONL data and the column whose documents validation keeps whole, how the text
becomes one vector, and how many steps the encoder stays frozen."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox

from desktop_llm.gui.families.start_from import base_runs

BASES = ("masked_lm", "gpt")  # the families a classifier fine-tunes


class ClassifierOptions(QGroupBox):
    changed = Signal()  # the base run changed: the Train page adapts the learning rate

    def __init__(self, session, parent=None):
        super().__init__("Classifier", parent)
        self.session = session
        self.setToolTip("Labelled data goes on the Data page: a CSV / JSONL with a label column, a folder "
                        "with one subfolder per class, or one text file per class")
        self.base = QComboBox()
        self.base.setToolTip("A masked-LM or GPT run whose encoder the classifier starts from (its shape and "
                             "tokenizer too); or nothing: an encoder trained from scratch on the labelled text")
        self.label_column = QLineEdit()
        self.label_column.setPlaceholderText("auto: label, class, category…")
        self.label_column.setToolTip("The column of CSV / JSONL files that holds each text's class")
        self.group_column = QLineEdit()
        self.group_column.setPlaceholderText("none: validate on texts drawn one by one")
        self.group_column.setToolTip("A column of CSV / JSONL files naming each text's document (article, book, "
                                     "speaker). Validation then holds out whole documents, so its figures, and "
                                     "the best checkpoint, are for texts from documents the model never trained on")
        self.pooling = QComboBox()
        self.pooling.addItem("mean of the tokens", "mean")
        self.pooling.addItem("[CLS] token (keras-hub's BertTextClassifier)", "cls")
        self.pooling.setToolTip("How the encoder's token states become the one vector the head reads. The mean "
                                "learns more from little data; [CLS] exports as keras-hub's own classifier task. "
                                "A classifier on a GPT reads its last token either way")
        self.freeze = QSpinBox()
        self.freeze.setRange(0, 1_000_000)
        self.freeze.setSingleStep(10)
        self.freeze.setSuffix(" steps")
        self.freeze.setSpecialValueText("no")
        self.freeze.setToolTip("Train only the new classification head for this many steps first, so a "
                               "random head does not disturb the pretrained encoder")
        form = QFormLayout(self)
        form.addRow("Start from", self.base)
        form.addRow("Label column", self.label_column)
        form.addRow("Keep together", self.group_column)
        form.addRow("Pooling", self.pooling)
        form.addRow("Freeze the encoder", self.freeze)
        self.fill()
        session.runs_changed.connect(self.fill)
        for field in (self.label_column, self.group_column):  # the Data page reads the files with them
            field.editingFinished.connect(self.share_columns)
        self.base.currentIndexChanged.connect(lambda *_: self.changed.emit())

    def fill(self) -> None:
        """Runs that can be a base: masked-LM and GPT runs with a checkpoint, newest first."""
        chosen = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        self.base.addItem("nothing: train an encoder from scratch", "")
        for name, family, run in base_runs(self.session.store, BASES):
            kind = "masked LM" if family == "masked_lm" else "GPT"
            self.base.addItem(f"{name} ({kind}, {run.id})", str(run.folder))
        self.base.setCurrentIndex(max(0, self.base.findData(chosen)))
        self.base.blockSignals(False)

    def share_columns(self) -> None:
        self.session.set_columns(self.label_column.text().strip() or None, self.group_column.text().strip() or None)

    def base_folder(self) -> str:
        return self.base.currentData() or ""

    def fine_tunes(self) -> bool:
        return bool(self.base_folder())

    def settings(self) -> dict:
        """Remembered between launches with the Train page's (a restart kept the fine-tune's gentle
        learning rate but forgot the base it was for)."""
        return {"base": self.base_folder(), "label_column": self.label_column.text(),
                "group_column": self.group_column.text(),
                "freeze": self.freeze.value(), "pooling": self.pooling.currentData()}

    def apply_settings(self, values: dict) -> None:
        """A base run that is gone (deleted, another workspace) is skipped: "nothing" stays."""
        i = self.base.findData(values.get("base")) if values.get("base") else -1
        if i >= 0:
            self.base.setCurrentIndex(i)
        if isinstance(values.get("label_column"), str):
            self.label_column.setText(values["label_column"])
        if isinstance(values.get("group_column"), str):
            self.group_column.setText(values["group_column"])
        self.share_columns()
        if isinstance(values.get("freeze"), int):
            self.freeze.setValue(values["freeze"])
        i = self.pooling.findData(values.get("pooling"))
        if i >= 0:
            self.pooling.setCurrentIndex(i)

    def apply(self, cfg):
        """The run config with these settings: the label and group columns, pooling, frozen steps, the
        base run."""
        from desktop_llm.core.models.classifier import on_base

        data = replace(cfg.data, label_column=self.label_column.text().strip() or None,
                       group_column=self.group_column.text().strip() or None)
        cfg = replace(cfg, pooling=self.pooling.currentData(), data=data,
                      training=replace(cfg.training, freeze_steps=self.freeze.value()))
        return on_base(cfg, self.base_folder(), gentler=False) if self.base_folder() else cfg
