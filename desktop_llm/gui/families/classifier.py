"""The classifier on the Generate page: Classify, and Similar sentences (its encoder's embeddings).

Classify: A box to classify a text (each class
with its probability), or each of its lines (a class per line, as `classify --file` does), and
the validation report: accuracy, macro-F1, a confusion-matrix heatmap,
per-class precision / recall / F1, and the texts the model got wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.gui.families.classifier_options import ClassifierOptions
from desktop_llm.gui.families.panel import FamilyPanel
from desktop_llm.gui.families.similar import SimilarPanel
from desktop_llm.gui.plots import MatrixPlot
from desktop_llm.gui.widgets import label


def _table(headers: list[str], stretch: int) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.horizontalHeader().setSectionResizeMode(stretch, QHeaderView.Stretch)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QTableWidget.NoEditTriggers)
    return t


def _cell(text: str, right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if right:
        item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
    return item


class ConfusionMap(MatrixPlot):
    """Counts of (true class, predicted class); the diagonal is what the model got right."""

    def __init__(self, parent=None):
        super().__init__(title="Confusion matrix", parent=parent)
        self.setLabel("left", "true class")
        self.setLabel("bottom", "predicted class")
        self.counts: list[pg.TextItem] = []
        self.setMinimumSize(260, 240)

    def show_matrix(self, confusion, classes: list[str]) -> None:
        m = np.asarray(confusion, float)
        rows = m / np.maximum(1, m.sum(1, keepdims=True))  # colour: the share of each true class
        self.image.setImage(rows, levels=(0, 1))
        for t in self.counts:
            self.removeItem(t)
        self.counts = []
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                t = pg.TextItem(f"{int(m[i, j])}", anchor=(0.5, 0.5),
                                color=(20, 20, 20) if rows[i, j] > 0.6 else (235, 235, 235))
                t.setPos(j + 0.5, i + 0.5)
                self.addItem(t)
                self.counts.append(t)
        ticks = [[(k + 0.5, c[:14]) for k, c in enumerate(classes)]]
        self.getAxis("left").setTicks(ticks)
        self.getAxis("bottom").setTicks(ticks)
        self.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0.02)


class ClassifyPanel(FamilyPanel):
    TITLE = "Classify"
    DESCRIPTION = "A classifier run gives each class a probability; its validation report shows where it goes wrong."
    RUNS = "a classifier run"

    def __init__(self, session, run_id_fn, parent=None):
        super().__init__(session, run_id_fn, "A classifier run gives each class a probability.", parent)
        self.result: dict | None = None
        self.report: dict | None = None
        self.text = QPlainTextEdit("床前明月光，疑是地上霜。\n举头望明月，低头思故乡。")
        self.text.setPlaceholderText("A text to classify")
        self.text.setMaximumHeight(90)
        self.classify_btn = QPushButton("Classify")
        self.classify_btn.setProperty("role", "primary")
        self.classify_btn.setShortcut("Ctrl+Return")
        self.classify_btn.setToolTip("Classify the text (Ctrl+Enter)")
        self.classify_btn.clicked.connect(self.classify)
        self.per_line = QCheckBox("Each line is a text")
        self.per_line.setToolTip("Classify every line on its own (as `desktop-llm classify --file` does a "
                                 "file), not the whole box as one text")
        self.results: list[dict] = []
        self.probs = _table(["Class", "Probability", ""], 2)
        self.probs.setMaximumHeight(170)

        self.report_btn = QPushButton("Evaluate on the validation split")
        self.report_btn.setToolTip("Accuracy, macro-F1, the confusion matrix and the misclassified texts")
        self.report_btn.clicked.connect(self.evaluate)
        self.file_btn = QPushButton("Evaluate on a file…")
        self.file_btn.setToolTip("A labelled file or folder the run never saw (a test set, in the layout it "
                                 "trained on): the same report, beside naive Bayes and the majority class "
                                 "fitted on the run's training split. The validation split chose the best "
                                 "checkpoint, so its figures flatter the model; a test set does not.")
        self.file_btn.clicked.connect(lambda: self.evaluate_file())
        self.figures = label("", "figure")
        self.confusion = ConfusionMap()
        self.per_class = _table(["Class", "Precision", "Recall", "F1", "Texts"], 0)
        self.wrong = _table(["True", "Predicted", "p", "Text"], 3)
        tables = QTabWidget()
        tables.addTab(self.per_class, "Per class")
        tables.addTab(self.wrong, "Misclassified")
        self.tables = tables

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.classify_btn)
        buttons.addWidget(self.per_line)
        buttons.addStretch(1)
        row.addLayout(buttons)
        tl.addLayout(row)
        tl.addWidget(self.status)
        tl.addWidget(self.probs)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.report_btn)
        head.addWidget(self.file_btn)
        head.addStretch(1)
        bl.addLayout(head)
        bl.addWidget(self.figures)  # a row of its own: two lines of figures, never clipped beside the buttons
        body = QSplitter(Qt.Horizontal)
        body.addWidget(self.confusion)
        body.addWidget(tables)
        body.setSizes([340, 520])
        bl.addWidget(body, 1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([230, 420])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

    # ------------------------------------------------------------------ work on a thread
    def _run(self, function: str, on_done, button, **kwargs) -> None:
        """`function` of core/models/classifier/tab_work.py on the chosen run, in the model worker."""
        if not self.chosen():
            return
        button.setEnabled(False)
        self.run_with_model(f"desktop_llm.core.models.classifier.tab_work:{function}", "Classifying…",
                            lambda r: self._done(on_done, r, button), lambda msg: self._on_error(msg, button), **kwargs)

    def _done(self, on_done, result, button) -> None:
        button.setEnabled(True)
        self.say(self.status.text())
        on_done(result)

    def _on_error(self, msg: str, button) -> None:
        button.setEnabled(True)
        self.say(msg, "error")

    # ------------------------------------------------------------------ classify
    def primary(self) -> None:
        self.classify()

    def secondary(self) -> None:
        self.evaluate()

    def example_box(self):
        return self.text

    def texts(self) -> list[str]:
        """What Classify reads: the box as one text, or each non-blank line."""
        text = self.text.toPlainText()
        if self.per_line.isChecked():
            return [line.strip() for line in text.splitlines() if line.strip()]
        return [text] if text.strip() else []

    def classify(self) -> None:
        texts = self.texts()
        if not texts:
            self.say("Type a text to classify.", "error")
            return

        self._run("classify_texts", self._show_results, self.classify_btn, texts=texts)

    def _show_results(self, results: list[dict]) -> None:
        self.results = results
        if len(results) == 1 and not self.per_line.isChecked():
            self._show_result(results[0])
            return
        self.result = None
        self.probs.clear()
        self.probs.setColumnCount(3)
        self.probs.setHorizontalHeaderLabels(["Class", "Probability", "Text"])
        self.probs.setRowCount(len(results))
        for i, r in enumerate(results):
            self.probs.setItem(i, 0, _cell(r["label"]))
            self.probs.setItem(i, 1, _cell(f"{r['p']:.1%}", right=True))
            self.probs.setItem(i, 2, _cell(r["text"]))
        cut = sum(bool(r["cut"]) for r in results)
        self.status.setText(f"{len(results):,} lines classified" + (
            f"; {cut:,} longer than the model's context: their ends were not read." if cut else "."))

    def _show_result(self, r: dict) -> None:
        self.result = r
        items = list(r["probabilities"].items())
        self.probs.clear()
        self.probs.setHorizontalHeaderLabels(["Class", "Probability", ""])
        self.probs.setRowCount(len(items))
        for i, (c, p) in enumerate(items):
            self.probs.setItem(i, 0, _cell(c))
            self.probs.setItem(i, 1, _cell(f"{p:.1%}", right=True))
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(1000 * p))
            bar.setTextVisible(False)
            bar.setMaximumHeight(14)
            self.probs.setCellWidget(i, 2, bar)
        cut = "  The text was longer than the model's context: its end was not read." if r["cut"] else ""
        self.status.setText(f"{r['label']} ({r['p']:.0%}).{cut}")

    # ------------------------------------------------------------------ report
    def evaluate(self) -> None:
        self._run("validation_report", self._show_report, self.report_btn)

    def evaluate_file(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Labelled texts to evaluate on", "",
                                                  "Labelled texts (*.csv *.tsv *.jsonl *.txt);;All files (*)")
        if path:
            self._run("file_report", self._show_report, self.file_btn, path=path)

    def _show_report(self, rep: dict) -> None:
        self.report = rep
        n = sum(pc["support"] for pc in rep["per_class"])
        where = f"texts of {Path(rep['path']).name}" if "path" in rep else "validation texts"
        nb, majority = rep["baselines"]["naive Bayes"], rep["baselines"]["majority class"]
        self.figures.setText(f"accuracy {rep['accuracy']:.1%}   ·   macro-F1 {rep['macro_f1']:.3f}   ·   "
                             f"{n:,} {where}\nnaive Bayes: macro-F1 {nb['macro_f1']:.3f}   ·   majority class: "
                             f"accuracy {majority['accuracy']:.1%}")
        self.figures.setToolTip(f"The model {rep['verdict']}.")
        self.confusion.show_matrix(rep["confusion"], rep["classes"])
        self.per_class.setRowCount(len(rep["classes"]))
        for i, (c, pc) in enumerate(zip(rep["classes"], rep["per_class"])):
            for col, v in enumerate((c, f"{pc['precision']:.1%}", f"{pc['recall']:.1%}", f"{pc['f1']:.3f}",
                                     f"{pc['support']:,}")):
                self.per_class.setItem(i, col, _cell(v, right=col > 0))
        wrong = rep["misclassified"]
        self.wrong.setRowCount(len(wrong))
        for i, m in enumerate(wrong):
            text = m["text"].replace("\n", " ⏎ ")
            for col, v in enumerate((m["true"], m["predicted"], f"{m['p']:.0%}", text)):
                item = _cell(v, right=col == 2)
                if col == 3:
                    item.setToolTip(m["text"][:2000])
                self.wrong.setItem(i, col, item)
        self.tables.setTabText(1, f"Misclassified ({len(wrong)})")
        where = "these texts" if "path" in rep else "the validation split"
        if rep["beats"]:  # beats or ties: the verdict's first words say which
            self.say(f"On {where} the model {rep['verdict'].split(':')[0]}. {rep.get('left_out', '')}".strip())
        else:
            self.say(f"The model does not beat its baselines on {where} (the figures "
                     f"below). {rep.get('left_out', '')}".strip(), "warning")
        if "path" not in rep:
            self.figures.setToolTip(f"The model {rep['verdict']}. The validation split: texts held out from "
                                    "training, the same share of every class; it also chose the best checkpoint, "
                                    "so a test file the run never saw (Evaluate on a file…) judges more fairly.")


CHOICE = "Classifier: label each text (fine-tune an encoder)"  # the Train page's family menu
TrainOptions = ClassifierOptions
TABS = (ClassifyPanel, SimilarPanel)
HEADER = ("Classify", "A classifier run gives each class a probability; its validation report shows where it goes wrong.")
ATTENTION_NOTE = 'An encoder reads both ways; [CLS] (row 0) is the token the classifier reads.'  # the Attention page, for its runs
EVALUATE_ELSEWHERE = 'the Classify tab on the Generate page has the full report (confusion matrix, per-class precision and recall, misclassified texts)'  # the Evaluate page: where this family's own evaluation is
