"""Training events: what a run reports, as small dataclasses with one JSON round trip.

The trainer builds each event here and sends `event.to_dict()`: JSON lines (on stdout with
`--json`, and in the run's metrics.jsonl) are the contract between trainer, CLI and window, so
a script in any language can follow a run. Python readers (the CLI's lines, the window's plots,
the run store) turn a line back into its class with `parse`, so a field is named in one place.

`parse(d).to_dict() == d` for every event: fields this version does not know (a newer
trainer's, or a family's extra validation metrics) ride along in `extra`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


def _opt(default=None):
    """A field left out of the JSON while it is None (a family's own metric, say)."""
    return field(default=default, metadata={"optional": True})


@dataclass
class Event:
    TYPE: ClassVar[str] = ""
    extra: dict = field(default_factory=dict, kw_only=True)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None and f.metadata.get("optional"):
                continue
            d[f.name] = v
        d.update(self.extra)
        return d


@dataclass
class RunFolder(Event):
    TYPE = "run"
    run: str = ""
    folder: str = ""


@dataclass
class Phase(Event):
    """Preparation before training: the tokenizer, the data, the model, freezing / thawing."""
    TYPE = "phase"
    phase: str = ""
    message: str = ""
    progress: float | None = _opt()


@dataclass
class Data(Event):
    """The training data made for the run: token counts (language models) or labelled
    examples and classes (a classifier)."""
    TYPE = "data"
    train_tokens: int | None = _opt()
    val_tokens: int | None = _opt()
    dtype: str | None = _opt()
    characters: int | None = _opt()
    examples: int | None = _opt()
    classes: list | None = _opt()
    counts: dict | None = _opt()
    train_examples: int | None = _opt()
    val_examples: int | None = _opt()
    cut: int | None = _opt()
    supervised_tokens: int | None = _opt()  # a chat model's training tokens it learns to write (its replies)
    leaked: int | None = _opt()  # validation examples left out (or, in a text, lines) repeating training ones
    groups: int | None = _opt()  # a classifier split by documents (--group-column): how many there are
    val_groups: int | None = _opt()  # ... and how many of them validation holds out whole


@dataclass
class Start(Event):
    TYPE = "start"
    run: str = ""
    step: int = 0
    max_steps: int = 0
    device: str = ""
    policy: str = ""
    backend: str = "tensorflow"  # the Keras backend this process computes with (core/backend.py)
    backend_reason: str = ""  # why: "asked for", "reaches the NVIDIA GPU on Windows"...
    xla: bool = True  # whether the step is XLA-compiled (on a CPU, core/speed_probe.py may turn it off)
    parameters: int = 0
    trainable_parameters: int | None = _opt()  # a LoRA fine-tune: the factors (and any embedding) it trains
    vocabulary_size: int = 0
    train_tokens: int = 0
    val_tokens: int = 0
    steps_per_execution: int = 1
    replicas: int = 1
    per_replica_batch: int = 0
    workers: int = 1
    worker_index: int = 0


@dataclass
class Step(Event):
    """One compiled call of `steps_per_execution` steps: its last loss and its speed."""
    TYPE = "step"
    step: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    tokens_per_sec: float = 0.0
    ms_per_step: float = 0.0
    elapsed: float = 0.0
    eta: float | None = None  # None until a call after the first (which compiles) was timed
    max_steps: int = 0
    accuracy: float | None = _opt()


@dataclass
class Eval(Event):
    """A validation pass. Families add their own figures: masked LM and classifier an accuracy,
    the classifier its macro-F1 and confusion matrix (rows: true class, columns: predicted)."""
    TYPE = "eval"
    step: int = 0
    val_loss: float = float("nan")
    val_ppl: float = float("nan")
    best_val_loss: float | None = None
    sample: str = ""
    elapsed: float = 0.0
    val_accuracy: float | None = _opt()
    val_macro_f1: float | None = _opt()
    confusion: list | None = _opt()
    classes: list | None = _opt()
    val_bleu: float | None = _opt()  # a translator: BLEU (sacrebleu) and exact match of greedy translations
    val_exact_match: float | None = _opt()
    val_chrf: float | None = _opt()  # a translator: chrF (sacrebleu) of the same translations
    val_bits_per_byte: float | None = _opt()  # a loss over tokens, per byte of text (core/baselines.py)
    val_stops: float | None = _opt()  # a chat model: the share of validation replies that end with <|end|>


@dataclass
class Checkpoint(Event):
    TYPE = "checkpoint"
    step: int = 0
    best: bool = False


@dataclass
class ResumedFrom(Event):
    TYPE = "resumed_from"
    step: int = 0


@dataclass
class Paused(Event):
    TYPE = "paused"
    step: int = 0


@dataclass
class Resumed(Event):
    TYPE = "resumed"
    step: int = 0


@dataclass
class Stopped(Event):
    TYPE = "stopped"
    step: int = 0
    worker: bool | None = _opt()
    weights_sha256: str | None = _opt()


@dataclass
class Completed(Event):
    TYPE = "completed"
    step: int = 0
    best_val_loss: float | None = _opt()
    elapsed: float | None = _opt()
    worker: bool | None = _opt()
    weights_sha256: str | None = _opt()


@dataclass
class Exported(Event):
    TYPE = "exported"
    path: str = ""
    step: int = 0


@dataclass
class Baselines(Event):
    """What the model must beat, computed on its own split once its data is made: per baseline
    its loss (in the model's own unit) and, where they apply, bits per byte and accuracy."""
    TYPE = "baselines"
    figures: dict = dataclasses.field(default_factory=dict)  # {"trigram": {"loss": …, "bits_per_byte": …}}
    bytes_per_token: float | None = _opt()
    chars_per_token: float | None = _opt()  # the tokenizer against the character one (the report)


@dataclass
class Warning(Event):
    TYPE = "warning"
    message: str = ""


@dataclass
class Failed(Event):
    TYPE = "failed"
    message: str = ""
    suggestion: str = ""


@dataclass
class Other(Event):
    """A line of another kind (a token of `generate --json`, a launcher's summary...)."""
    TYPE = ""
    type: str = ""

    def to_dict(self) -> dict:
        return {"type": self.type, **self.extra}


TYPES: dict[str, type[Event]] = {c.TYPE: c for c in (
    RunFolder, Phase, Data, Start, Step, Eval, Checkpoint, ResumedFrom, Paused, Resumed, Stopped, Completed,
    Exported, Warning, Failed, Baselines)}


def parse(d: dict) -> Event:
    """The event a JSON object describes (`Other` for a type this version does not know)."""
    cls = TYPES.get(d.get("type", ""))
    if cls is None:
        return Other(type=str(d.get("type", "")), extra={k: v for k, v in d.items() if k != "type"})
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return cls(**{k: v for k, v in d.items() if k in names},
               extra={k: v for k, v in d.items() if k not in names and k != "type"})
