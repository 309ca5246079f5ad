"""The Train page's "Start from" for the families that continue a run (a GPT or a masked LM on new
text, a chat model on conversations): from scratch, a trained run of a family they accept, or (a
GPT, a chat model) a keras-hub GPT-2 preset folder chosen on disk. One line, no frame: the Train
page must still fit a 1280x800 screen."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QSpinBox, QWidget

PICK = "\0pick"  # the item that opens a folder chooser


def base_runs(store, families: tuple[str, ...]):
    """(name, family, run) of the runs of `families` with a checkpoint, newest first: what a run can
    start from (a damaged run folder is simply not offered)."""
    for row in store.list():
        run = store.get(row["id"])
        try:
            family = run.config.family
        except Exception:  # noqa: BLE001, S112 - a damaged run folder is simply not offered
            continue
        if family in families and (run.checkpoints_dir / "index.json").exists():
            yield row.get("name") or run.id, family, run


class StartFromOptions(QWidget):
    changed = Signal()  # the base run changed: the Train page adapts the learning rate
    refused = Signal(str)  # a chosen folder that is no preset: the page's status line says why

    FAMILY = ""  # the family these options are for
    BASES: tuple[str, ...] = ()  # the families of runs it starts from
    SCRATCH = "scratch: a new model"
    TIP = ""
    PRESETS = False  # offers a keras-hub preset folder too

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.base = QComboBox()
        self.base.setToolTip(self.TIP)
        self.lora = QSpinBox()  # beside the base: it only means something with one
        self.lora.setRange(0, 256)
        self.lora.setSpecialValueText("LoRA off")
        self.lora.setPrefix("LoRA rank ")
        self.lora.setToolTip("Train only rank-N LoRA factors of each attention's query and value (keras-hub's "
                             "enable_lora): far fewer trained parameters, the base's weights kept. 4-16 is usual; "
                             "off trains every weight")
        self.lora.setEnabled(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.base, 1)
        row.addWidget(self.lora)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Start from", row)
        self.fill()
        session.runs_changed.connect(self.fill)
        self.base.currentIndexChanged.connect(self._chosen)
        self.preset = ""  # the preset folder chosen, kept in the list

    def fill(self) -> None:
        """Runs that can be a base, with a checkpoint, newest first."""
        chosen = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        self.base.addItem(self.SCRATCH, "")
        for name, family, run in base_runs(self.session.store, self.BASES):
            self.base.addItem(f"{name} ({family.replace('_', ' ')}, {run.id})", str(run.folder))
        if self.PRESETS:
            if getattr(self, "preset", ""):
                self.base.addItem(f"preset: {self.preset}", self.preset)
            self.base.addItem("a keras-hub preset folder…", PICK)
            self.base.setItemData(self.base.count() - 1, "A GPT-2 causal LM preset: desktop_llm's own keras-hub "
                                  "export, or one downloaded elsewhere", Qt.ToolTipRole)
        self.base.setCurrentIndex(max(0, self.base.findData(chosen)))
        self.base.blockSignals(False)

    def _chosen(self, *_) -> None:
        if self.base.currentData() == PICK:
            folder = QFileDialog.getExistingDirectory(self, "A keras-hub preset folder (config.json, "
                                                      "model.weights.h5, tokenizer.json)")
            self.choose_preset(folder)
            return
        self.lora.setEnabled(self.fine_tunes())
        self.changed.emit()

    def choose_preset(self, folder: str) -> bool:
        """Start from the preset in `folder` (chosen in the dialog); refused in the page's status line
        where it is not a keras-hub preset (nothing chosen: back to scratch)."""
        from desktop_llm.core.tokenizers import is_keras_hub_preset

        self.base.blockSignals(True)
        ok = bool(folder) and is_keras_hub_preset(folder)
        if ok:
            self.preset = folder
            self.fill()
            self.base.setCurrentIndex(self.base.findData(folder))
        else:
            self.base.setCurrentIndex(0)
        self.base.blockSignals(False)
        self.lora.setEnabled(self.fine_tunes())
        if folder and not ok:
            self.refused.emit(f"{folder} is not a keras-hub preset folder (no metadata.json and config.json).")
        self.changed.emit()
        return ok

    def base_folder(self) -> str:
        data = self.base.currentData() or ""
        return "" if data == PICK else data

    def fine_tunes(self) -> bool:
        return bool(self.base_folder())

    def settings(self) -> dict:
        return {"base": self.base_folder(), "lora_rank": self.lora.value()}

    def apply_settings(self, values: dict) -> None:
        """A base run that is gone (deleted, another workspace) is skipped: scratch stays."""
        i = self.base.findData(values.get("base")) if values.get("base") else -1
        if i >= 0:
            self.base.setCurrentIndex(i)
        if isinstance(values.get("lora_rank"), int):
            self.lora.setValue(values["lora_rank"])

    def apply(self, cfg):
        """The run config started from the chosen run (its tokenizer and shape), else as it is;
        the learning rate is the page's (it already adapted to the choice)."""
        from desktop_llm.core.models import get_family

        if not self.base_folder():
            return cfg
        from dataclasses import replace

        cfg = replace(cfg, training=replace(cfg.training, lora_rank=self.lora.value()))
        return get_family(self.FAMILY).on_base(cfg, self.base_folder(), gentler=False)
