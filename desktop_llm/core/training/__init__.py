"""Training: a run folder in, checkpoints and a metrics stream out (the generic trainer every
model family shares; the families themselves live in core/models/).

    trainer.py      train_run: prepare, build or restore, fit (one device, or tf.distribute), end cleanly
    context.py      a running fit's state and its Keras callback: events, validation, checkpoints
    control.py      pause / resume / stop requests
    schedule.py     fused steps, learning-rate schedule, AdamW
    preparation.py  the tokenizer and token data, made once into the run folder
    failures.py     how a run ends when something goes wrong, in the user's terms
"""

from desktop_llm.core.training.context import TrainingContext
from desktop_llm.core.training.control import Control
from desktop_llm.core.training.failures import TrainingFailed
from desktop_llm.core.training.preparation import ensure_tokenizer
from desktop_llm.core.training.schedule import fused_steps, learning_rate_schedule, make_optimizer
from desktop_llm.core.training.trainer import train_run

__all__ = ["Control", "TrainingContext", "TrainingFailed", "ensure_tokenizer", "fused_steps",
           "learning_rate_schedule", "make_optimizer", "train_run"]
