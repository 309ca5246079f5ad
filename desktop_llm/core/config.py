"""Run configuration: frozen dataclasses with one JSON round trip, presets, validation, estimates.

A run folder's `config.json` is `RunConfig.to_dict()`; `desktop-llm train --config config.json`
repeats the run on any machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_llm.errors import DesktopLLMError


class ConfigError(DesktopLLMError, ValueError):
    """An impossible configuration, refused before anything runs."""


@dataclass(frozen=True)
class DataConfig:
    paths: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    column: str | None = None
    label_column: str | None = None  # classifier: the CSV / JSONL column that holds the class
    # classifier: a CSV / JSONL column naming each text's document (article, book, speaker); texts
    # sharing one stay on one side of the validation split (examples.grouped_split)
    group_column: str | None = None
    target_column: str | None = None  # translator: the JSONL field of the target (`column`: the source)
    val_fraction: float = 0.1
    accept_unknown: bool = False  # a fine-tune goes on though its base's tokenizer cannot read much of the text
    # (file or folder, encoding) pairs read with that encoding instead of the detected one
    encodings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # config.json has lists (or, written by hand, a {path: encoding} object): back to pairs
        pairs = self.encodings.items() if isinstance(self.encodings, dict) else self.encodings
        object.__setattr__(self, "encodings", tuple((str(p), str(e)) for p, e in pairs))


LEARNED_KINDS = ("wordpiece", "sentencepiece", "bpe")  # tokenizers that learn their vocabulary
MIN_LEARNED_VOCAB = 64


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = "char"
    vocabulary_size: int | None = None  # None: the kind's default (char: every character seen)
    path: str | None = None  # a tokenizer folder trained beforehand; copied into the run
    separate: bool = False  # translator: one tokenizer for the source, one for the target

    def validate(self) -> None:
        size = self.vocabulary_size
        if self.path is None and self.kind in LEARNED_KINDS and size is not None and size < MIN_LEARNED_VOCAB:
            raise ConfigError(f"A {self.kind} vocabulary needs at least {MIN_LEARNED_VOCAB} entries (got {size}).")


@dataclass(frozen=True)
class ModelConfig:
    vocabulary_size: int = 0  # filled from the tokenizer when the run is prepared
    num_layers: int = 4
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    sequence_length: int = 64
    dropout: float = 0.0
    tie_embeddings: bool = True
    position_embedding: str = "learned"

    def validate(self) -> None:
        problems = []
        for name in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "sequence_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"{name.replace('_', ' ')} must be a positive whole number (got {v}).")
        if not problems and self.hidden_dim % self.num_heads:
            problems.append(
                f"The model width ({self.hidden_dim}) must be divisible by the number of heads "
                f"({self.num_heads}): try width {self.num_heads * max(1, round(self.hidden_dim / self.num_heads))}."
            )
        if self.sequence_length is not None and isinstance(self.sequence_length, int) and self.sequence_length < 2:
            problems.append("The context length must be at least 2 tokens.")
        if not 0.0 <= float(self.dropout) < 1.0:
            problems.append(f"Dropout must be in [0, 1) (got {self.dropout}).")
        if self.position_embedding != "learned":
            problems.append(f"Unknown position embedding '{self.position_embedding}' (only 'learned').")
        if self.vocabulary_size < 0:
            problems.append("The vocabulary size cannot be negative.")
        if problems:
            raise ConfigError(" ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads


PRECISIONS = ("auto", "off", "bfloat16", "float16")  # TrainConfig.mixed_precision
POOLINGS = ("mean", "cls")  # RunConfig.pooling
# A run of this family when none is named; runs made before families existed saved none and are GPT runs.
DEFAULT_FAMILY = "gpt"


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 12
    max_steps: int = 2000
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta_1: float = 0.9
    beta_2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    checkpoint_interval: int = 0  # 0: at every evaluation
    log_interval: int = 10  # steps fused into one compiled call, and one metrics line
    freeze_steps: int = 0  # classifier: train only the head for this many steps first
    lora_rank: int = 0  # a fine-tune from a base run: train rank-N LoRA factors of the attention only (core/models/lora.py)
    sample_tokens: int = 120  # text generated at each evaluation (0: none)
    probes: bool = True  # the fixed probe at each evaluation, where the family has one (core/probes.py)
    snapshot_budget_mb: int = 200  # weight snapshots kept over training, thinned to this (core/snapshots.py; 0: none)
    seed: int = 1337
    jit_compile: bool = True
    mixed_precision: str = "auto"  # auto (on GPUs that support it) | off | bfloat16 | float16
    devices: str = "auto"  # auto/all GPUs | N | 0,2 | cpu | cpu:N (logical CPUs); see core.distribute
    model_parallel: int = 1  # devices each weight is sharded over (jax backend, keras.distribution.ModelParallel)

    def validate(self) -> None:
        problems = []
        for name in ("learning_rate", "min_learning_rate", "weight_decay", "beta_1", "beta_2", "grad_clip"):
            v = getattr(self, name)  # NaN passes every comparison below (`v < 0` is False): refuse it first
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{name.replace('_', ' ').capitalize()} must be a finite number (got {v}).")
        for name in ("batch_size", "max_steps", "eval_interval", "eval_batches", "log_interval"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"{name.replace('_', ' ')} must be a positive whole number (got {v}).")
        if self.learning_rate <= 0 or self.learning_rate > 1:
            problems.append(f"The learning rate must be in (0, 1] (got {self.learning_rate}).")
        if self.min_learning_rate < 0 or self.min_learning_rate > self.learning_rate:
            problems.append("The final learning rate must be between 0 and the peak learning rate.")
        if self.warmup_steps < 0 or self.warmup_steps >= self.max_steps:
            problems.append(
                f"Warm-up steps ({self.warmup_steps}) must be fewer than the total steps ({self.max_steps})."
            )
        if self.weight_decay < 0:
            problems.append("Weight decay cannot be negative.")
        if self.grad_clip < 0:
            problems.append("Gradient clipping cannot be negative (0 turns it off).")
        if not isinstance(self.freeze_steps, int) or not 0 <= self.freeze_steps < self.max_steps:
            problems.append(f"Frozen steps ({self.freeze_steps}) must be 0 or fewer than the total steps "
                            f"({self.max_steps}).")
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            problems.append(f"The LoRA rank must be 0 (off) or a positive whole number (got {self.lora_rank}).")
        if isinstance(self.snapshot_budget_mb, bool) or not isinstance(self.snapshot_budget_mb, int) \
                or self.snapshot_budget_mb < 0:
            problems.append(f"The snapshots' disk budget must be 0 (none) or a whole number of MB "
                            f"(got {self.snapshot_budget_mb}).")
        if isinstance(self.model_parallel, bool) or not isinstance(self.model_parallel, int) or self.model_parallel < 1:
            problems.append(f"Model parallelism must be 1 (off) or more devices (got {self.model_parallel}).")
        if self.mixed_precision not in PRECISIONS:
            problems.append("Mixed precision is one of auto, off, bfloat16, float16.")
        if problems:
            raise ConfigError(" ".join(problems))

    @property
    def checkpoint_every(self) -> int:
        return self.checkpoint_interval or self.eval_interval

    def xla_repays(self, evaluations: int) -> bool:
        """Whether work done once per evaluation (the probe, the sample) should compile with XLA:
        only where the run does and has more than `evaluations` of them to repay XLA's compile.
        The break-even points are measured where each is used (core/prober.py, gpt's sample)."""
        return bool(self.jit_compile) and self.max_steps // max(1, self.eval_interval) > evaluations

    def fitted(self) -> TrainConfig:
        """The settings made to fit a run of `max_steps`, the one rule the CLI and the window
        share: a warm-up as long as the run becomes a tenth of it, evaluation at least at the
        end, the final learning rate at most the peak. What cannot be fitted (a negative step
        count, say) is left for `validate()` to refuse."""
        if self.max_steps < 1:
            return self
        t = self
        if t.warmup_steps >= t.max_steps:
            t = dataclasses.replace(t, warmup_steps=t.max_steps // 10)
        if t.eval_interval > t.max_steps:
            t = dataclasses.replace(t, eval_interval=t.max_steps)
        if t.min_learning_rate > t.learning_rate:
            t = dataclasses.replace(t, min_learning_rate=t.learning_rate)
        return t


@dataclass(frozen=True)
class RunConfig:
    name: str = ""
    family: str = DEFAULT_FAMILY  # a family of core/models/ (its registry checks the name)
    base_run: str = ""  # classifier: the folder of the pretrained run it starts from ("" = scratch)
    base_family: str = ""  # classifier: that run's family, kept so the classifier loads without it
    # classifier on an encoder: how its token states become one vector, "mean" or "cls" (BERT's
    # pooled [CLS]). Configs written before the choice existed lack it and were "cls" (from_dict).
    pooling: str = "mean"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """The settings, checked; the family name is the registry's to check (`get_family`)."""
        self.model.validate()
        self.training.validate()
        self.tokenizer.validate()
        if not self.data.paths and not self.data.texts:
            raise ConfigError("No corpus: give at least one file, folder or text.")
        if not 0.0 < self.data.val_fraction < 0.9:
            raise ConfigError("The validation fraction must be between 0 and 0.9 (e.g. 0.1).")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"Pooling is one of {', '.join(POOLINGS)} (got {self.pooling!r}).")
        if self.training.lora_rank and not self.base_run:
            raise ConfigError("LoRA adapts a trained run: give the run to start from (--base RUN).")
        if self.training.lora_rank > self.model.hidden_dim:
            raise ConfigError(f"The LoRA rank ({self.training.lora_rank}) must be at most the model's width "
                              f"({self.model.hidden_dim}); 4 to 16 is usual.")
        from desktop_llm.core.corpus import CorpusError, check_encoding

        for path, encoding in self.data.encodings:
            try:
                check_encoding(encoding)
            except CorpusError as e:
                raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        def build(klass, values: dict | None):
            values = dict(values or {})
            names = {f.name: f for f in dataclasses.fields(klass)}
            kwargs: dict[str, Any] = {}
            for k, v in values.items():
                if k not in names:
                    continue  # tolerate fields from newer versions
                if isinstance(v, list):
                    v = tuple(v)
                kwargs[k] = v
            return klass(**kwargs)

        return cls(
            name=d.get("name", ""),
            family=d.get("family") or DEFAULT_FAMILY,
            base_run=d.get("base_run") or "",
            base_family=d.get("base_family") or "",
            pooling=d.get("pooling") or "cls",
            data=build(DataConfig, d.get("data")),
            tokenizer=build(TokenizerConfig, d.get("tokenizer")),
            model=build(ModelConfig, d.get("model")),
            training=build(TrainConfig, d.get("training")),
        )

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text("utf-8")))
        except FileNotFoundError:
            raise ConfigError(f"No configuration file at {path}.") from None
        except (ValueError, TypeError) as e:
            raise ConfigError(f"The configuration file {path} is not valid: {e}") from None

    def replace(self, **sections) -> RunConfig:
        return dataclasses.replace(self, **sections)


# Presets: sized so `tiny` trains in seconds on a laptop CPU, `small` is the reference CPU
# workload (benchmarks/), `base` and `large` want a GPU.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256, sequence_length=64),
    "small": ModelConfig(num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, sequence_length=64),
    "base": ModelConfig(num_layers=6, num_heads=6, hidden_dim=384, intermediate_dim=1536, sequence_length=256,
                        dropout=0.1),
    "large": ModelConfig(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                         sequence_length=1024, dropout=0.1),
}
PRESET_NOTES = {
    "tiny": "seconds on any CPU: for trying things out",
    "small": "minutes on a laptop CPU (the reference benchmark)",
    "base": "a GPU recommended (nanoGPT's Shakespeare size)",
    "large": "GPT-2 small's shape: a GPU with 8+ GB",
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass(frozen=True)
class Estimate:
    parameters: int
    flops_per_token: int  # training: 6N + 12·L·T·d (forward + backward), as in the PaLM paper
    weights_bytes: int
    training_bytes: int  # weights + gradients + AdamW moments + activations for one batch
    split: dict = dataclasses.field(default_factory=dict)  # parameters by part: embeddings, attention, ...

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def count_parameters(m: ModelConfig) -> int:
    d, f, L, V, T = m.hidden_dim, m.intermediate_dim, m.num_layers, max(1, m.vocabulary_size), m.sequence_length
    per_layer = (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d  # attention, MLP, two LayerNorms
    total = V * d + L * per_layer + 2 * d
    if m.position_embedding == "learned":
        total += T * d
    if not m.tie_embeddings:
        total += V * d
    return total


def parameter_split(m: ModelConfig, total: int, attention: int | None = None, feed_forward: int | None = None,
                    embeddings: int | None = None) -> dict[str, int]:
    """Where a model's parameters are: token (and position) embeddings, attention, feed-forward,
    and the rest (LayerNorms, heads), by default for L blocks of one attention and one MLP (a GPT,
    BERT). A learner's first surprise: at small widths the embeddings outweigh the blocks."""
    d, f, L, V, T = m.hidden_dim, m.intermediate_dim, m.num_layers, max(1, m.vocabulary_size), m.sequence_length
    if embeddings is None:
        embeddings = V * d * (1 if m.tie_embeddings else 2) + (T * d if m.position_embedding == "learned" else 0)
    attention = L * (4 * d * d + 4 * d) if attention is None else attention
    feed_forward = L * (2 * d * f + f + d) if feed_forward is None else feed_forward
    return {"embeddings": embeddings, "attention": attention, "feed-forward": feed_forward,
            "other": max(0, total - embeddings - attention - feed_forward)}


def estimate(m: ModelConfig, batch_size: int = 12, bytes_per_value: int = 4, parameters: int | None = None,
             attention_layers: float | None = None, split: dict | None = None) -> Estimate:
    """Parameters, FLOPs per token and memory, computed from the shape alone (no TensorFlow).

    The defaults are a GPT's (`count_parameters`, one attention over the context per block); a
    family with another architecture passes its own count and number of attention layers
    (`Family.estimate`: an encoder-decoder has three per block pair)."""
    n = count_parameters(m) if parameters is None else int(parameters)
    d, T, H = m.hidden_dim, m.sequence_length, m.num_heads
    L = m.num_layers if attention_layers is None else attention_layers
    flops = int(6 * n + 12 * L * T * d)
    # Activations kept for the backward pass: ~34·T·d + 5·H·T² values per layer per sequence
    # (Korthikanti et al. 2022), plus logits.
    acts = int(batch_size * (L * (34 * T * d + 5 * H * T * T) + 2 * T * max(1, m.vocabulary_size)))
    return Estimate(
        parameters=n,
        flops_per_token=flops,
        weights_bytes=n * bytes_per_value,
        training_bytes=4 * n * bytes_per_value + acts * bytes_per_value,
        split=split or parameter_split(m, n),
    )


def run_name(given: str | None, paths=()) -> str:
    """A new run's name: the one given, else its corpus' first file or folder name, else "run"
    (the one rule of the command line and the window, so `generate tinyshakespeare` finds it)."""
    if given and given.strip():
        return given.strip()
    for p in paths:
        if Path(p).stem:
            return Path(p).stem
    return "run"


def human_count(n: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


def human_bytes(n: float) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"
