"""Train: hyperparameters with sensible defaults; Start, Pause, Resume, Stop; live curves,
progress with ETA, and text sampled at each evaluation. Training runs in a child process."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core import events as ev
from desktop_llm.core.config import ConfigError, DataConfig, RunConfig, TokenizerConfig, TrainConfig, run_name
from desktop_llm.core.corpus import CorpusError
from desktop_llm.gui import device_choice
from desktop_llm.gui.plots import MetricsPlots
from desktop_llm.gui.training_process import TrainingProcess
from desktop_llm.gui.widgets import header, label, set_role
from desktop_llm.store.card import short_duration

STALE_TOKENIZER = ("The tokenizer was trained on a different corpus: retrain it on the Tokenizer page "
                   "so that it covers this one.")
# the hyperparameter fields remembered in the workspace's gui.ini (MainWindow.save_state)
SETTINGS = ("steps", "batch", "lr", "min_lr", "warmup", "wd", "clip", "eval_every", "seed", "model_parallel")


class TrainPage(QWidget):
    run_started = Signal(str)
    run_ended = Signal(str, str)  # run id, final status

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.proc: TrainingProcess | None = None
        self.run_id: str | None = None
        self.max_steps = 1
        self.last_step = 0
        d = TrainConfig()

        def spin(lo, hi, value, tip, step=1):
            s = QSpinBox()
            s.setRange(lo, hi)
            s.setValue(value)
            s.setSingleStep(step)
            s.setToolTip(tip)
            return s

        def dspin(lo, hi, value, tip, decimals=5, step=0.0001):
            s = QDoubleSpinBox()
            s.setDecimals(decimals)
            s.setRange(lo, hi)
            s.setSingleStep(step)
            s.setValue(value)
            s.setToolTip(tip)
            return s

        self.name = QLineEdit()
        self.name.setPlaceholderText("run name (optional)")
        self.precision = QComboBox()  # TrainConfig.mixed_precision
        for text, value in (("Auto: bfloat16 on GPUs that have it, else float32", "auto"),
                            ("float32", "off"), ("mixed bfloat16", "bfloat16"),
                            ("mixed float16 (loss scaling)", "float16")):
            self.precision.addItem(text, value)
        self.precision.setToolTip("Arithmetic of the forward and backward passes; weights, softmax, losses "
                                  "and the optimizer stay float32. On CPUs without bfloat16 instructions "
                                  "float32 is fastest; on CPUs with them, Auto times XLA in float32 against "
                                  "bfloat16 without XLA on the model once, and keeps the faster.")
        self.backend = backend_picker()
        self.backend.currentIndexChanged.connect(
            lambda _i: setattr(session, "backend", self.backend.currentData() or "auto"))  # the window's model work too
        self.family = QComboBox()  # what the model learns (see core/models/)
        from desktop_llm.core.models import families
        from desktop_llm.gui.families import family_ui

        for fam in families():
            self.family.addItem(family_ui(fam.name).CHOICE, fam.name)
        self.family.setToolTip("GPT writes text (Generate page); a masked LM fills in [MASK]s from both "
                               "sides and is the encoder that classifiers and embeddings start from; a "
                               "classifier learns the labels of labelled data (Data page)")
        # A family's own settings (gui/families/<family>.py: TrainOptions), shown while it is chosen.
        self.options: dict[str, QWidget] = {}
        for fam in families():
            options_class = getattr(family_ui(fam.name), "TrainOptions", None)
            if options_class is not None:
                self.options[fam.name] = options_class(session)
                self.options[fam.name].changed.connect(self._on_base)
                if hasattr(self.options[fam.name], "refused"):  # a chosen folder that cannot be a base
                    self.options[fam.name].refused.connect(lambda text: self._message(text, error=True))
        self.steps = spin(1, 10_000_000, d.max_steps, "Optimizer steps in all", 100)
        self.batch = spin(1, 4096, d.batch_size, "Sequences per step")
        self.lr = dspin(1e-6, 1.0, d.learning_rate, "Peak learning rate (after warm-up)")
        self.min_lr = dspin(0.0, 1.0, d.min_learning_rate, "Learning rate at the end of the cosine decay")
        self.warmup = spin(0, 1_000_000, d.warmup_steps, "Linear warm-up steps", 10)
        self.wd = dspin(0.0, 10.0, d.weight_decay, "AdamW weight decay", 3, 0.01)
        self.clip = dspin(0.0, 100.0, d.grad_clip, "Global gradient-norm clipping (0: off)", 2, 0.1)
        self.eval_every = spin(1, 1_000_000, d.eval_interval, "Validate, sample and checkpoint every N steps", 50)
        self.seed = spin(0, 2**31 - 1, d.seed, "Random seed: same seed, same run")
        self.devices = QComboBox()
        self.devices.setToolTip("Where the run trains: each device holds a replica of the model and "
                                "trains on its share of the batch")
        self._wanted_devices = d.devices  # a remembered choice whose GPU the probe has not listed yet
        self.model_parallel = spin(1, 64, d.model_parallel, "", 1)
        self.model_parallel.setSpecialValueText("off: each device holds the whole model")
        self.model_parallel.setSuffix(" devices share each weight")
        self.model_parallel.setToolTip("Shard every weight over this many of the chosen devices (Megatron's split of "
                                       "attention and feed-forward), for a model too big for one device; the rest "
                                       "split the batch. On the JAX backend (keras.distribution.ModelParallel).")
        self.model_parallel.valueChanged.connect(self._on_choice)
        self.split = label("", "hint")  # "2 replicas × 6 = 12"
        self.split.setToolTip("The batch size is the global batch: it is split evenly over the replicas")
        batch_row = QWidget()
        br = QHBoxLayout(batch_row)
        br.setContentsMargins(0, 0, 0, 0)
        br.addWidget(self.batch)
        br.addWidget(self.split, 1)
        self.memory_note = label("", "warning")  # the Model page's memory warning, shown here too
        self.memory_note.hide()
        form_box = QGroupBox("Hyperparameters")
        form_box.setToolTip("AdamW with decoupled weight decay; the learning rate warms up linearly, "
                            "then follows a cosine down to the final rate")
        form = self._form = QFormLayout(form_box)
        for name, w in [("Name", self.name), ("Model family", self.family),
                        ("Steps", self.steps), ("Devices", self.devices), ("Backend", self.backend),
                        ("Model split", self.model_parallel),
                        ("Precision", self.precision), ("Batch size", batch_row),
                        ("Learning rate", self.lr), ("Final learning rate", self.min_lr),
                        ("Warm-up steps", self.warmup), ("Weight decay", self.wd),
                        ("Gradient clipping", self.clip), ("Evaluate every", self.eval_every), ("Seed", self.seed)]:
            form.addRow(name, w)

        self.start_btn = QPushButton("Start")
        self.start_btn.setProperty("role", "primary")
        self.start_btn.setShortcut("Ctrl+Return")
        self.start_btn.setToolTip("Start training (Ctrl+Enter)")
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setShortcut("Ctrl+P")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Save a checkpoint and stop; the run can be resumed")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.stop_btn.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            buttons.addWidget(b)
        self.cluster_btn = QPushButton("Run on a cluster…")
        self.cluster_btn.setToolTip("Train this run on several machines: writes its configuration and "
                                    "shows the command for each machine")
        self.cluster_btn.clicked.connect(self.open_cluster_dialog)
        buttons.addStretch(1)
        buttons.addWidget(self.cluster_btn)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = label("Ready.", "hint")
        self.figures = label("", "figure")
        self.sample = QPlainTextEdit()
        self.sample.setReadOnly(True)
        self.sample.setPlaceholderText("Text generated by the model at each evaluation appears here.")

        column = QWidget()
        ll = QVBoxLayout(column)
        ll.setContentsMargins(0, 0, 6, 0)
        ll.addWidget(form_box)
        for options in self.options.values():
            ll.addWidget(options)
        ll.addWidget(self.memory_note)
        ll.addLayout(buttons)
        ll.addWidget(self.progress)
        ll.addWidget(self.figures)
        ll.addWidget(self.status)
        ll.addWidget(label("Samples: the newest first; scroll down for earlier evaluations", "hint"))
        ll.addWidget(self.sample, 1)
        self.sample.setMinimumHeight(4 * self.sample.fontMetrics().lineSpacing())
        # The settings scroll where a screen is too short for them (a classifier's options, 1366x768),
        # rather than pushing the window, its plots and status bar past the screen's bottom edge.
        left = QScrollArea()
        left.setWidget(column)
        left.setWidgetResizable(True)
        left.setFrameShape(QScrollArea.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        left.setMinimumWidth(column.minimumSizeHint().width() + left.verticalScrollBar().sizeHint().width())
        self.plots = MetricsPlots(empty_text="The run's loss, validation figures, learning rate and speed "
                                             "are drawn here as it trains.")
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.plots)
        split.setSizes([360, 760])
        lay = QVBoxLayout(self)
        lay.addWidget(header("Train", "Training runs in its own process: the window stays responsive, "
                                      "and Stop really stops."))
        lay.addWidget(split, 1)
        self._redraw = QTimer(self)
        self._redraw.setInterval(100)  # throttle plot updates to ~10 Hz
        self._redraw.timeout.connect(self._flush)
        self._pending = False
        self._warned = ""  # the last warning of the run, kept in view when it completes
        self._set_running(False)
        session.corpus_changed.connect(self._check_tokenizer)
        session.tokenizer_changed.connect(self._check_tokenizer)
        self._fill_devices()
        self.family.currentIndexChanged.connect(self._on_family)
        self._on_family()
        self.devices.currentIndexChanged.connect(self._on_choice)
        self.batch.valueChanged.connect(self._on_choice)
        self.precision.currentIndexChanged.connect(lambda *_: self._on_choice(remember=False))
        session.devices_changed.connect(self._fill_devices)
        session.model_changed.connect(self._show_memory_warning)

    # ------------------------------------------------------------------ remembered settings
    def settings(self) -> dict:
        """The hyperparameters as plain values (saved in gui.ini between launches)."""
        return {"name": self.name.text(), "devices": self.device_spec(), "family": self.family.currentData(),
                "precision": self.precision.currentData(),
                "options": {name: o.settings() for name, o in self.options.items()},
                **{k: getattr(self, k).value() for k in SETTINGS}}

    def apply_settings(self, values: dict) -> None:
        """Put back what settings() returned; unknown or unusable values are skipped."""
        if isinstance(values.get("name"), str):
            self.name.setText(values["name"])
        for combo, key in ((self.family, "family"), (self.precision, "precision")):
            i = combo.findData(values.get(key))
            if i >= 0:
                combo.setCurrentIndex(i)
        if isinstance(values.get("devices"), str):
            self._wanted_devices = values["devices"]
            self._fill_devices()
        options = values.get("options")
        for name, remembered in (options.items() if isinstance(options, dict) else ()):
            if name in self.options and isinstance(remembered, dict):
                self.options[name].apply_settings(remembered)
        for k in SETTINGS:  # after the options: a restored base must not re-adapt the learning rate
            w, v = getattr(self, k), values.get(k)
            try:
                w.setValue(float(v) if isinstance(w, QDoubleSpinBox) else int(v))
            except (TypeError, ValueError):
                continue

    def _check_tokenizer(self) -> None:
        """Warn here too when the corpus changed after the tokenizer was trained."""
        if self.training:
            return
        options = self.options.get(self.family.currentData()) if hasattr(self, "options") else None
        own = (options is not None and options.fine_tunes()) or self.chosen_family().tokenizer_in_run
        if self.session.tokenizer_stale and not own:  # a fine-tune reads with its base's tokenizer
            self._message(STALE_TOKENIZER, error=True)
        elif self.status.text() == STALE_TOKENIZER:
            self._message("Ready.")

    # ------------------------------------------------------------------ family
    def chosen_family(self):
        from desktop_llm.core.models import get_family

        return get_family(self.family.currentData())

    def _on_family(self, *_) -> None:
        """A family shows its own options and starts from its own defaults (a classifier: a few
        hundred steps)."""
        for name, options in self.options.items():
            options.setVisible(name == self.family.currentData())
        self.session.set_family(self.family.currentData())  # the Model page estimates its model
        own = self.chosen_family().default_training(TrainConfig())
        if own != TrainConfig() and self.steps.value() == TrainConfig().max_steps:
            self.steps.setValue(own.max_steps)
            self.eval_every.setValue(own.eval_interval)
            self.warmup.setValue(own.warmup_steps)
        self._on_base()

    def _on_base(self, *_) -> None:
        """A fine-tune's learning rate is gentler than training from scratch (and it reads with its
        base's tokenizer: the Tokenizer page's does not matter to it)."""
        self._check_tokenizer()
        gentle = self.chosen_family().fine_tune_learning_rate
        if gentle is None:
            return
        options = self.options.get(self.family.currentData())
        fine_tune = options is not None and options.fine_tunes()
        default = TrainConfig().learning_rate
        if fine_tune and self.lr.value() == default:
            self.lr.setValue(gentle)
            self.min_lr.setValue(gentle / 10)
        elif not fine_tune and self.lr.value() == gentle:
            self.lr.setValue(default)
            self.min_lr.setValue(TrainConfig().min_learning_rate)

    # ------------------------------------------------------------------ devices
    def device_spec(self) -> str:
        """The chosen devices as TrainConfig.devices (auto, `1,` for GPU 1, cpu, cpu:2)."""
        return self.devices.currentData() or "auto"

    def _fill_devices(self) -> None:
        """The picker's entries for the devices the probe found (before it answers: Auto and CPU)."""
        wanted = self._wanted_devices
        self.devices.blockSignals(True)
        self.devices.clear()
        for text, spec, tip in device_choice.choices(self.session.devices):
            self.devices.addItem(text, spec)
            self.devices.setItemData(self.devices.count() - 1, tip, Qt.ToolTipRole)
        i = self.devices.findData(wanted)
        self.devices.setCurrentIndex(max(0, i))
        self.devices.blockSignals(False)
        self._on_choice(remember=False)

    def replicas(self) -> int | None:
        """Replicas of the chosen devices; None while "Auto" waits for the device probe."""
        if self.session.devices is None and self.device_spec() == "auto":
            return None
        try:
            n = device_choice.replicas(self.device_spec(), self.session.devices)
        except ConfigError:
            return None
        mp = self.model_parallel.value()
        return max(1, n // mp) if mp > 1 else n  # the batch splits over the devices' groups

    def _on_choice(self, *_, remember: bool = True) -> None:
        if remember:
            self._wanted_devices = self.device_spec()
        n = self.replicas()
        if n is None:
            set_role(self.split, "hint")
            self.split.setText("split over the GPUs found, if any" if self.session.devices is None else "")
        else:
            ok, text = device_choice.batch_split(self.batch.value(), n)
            set_role(self.split, "hint" if ok else "error")
            self.split.setText(text)
        self.session.set_train_config(replace(self.session.train_config, batch_size=self.batch.value(),
                                              devices=self.device_spec(), mixed_precision=self.precision.currentData()))
        self._show_memory_warning()

    def _show_memory_warning(self) -> None:
        text = device_choice.memory_warning(self.session.model_config, self.batch.value(), self.device_spec(),
                                            self.session.devices, self.chosen_family())
        self.memory_note.setText(text)
        self.memory_note.setVisible(bool(text))

    def open_cluster_dialog(self):
        from desktop_llm.gui.cluster_dialog import ClusterDialog

        dialog = ClusterDialog(self)
        dialog.open()
        return dialog

    # ------------------------------------------------------------------ config
    def run_config(self) -> RunConfig:
        s = self.session
        tr = TrainConfig(max_steps=self.steps.value(), batch_size=self.batch.value(), learning_rate=self.lr.value(),
                         min_learning_rate=self.min_lr.value(), warmup_steps=self.warmup.value(),
                         weight_decay=self.wd.value(), grad_clip=self.clip.value(),
                         eval_interval=self.eval_every.value(), seed=self.seed.value(),
                         devices=self.device_spec(), mixed_precision=self.precision.currentData(),
                         model_parallel=self.model_parallel.value()).fitted()
        tk = TokenizerConfig(kind=s.tokenizer_kind, vocabulary_size=s.tokenizer.vocabulary_size if s.tokenizer else None,
                             path=s.tokenizer_dir)
        data = DataConfig(paths=tuple(s.paths), column=s.column, val_fraction=s.val_fraction,
                          encodings=tuple(sorted(s.encodings.items())))
        cfg = RunConfig(name=run_name(self.name.text(), s.paths), family=self.family.currentData(), data=data,
                        tokenizer=tk, model=replace(s.model_config, vocabulary_size=0), training=tr)
        options = self.options.get(cfg.family)
        return options.apply(cfg) if options is not None else cfg

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        try:
            cfg = self.run_config()
            cfg.validate()
            family = self.chosen_family()
            if self.session.tokenizer is None and not cfg.base_run and not family.tokenizer_in_run:
                raise ConfigError("Train a tokenizer first (Tokenizer page).")
            family.check_data(cfg)  # bad labels or pairs refused here, in one line, before a run exists
            if cfg.training.model_parallel > 1:  # the CLI's rules: only JAX shards weights, over a machine's devices
                from desktop_llm.core import backend
                from desktop_llm.core.runners import refuse_model_parallel, refuse_uneven_split

                refuse_model_parallel(backend.choose(self.backend.currentData() or "auto").name,
                                      cfg.training.model_parallel)
                family.refuse_unsharded(cfg.training.model_parallel)
                if self.session.devices is not None or self.device_spec() != "auto":
                    refuse_uneven_split(cfg.training.model_parallel,
                                        device_choice.replicas(self.device_spec(), self.session.devices),
                                        self.device_spec())
            n = self.replicas()
            if n and cfg.training.batch_size % n:
                _, line = device_choice.batch_split(cfg.training.batch_size, n)
                raise ConfigError(f"The batch size must split evenly over the replicas ({self.devices.currentText()}): "
                                  f"{line}.")
        except (ConfigError, CorpusError) as e:
            self._message(str(e), error=True)
            return
        run = self.session.store.create(cfg)
        self.launch(run.id, fresh=True)

    def _add_sample(self, e) -> None:
        """An evaluation's sample above the earlier ones: what the model writes at each step, to
        read how it learned (the newest in view, the rest a scroll away)."""
        figure = (f"accuracy {e.val_accuracy:.1%}" + (f" · macro-F1 {e.val_macro_f1:.3f}" if e.val_macro_f1
                                                       is not None else "")
                  if e.classes is not None else f"perplexity {e.val_ppl:.2f}")
        if e.val_bits_per_byte is not None:
            figure += f" · {e.val_bits_per_byte:.3f} bits/byte"
        earlier = self.sample.toPlainText()
        entry = f"── step {e.step:,} · validation loss {e.val_loss:.3f} · {figure}\n{e.sample.rstrip()}"
        self.sample.setPlainText(entry + (f"\n\n{earlier}" if earlier else ""))
        self.sample.moveCursor(QTextCursor.Start)

    def resume_run(self, run_id: str) -> None:
        """Continue a stopped or interrupted run (from the Runs page)."""
        run = self.session.store.get(run_id)
        self.plots.clear()
        metrics = run.metrics()
        st = run.status()
        self.plots.show_history(run_id, run.config.name or run_id, metrics, vocabulary=st.get("vocabulary_size") or 0,
                                baselines=(st.get("baselines") or {}).get("figures"))
        self.sample.clear()
        for m in metrics:  # the samples of its earlier evaluations, as if it had trained here
            if m.get("type") == ev.Eval.TYPE:
                self._add_sample(ev.parse(m))
        self.launch(run_id, fresh=False)

    def launch(self, run_id: str, fresh: bool) -> None:
        if self.proc and self.proc.running:
            self._message("A run is already training.", error=True)
            return
        self.run_id = run_id
        run = self.session.store.get(run_id)
        self.max_steps = run.config.training.max_steps
        self.last_step = 0
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        if fresh:
            self.plots.clear()
            self.sample.clear()
        self.plots.series_for(run_id, run.config.name or run_id)
        self.proc = TrainingProcess(str(self.session.store.home), run_id, self,
                                    backend=self.backend.currentData() or "auto")
        self.proc.event.connect(self._on_event)
        self.proc.ended.connect(self._on_ended)
        self.proc.start()
        self._paused = False
        self._set_running(True)
        self._message("Starting the trainer (loading Keras' backend, preparing data, compiling)…")
        self._redraw.start()
        self.run_started.emit(run_id)
        self.session.runs_changed.emit()

    def toggle_pause(self) -> None:
        if not self.proc:
            return
        if self._paused:
            self.proc.resume()
            self.pause_btn.setText("Pause")
            self._message("Resuming…")
        else:
            self.proc.pause()
            self.pause_btn.setText("Resume")
            self._message("Pausing after the current steps…")
        self._paused = not self._paused

    def stop(self) -> None:
        if self.proc and self.proc.running:
            self.proc.stop()  # it kills itself if the checkpoint takes too long
            self._message("Stopping: saving a checkpoint…")

    def shutdown(self) -> None:
        """Window closing: ask the trainer to stop (it checkpoints), wait briefly, then kill."""
        if self.proc and self.proc.running:
            self.proc.stop()
            if not self.proc.proc.waitForFinished(15_000):
                self.proc.kill()
                self.proc.proc.waitForFinished(3000)

    @property
    def training(self) -> bool:
        return bool(self.proc and self.proc.running)

    # ------------------------------------------------------------------ events
    def _on_event(self, d: dict) -> None:
        e = ev.parse(d)
        if isinstance(e, (ev.Step, ev.Eval, ev.Start, ev.Data, ev.Baselines)) and self.run_id:  # curves, yardsticks
            self.plots.series_for(self.run_id).add(e)
            self._pending = True
        if isinstance(e, ev.Baselines) and e.figures:
            from desktop_llm.core.baselines import describe

            self._message(f"To beat, on the validation split: {describe(e.figures)}.")
        if isinstance(getattr(e, "step", None), int):
            self.last_step = e.step
        if isinstance(e, ev.Step):
            self.max_steps = e.max_steps
            self.progress.setValue(int(100 * e.step / max(1, e.max_steps)))
            eta = "estimating…" if e.eta is None else short_duration(e.eta)
            self.progress.setFormat(f"step {e.step:,} / {e.max_steps:,} · ETA {eta}")
            self.figures.setText(f"loss {e.loss:.3f} · {e.tokens_per_sec:,.0f} tokens/s · "
                                 f"{e.ms_per_step:.1f} ms/step")
            self._message("Training…")
        elif isinstance(e, ev.Eval):
            self._add_sample(e)
            self._warned = ""
        elif isinstance(e, ev.Phase):
            p = e.progress
            self._message(e.message + (f" {100 * p:.0f}%" if p is not None else "") + "…")
        elif isinstance(e, ev.Start):
            n, per = e.replicas or 1, e.per_replica_batch
            split = (f" · {n} replica{'s' if n > 1 else ''} × {per} = batch {n * per}" if per else "")
            workers = f" · worker {e.worker_index} of {e.workers}" if (e.workers or 1) > 1 else ""
            self._message(f"Training on {e.device} with {NAMES.get(e.backend, e.backend)}{split}{workers} · "
                          f"{e.parameters:,} parameters · "
                          f"{e.train_tokens:,} training tokens")
        elif isinstance(e, ev.Paused):
            self._progress_note("paused")
            self._message(f"Paused at step {e.step}.")
        elif isinstance(e, ev.Warning):
            self._message(e.message, error=True)
            self._warned = e.message
        elif isinstance(e, ev.Failed):
            self._progress_note("failed")
            self._message(f"{e.message} {e.suggestion}", error=True)
        elif isinstance(e, ev.Completed):
            self.progress.setValue(100)
            self._progress_note("completed")
            best = e.best_val_loss if e.best_val_loss is not None else float("nan")
            # a warning just before the end (it learned little) stays in view with the result
            warned = self._warned
            self._message(f"Finished: best validation loss {best:.3f}." + (f" {warned}" if warned else ""),
                          error=bool(warned))
        elif isinstance(e, ev.Stopped):
            self._progress_note("stopped")
            self._message(f"Stopped at step {e.step}. Resume it from the Runs page.")

    def _progress_note(self, note: str) -> None:
        """Replace the ETA once the run is not training (an ETA after Stop is a wrong promise)."""
        if self.last_step:
            self.progress.setFormat(f"step {self.last_step:,} / {self.max_steps:,} · {note}")
        else:
            self.progress.setFormat(note)

    def _flush(self) -> None:
        if self._pending and self.run_id in self.plots.series:
            self.plots.series[self.run_id].redraw()
            self._pending = False

    def _on_ended(self, code: int, message: str) -> None:
        self._flush()
        self._redraw.stop()
        self._set_running(False)
        if message:
            self._message(message, error=True)
        status = self.session.store.sync(self.run_id)["status"] if self.run_id else ""
        self._progress_note(status or "ended")
        if self.run_id:
            self.session.set_current_run(self.run_id)  # the pages that use a model show this run
        self.session.runs_changed.emit()
        self.run_ended.emit(self.run_id or "", status)

    def _set_running(self, running: bool) -> None:
        self.start_btn.setEnabled(not running)
        self.pause_btn.setEnabled(running)
        self.stop_btn.setEnabled(running)
        self.pause_btn.setText("Pause")

    def _message(self, text: str, error: bool = False) -> None:
        set_role(self.status, "error" if error else "hint")
        self.status.setText(text)


def backend_picker() -> QComboBox:
    """The Keras backend the trainer computes with: Auto (and what it takes here, and why), or one
    that is installed; those that are not are listed, disabled, with the extra that adds them."""
    from desktop_llm.core import backend, speed_probe

    box = QComboBox()
    try:
        auto = backend.choose("auto")
        here = backend.available()
        if auto.cpu and len(here) > 1 and speed_probe.enabled():  # Start times them (core/backend_probe.py)
            box.addItem("Auto: the fastest here", "auto")
            box.setItemData(0, f"No GPU here: Start times {', '.join(NAMES[b] for b in here)} on your model (once "
                               "per model shape, about half a minute each) and trains on the fastest. Several "
                               "devices, or a precision of your own, train on TensorFlow.", Qt.ToolTipRole)
        else:
            box.addItem(f"Auto: {NAMES[auto.name]}", "auto")
            box.setItemData(0, f"{NAMES[auto.name]}: {auto.reason}", Qt.ToolTipRole)
    except backend.ConfigError as e:  # nothing installed: the trainer says so when it starts
        box.addItem("Auto", "auto")
        box.setItemData(0, str(e), Qt.ToolTipRole)
    for name in backend.BACKENDS:
        box.addItem(NAMES[name], name)
        i = box.count() - 1
        if not backend.installed(name):
            box.model().item(i).setEnabled(False)
            box.setItemData(i, f"Not installed: pip install \"desktop_llm[{backend.EXTRA[name] or 'tensorflow'}]\"",
                            Qt.ToolTipRole)
    box.setToolTip("Keras' backend for training and for the window's model work (Generate, Attention, Evaluate…): "
                   "TensorFlow, JAX or PyTorch reach different GPUs (PyTorch: Windows and Apple; JAX: Linux CUDA). "
                   "A run resumes on any of them.")
    return box


NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
