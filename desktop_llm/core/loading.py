"""Load a trained run for inference: its tokenizer and model weights from a checkpoint."""

from __future__ import annotations

from dataclasses import replace

from desktop_llm.core.checkpoints import CheckpointManager
from desktop_llm.core.tokenizers import load_tokenizer


class NoCheckpoint(RuntimeError):
    pass


def load_for_inference(run, which: str = "best"):
    """(model, tokenizer, checkpoint) of a run folder; `which` is "best" or "latest".

    Weights load into a model built from the run's own config.json (no code from the files runs).
    """
    import keras

    from desktop_llm.core.model import build_model

    tok = load_tokenizer(run.tokenizer_dir)
    manager = CheckpointManager(run.checkpoints_dir)
    ckpt = manager.find(which)
    if ckpt is None:
        raise NoCheckpoint(f"Run {run.id} has no checkpoint yet: train it for at least one evaluation interval.")
    keras.mixed_precision.set_global_policy("float32")
    cfg = run.config
    model = build_model(replace(cfg.model, vocabulary_size=tok.vocabulary_size, dropout=0.0))
    # keras-hub compiles a new task with a default optimizer, and the checkpoint's weights file
    # also holds the training optimizer's state: Keras would try to load it into that unbuilt
    # optimizer and warn "Skipping variable loading for optimizer" on every load. Inference
    # needs no optimizer: without one, only the model's own weights are read.
    model.optimizer = None
    model.load_weights(str(ckpt.weights_path))
    return model, tok, ckpt
