"""Model: presets and every setting, validated as you type, with parameter count, memory and
FLOPs estimates and the device that will train."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core.config import PRESET_NOTES, PRESETS, ConfigError, human_bytes, human_count
from desktop_llm.gui import device_choice
from desktop_llm.gui.widgets import header, label


def share(x: float) -> str:
    """A part of a whole as a rounded percentage, "<1%" for a small part that is not nothing."""
    return "<1%" if 0 < x < 0.005 else f"{x:.0%}"


class ModelPage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._loading = True  # no estimates while the form is being built
        self.speed = None  # measured training FLOP/s of this machine, once a run has trained
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(f"{name} — {PRESET_NOTES[name]}", name)
        self.preset.addItem("custom", "custom")
        self.preset.currentIndexChanged.connect(self._on_preset)

        def spin(lo, hi, tip, step=1):
            s = QSpinBox()
            s.setRange(lo, hi)
            s.setSingleStep(step)
            s.setToolTip(tip)
            s.valueChanged.connect(self._on_edit)
            return s

        self.layers = spin(1, 96, "Transformer blocks")
        self.heads = spin(1, 64, "Attention heads per block (must divide the width)")
        self.width = spin(8, 8192, "Model width (embedding size)", 16)
        self.ffn = spin(8, 32768, "Feed-forward width (usually 4 x width)", 64)
        self.context = spin(2, 8192, "Context length: tokens the model sees at once", 32)
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.valueChanged.connect(self._on_edit)
        self.tied = QCheckBox("Tie input and output embeddings")
        self.tied.setChecked(True)
        self.tied.toggled.connect(self._on_edit)
        self.batch = spin(1, 4096, "Batch size used for the memory estimate (set on the Train page)")
        self.batch.setValue(12)

        box = QGroupBox("Architecture (GPT: decoder-only Transformer, pre-LayerNorm, learned positions)")
        form = QFormLayout(box)
        form.addRow("Preset", self.preset)
        form.addRow("Layers", self.layers)
        form.addRow("Heads", self.heads)
        form.addRow("Width", self.width)
        form.addRow("Feed-forward width", self.ffn)
        form.addRow("Context length", self.context)
        form.addRow("Dropout", self.dropout)
        form.addRow("", self.tied)
        self.validation = label("", "error")

        est = QGroupBox("Estimates")
        ef = QFormLayout(est)
        self.figures = {k: label("–", "figure") for k in ("vocab", "params", "split", "flops", "weights", "memory",
                                                           "time", "device")}
        self.figures["split"].setWordWrap(True)
        self.figures["split"].setToolTip("Where the parameters are: the token and position embeddings, the "
                                         "attention layers, the feed-forward layers, and the rest (LayerNorms, "
                                         "heads)")
        ef.addRow("Vocabulary", self.figures["vocab"])
        ef.addRow("Parameters", self.figures["params"])
        ef.addRow("Of which", self.figures["split"])
        ef.addRow("FLOPs per token (training)", self.figures["flops"])
        ef.addRow("Weights", self.figures["weights"])
        ef.addRow("Batch size (for these estimates)", self.batch)
        ef.addRow("Training memory", self.figures["memory"])
        ef.addRow("Time per step", self.figures["time"])
        ef.addRow("Device", self.figures["device"])

        row = QHBoxLayout()
        row.addWidget(box, 3)
        row.addWidget(est, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(header("Model", "The shape of the network. Estimates update as you type."))
        lay.addLayout(row)
        lay.addWidget(self.validation)
        # one replica's training memory against the chosen device's (a warning: Start stays allowed)
        self.memory_warning = label("", "warning")
        self.memory_warning.hide()
        lay.addWidget(self.memory_warning)
        lay.addStretch(1)
        self._loading = False
        self._set_fields(PRESETS["small"])
        self.preset.setCurrentIndex(list(PRESETS).index("small"))
        session.tokenizer_changed.connect(self._on_edit)
        session.runs_changed.connect(self._measure_speed)
        self._measure_speed()
        session.device_known.connect(self.figures["device"].setText)
        session.devices_changed.connect(self._on_edit)
        session.train_changed.connect(self._follow_train_page)

    def _measure_speed(self) -> None:
        """This machine's training rate, from the runs it has trained (see store/speed.py)."""
        from desktop_llm.store.speed import machine_speed

        self.speed = machine_speed(self.session.store)
        self._on_edit()

    def _set_fields(self, m) -> None:
        self._loading = True
        self.layers.setValue(m.num_layers)
        self.heads.setValue(m.num_heads)
        self.width.setValue(m.hidden_dim)
        self.ffn.setValue(m.intermediate_dim)
        self.context.setValue(m.sequence_length)
        self.dropout.setValue(m.dropout)
        self.tied.setChecked(m.tie_embeddings)
        self._loading = False
        self._on_edit()

    def _follow_train_page(self) -> None:
        """The Train page's batch is the one the estimate is for; its devices decide the replicas."""
        batch = self.session.train_config.batch_size
        if self.batch.value() != batch:
            self.batch.setValue(batch)  # (re-estimates)
        else:
            self._on_edit()

    def _on_preset(self) -> None:
        name = self.preset.currentData()
        if name in PRESETS:
            self._set_fields(PRESETS[name])

    # ------------------------------------------------------------------ remembered settings
    def settings(self) -> dict:
        """The form as plain values (saved in gui.ini between launches)."""
        return {"preset": self.preset.currentData(), "layers": self.layers.value(), "heads": self.heads.value(),
                "width": self.width.value(), "ffn": self.ffn.value(), "context": self.context.value(),
                "dropout": self.dropout.value(), "tied": self.tied.isChecked(), "batch": self.batch.value()}

    def apply_settings(self, values: dict) -> None:
        """Put back what settings() returned; unknown or unusable values are skipped."""
        i = self.preset.findData(values.get("preset"))
        if i >= 0:
            self.preset.setCurrentIndex(i)  # a preset fills the form; the saved fields then override it
        self._loading = True
        try:
            for key in ("layers", "heads", "width", "ffn", "context", "batch"):
                try:
                    getattr(self, key).setValue(int(values[key]))
                except (KeyError, TypeError, ValueError):
                    continue
            try:
                self.dropout.setValue(float(values["dropout"]))
            except (KeyError, TypeError, ValueError):
                pass
            if isinstance(values.get("tied"), bool):
                self.tied.setChecked(values["tied"])
        finally:
            self._loading = False
        self._on_edit()

    def config(self):
        vocab = self.session.tokenizer.vocabulary_size if self.session.tokenizer else 0
        return replace(self.session.model_config, vocabulary_size=vocab, num_layers=self.layers.value(),
                       num_heads=self.heads.value(), hidden_dim=self.width.value(),
                       intermediate_dim=self.ffn.value(), sequence_length=self.context.value(),
                       dropout=round(self.dropout.value(), 3), tie_embeddings=self.tied.isChecked())

    def _family(self):
        from desktop_llm.core.models import get_family

        return get_family(self.session.family)

    def _check_memory(self, m) -> None:
        spec, devices, batch = self.session.train_config.devices, self.session.devices, self.batch.value()
        try:
            n = device_choice.replicas(spec, devices) if devices is not None or spec != "auto" else 1
        except ConfigError:
            n = 1
        if n > 1:
            half = device_choice.half_precision(spec, devices)
            each = device_choice.memory_per_replica(replace(m, vocabulary_size=max(1, m.vocabulary_size)), batch, n,
                                                    half, self._family())
            self.figures["memory"].setText(f"{self.figures['memory'].text()} · ~{human_bytes(each)} per replica "
                                           f"on {n} replicas")
        text = device_choice.memory_warning(m, batch, spec, devices, self._family())
        self.memory_warning.setText(text)
        self.memory_warning.setVisible(bool(text))

    def _on_edit(self, *_):
        if self._loading:
            return
        m = self.config()
        name = self.preset.currentData()
        if name in PRESETS and replace(PRESETS[name], vocabulary_size=m.vocabulary_size) != m:
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(self.preset.count() - 1)
            self.preset.blockSignals(False)
        try:
            m.validate()
        except ConfigError as e:
            self.validation.setText(str(e))
            self.memory_warning.hide()
            return
        self.validation.setText("")
        from desktop_llm.core.models import get_family

        family = get_family(self.session.family)  # the Train page's choice: its model's own figures
        e = family.estimate(replace(m, vocabulary_size=max(1, m.vocabulary_size)), self.batch.value())
        F = self.figures
        F["vocab"].setText(f"{m.vocabulary_size:,}" if m.vocabulary_size else "train a tokenizer first")
        F["params"].setText(f"{human_count(e.parameters)} ({e.parameters:,})")
        F["split"].setText(" · ".join(f"{part} {share(n / max(1, e.parameters))}" for part, n in e.split.items() if n))
        F["flops"].setText(f"{human_count(e.flops_per_token)}")
        F["weights"].setText(human_bytes(e.weights_bytes))
        F["memory"].setText("~" + human_bytes(e.training_bytes))
        self._check_memory(m)
        if self.speed is not None:
            ms = self.speed.ms_per_step(m, self.batch.value(), self._family())
            F["time"].setText(f"~{ms:,.0f} ms ({self.speed.flops_per_second / 1e9:,.1f} GFLOP/s measured here)")
            F["time"].setToolTip(f"From the training speed of your last {self.speed.runs} run(s) on this machine")
        else:
            F["time"].setText("measured after your first run")
        self.session.set_model_config(m)
