"""Model families: each owns its builder, its inputs and targets, its loss and metrics, and what
it shows at each evaluation. The trainer (`core.training`) fits whatever the run's family
builds, with the same checkpoints, pause/stop/resume, metrics stream and fault handling.

    gpt/        decoder-only language model, next-token prediction (the default)
    masked_lm/  BERT-style encoder, masked-token prediction (15%: 80% [MASK], 10% random, 10% kept)
    classifier/ a classification head fine-tuned on a masked-LM or GPT run (or trained from scratch)
    translator/ an encoder-decoder trained on sentence pairs (teacher forcing; BLEU, exact match)

A run records its family in config.json (`"family"`); runs made before families existed have
none and load as GPT runs.
"""

from __future__ import annotations

from desktop_llm.core.config import ConfigError


class Family:
    """What the trainer needs from a family (see gpt/ and masked_lm/ for the two that exist)."""

    name = ""
    title = ""

    def model_vocabulary(self, tokenizer_vocabulary: int, cfg=None) -> int:
        """Ids the model embeds: the tokenizer's, plus any special ids the family adds."""
        return tokenizer_vocabulary

    def targets_per_window(self, T: int) -> int:
        """Predicted positions per training window (the loss is their mean)."""
        return T

    def tokenizer_texts(self, cfg):
        """The text a new tokenizer learns from (None: the corpus as the data page reads it)."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    def train_tokenizer(self, cfg):
        """A tokenizer the family trains its own way (a translator's pair), or None: the default."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    def tokenizer_source(self, cfg) -> str | None:
        """A tokenizer folder the run must copy (a fine-tune reads text as its base did), or None."""
        return None

    def prepare_data(self, run, cfg, tok, emit):
        """The run's training data, made once into its data folder (token windows by default)."""
        from desktop_llm.core.training import ensure_data

        data = ensure_data(run, cfg, tok, emit)
        data.check(cfg.model.sequence_length)
        return data

    def build(self, mcfg, seed: int | None = None):
        raise NotImplementedError

    def build_for_run(self, run, cfg, mcfg, seed: int | None = None):
        """The model of this run (a family may need more than the shape: the classes, the base)."""
        return self.build(mcfg, seed=seed)

    def initialise(self, model, cfg, mcfg, emit) -> None:
        """Set the weights a fresh run starts from (a fine-tune: its base run's)."""

    def set_frozen(self, model, frozen: bool) -> None:
        """Freeze or thaw the pretrained part (`training.freeze_steps`); nothing by default."""

    def eval_extras(self, ctx) -> dict:
        """More fields for each evaluation event (a classifier's macro-F1 and confusion matrix)."""
        return {}

    def compile_args(self) -> dict:
        """Loss and metrics for `model.compile`: cross-entropy over logits, and accuracy."""
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def train_dataset(self, data, start_step: int, max_steps: int, batch: int, T: int, seed: int,
                      vocabulary: int):
        """tf.data batches for steps start_step.. (deterministic per step: resuming repeats them)."""
        raise NotImplementedError

    def val_dataset(self, data, n_batches: int, batch: int, T: int, vocabulary: int):
        raise NotImplementedError

    def sample(self, ctx) -> str:
        """Text shown with each evaluation (a generated continuation, filled masks...)."""
        return ""


def get_family(name: str | None) -> Family:
    from desktop_llm.core.models.classifier import Classifier
    from desktop_llm.core.models.gpt import GPT
    from desktop_llm.core.models.masked_lm import MaskedLM
    from desktop_llm.core.models.translator import Translator

    families = {f.name: f for f in (GPT(), MaskedLM(), Classifier(), Translator())}
    key = (name or "gpt").replace("-", "_")
    if key not in families:
        raise ConfigError(f"Unknown model family '{name}'. Choose one of: {', '.join(families)}.")
    return families[key]


FAMILY_NAMES = ("gpt", "masked_lm", "classifier", "translator")
