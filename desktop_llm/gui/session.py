"""What the pages share: the workspace, the corpus, the tokenizer and the model being set up."""

from __future__ import annotations

import threading
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from desktop_llm.core.config import ModelConfig, TrainConfig, preset


class Session(QObject):
    corpus_changed = Signal()
    tokenizer_changed = Signal()
    model_changed = Signal()
    runs_changed = Signal()
    device_known = Signal(str)  # "GPU: NVIDIA ..." or "CPU (n cores)", once TensorFlow has looked

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.paths: list[str] = []
        self.column: str | None = None
        self.val_fraction = 0.1
        self.tokenizer = None  # a trained core Tokenizer
        self.tokenizer_dir: str | None = None
        self.tokenizer_kind = "char"
        self.model_config: ModelConfig = preset("small")
        self.train_config: TrainConfig = TrainConfig()
        self._models: dict = {}
        self._generators: dict = {}
        self._lock = threading.RLock()  # workers on several threads may load at once

    def set_corpus(self, paths: list[str], column: str | None, val_fraction: float) -> None:
        self.paths, self.column, self.val_fraction = list(paths), column, val_fraction
        self.corpus_changed.emit()

    def set_tokenizer(self, tokenizer, folder: str) -> None:
        self.tokenizer, self.tokenizer_dir, self.tokenizer_kind = tokenizer, folder, tokenizer.kind
        self.model_config = replace(self.model_config, vocabulary_size=tokenizer.vocabulary_size)
        self.tokenizer_changed.emit()

    def set_model_config(self, cfg: ModelConfig) -> None:
        self.model_config = cfg
        self.model_changed.emit()

    def load_model(self, run_id: str, which: str):
        """(model, tokenizer, checkpoint) for inference, cached per run/checkpoint. Call off the UI thread."""
        from desktop_llm.core.checkpoints import CheckpointManager
        from desktop_llm.core.loading import load_for_inference

        with self._lock:
            run = self.store.get(run_id)
            ckpt = CheckpointManager(run.checkpoints_dir).find(which)
            key = (run_id, str(ckpt.folder) if ckpt else None)
            if key not in self._models:
                self._models = {key: load_for_inference(run, which)}  # keep one model in memory
                self._generators = {}
            return self._models[key]

    def generator(self, run_id: str, which: str):
        """A streaming Generator over the cached model; its compiled steps are reused between requests."""
        from desktop_llm.core.generation import Generator

        with self._lock:
            model, tok, ckpt = self.load_model(run_id, which)
            key = id(model)
            if key not in self._generators:
                self._generators = {key: Generator(model, tok)}
            return self._generators[key]
