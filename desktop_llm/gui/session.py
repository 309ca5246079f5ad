"""What the pages share: the workspace, the corpus, the tokenizer and the model being set up."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from desktop_llm.core.config import DEFAULT_FAMILY, ModelConfig, TrainConfig, preset


class Session(QObject):
    corpus_changed = Signal()
    tokenizer_changed = Signal()
    model_changed = Signal()
    runs_changed = Signal()
    current_run_changed = Signal(str)  # the run the Attention, Generate and Evaluate pages look at
    device_known = Signal(str)  # "GPU: NVIDIA ..." or "CPU (n cores)", once TensorFlow has looked
    devices_changed = Signal()  # the device probe's list arrived (`devices`)
    train_changed = Signal()  # the Train page's batch or device choice changed (`train_config`)
    columns_changed = Signal()  # the Train page's label or group column changed (`label_column`, ...)

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.paths: list[str] = []
        self.column: str | None = None
        self.val_fraction = 0.1
        self.encodings: dict[str, str] = {}  # file path -> encoding chosen on the Data page
        self.tokenizer = None  # a trained core Tokenizer
        self.tokenizer_dir: str | None = None
        self.tokenizer_kind = "char"
        self.family = DEFAULT_FAMILY  # chosen on the Train page (`set_family`)
        self.tokenizer_corpus: tuple | None = None  # corpus_key of the text the tokenizer was trained on
        self.current_run: str | None = None  # one choice of run shared by the pages that use a model
        self.model_config: ModelConfig = preset("small")
        self.train_config: TrainConfig = TrainConfig()  # the Train page's batch and devices, as chosen
        self.backend = "auto"  # the Keras backend of the trainer and the model worker (the Train page's choice)
        self.devices: list[dict] | None = None  # `desktop-llm devices --json`'s list; None until it answers
        # the Train page's columns of labelled files, which the Data page's reading of them uses too
        self.label_column: str | None = None
        self.group_column: str | None = None

    def set_corpus(self, paths: list[str], column: str | None, val_fraction: float,
                   encodings: dict[str, str] | None = None) -> None:
        self.paths, self.column, self.val_fraction = list(paths), column, val_fraction
        if encodings is not None:
            self.encodings = dict(encodings)
        self.corpus_changed.emit()

    def set_columns(self, label_column: str | None, group_column: str | None) -> None:
        """The label and group columns chosen on the Train page (None: auto, none)."""
        if (label_column, group_column) != (self.label_column, self.group_column):
            self.label_column, self.group_column = label_column, group_column
            self.columns_changed.emit()

    @property
    def corpus_key(self) -> tuple:
        """What identifies the corpus for a tokenizer: its sources and column (not the split), and
        the encodings chosen for its files, if any."""
        if self.encodings:
            return tuple(self.paths), self.column, tuple(sorted(self.encodings.items()))
        return tuple(self.paths), self.column

    @property
    def tokenizer_stale(self) -> bool:
        """A tokenizer is active, a corpus is loaded, and the tokenizer was trained on other text
        (a byte tokenizer learns nothing from its text: it is never stale)."""
        return (self.tokenizer is not None and self.tokenizer_kind != "byte" and bool(self.paths)
                and self.tokenizer_corpus != self.corpus_key)

    def set_tokenizer(self, tokenizer, folder: str, corpus: tuple | None = None) -> None:
        """`corpus`: the corpus_key it was trained on (default: the corpus loaded now)."""
        self.tokenizer, self.tokenizer_dir, self.tokenizer_kind = tokenizer, folder, tokenizer.kind
        if corpus is not None:  # (also from gui.ini, where tuples come back as lists)
            chosen = tuple(sorted(tuple(pair) for pair in corpus[2])) if len(corpus) > 2 and corpus[2] else ()
            corpus = (tuple(corpus[0]), corpus[1]) + ((chosen,) if chosen else ())
        self.tokenizer_corpus = corpus if corpus is not None else self.corpus_key
        self.model_config = replace(self.model_config, vocabulary_size=tokenizer.vocabulary_size)
        self.tokenizer_changed.emit()

    def set_current_run(self, run_id: str | None) -> None:
        if run_id and run_id != self.current_run:
            self.current_run = run_id
            self.current_run_changed.emit(run_id)

    def set_devices(self, devices: list[dict]) -> None:
        self.devices = list(devices)
        self.devices_changed.emit()

    def set_family(self, name: str) -> None:
        """The family chosen on the Train page: the Model page's estimates are for its model."""
        if name != self.family:
            self.family = name
            self.train_changed.emit()

    def set_train_config(self, cfg: TrainConfig) -> None:
        if cfg != self.train_config:
            self.train_config = cfg
            self.train_changed.emit()

    def set_model_config(self, cfg: ModelConfig) -> None:
        self.model_config = cfg
        self.model_changed.emit()

    def worker(self):
        """The model worker (core/worker_process.py): a child process, started on first use, that
        runs the window's model work; one per window process, shared by its windows."""
        from desktop_llm.core import worker_process

        return worker_process.shared(self.backend)
