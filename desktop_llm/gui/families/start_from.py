"""The Train page's "Start from" for the families that continue a decoder run (a GPT on new text,
a chat model on conversations): from scratch, or a trained run of a family they accept. One line,
no frame: the Train page must still fit a 1280x800 screen."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QWidget


class StartFromOptions(QWidget):
    changed = Signal()  # the base run changed: the Train page adapts the learning rate

    FAMILY = ""  # the family these options are for
    BASES: tuple[str, ...] = ()  # the families of runs it starts from
    SCRATCH = "scratch: a new model"
    TIP = ""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.base = QComboBox()
        self.base.setToolTip(self.TIP)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Start from", self.base)
        self.fill()
        session.runs_changed.connect(self.fill)
        self.base.currentIndexChanged.connect(lambda *_: self.changed.emit())

    def fill(self) -> None:
        """Runs that can be a base, with a checkpoint, newest first."""
        chosen = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        self.base.addItem(self.SCRATCH, "")
        store = self.session.store
        for row in store.list():
            run = store.get(row["id"])
            try:
                family = run.config.family
            except Exception:  # noqa: BLE001, S112 - a damaged run folder is simply not offered
                continue
            if family in self.BASES and (run.checkpoints_dir / "index.json").exists():
                self.base.addItem(f"{row.get('name') or run.id} ({family.replace('_', ' ')}, {run.id})", str(run.folder))
        self.base.setCurrentIndex(max(0, self.base.findData(chosen)))
        self.base.blockSignals(False)

    def base_folder(self) -> str:
        return self.base.currentData() or ""

    def fine_tunes(self) -> bool:
        return bool(self.base_folder())

    def settings(self) -> dict:
        return {"base": self.base_folder()}

    def apply_settings(self, values: dict) -> None:
        """A base run that is gone (deleted, another workspace) is skipped: scratch stays."""
        i = self.base.findData(values.get("base")) if values.get("base") else -1
        if i >= 0:
            self.base.setCurrentIndex(i)

    def apply(self, cfg):
        """The run config started from the chosen run (its tokenizer and shape), else as it is;
        the learning rate is the page's (it already adapted to the choice)."""
        from desktop_llm.core.models import get_family

        if not self.base_folder():
            return cfg
        return get_family(self.FAMILY).on_base(cfg, self.base_folder(), gentler=False)
