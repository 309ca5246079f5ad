"""Model families: each owns its builder, its inputs and targets, its loss and metrics, and what
it shows at each evaluation. The trainer (`core.training`) fits whatever the run's family
builds, with the same checkpoints, pause/stop/resume, metrics stream and fault handling.

    gpt/        decoder-only language model, next-token prediction (the default)
    masked_lm/  BERT-style encoder, masked-token prediction (15%: 80% [MASK], 10% random, 10% kept)

A run records its family in config.json (`"family"`); runs made before families existed have
none and load as GPT runs.
"""

from __future__ import annotations

from desktop_llm.core.config import ConfigError


class Family:
    """What the trainer needs from a family (see gpt/ and masked_lm/ for the two that exist)."""

    name = ""
    title = ""

    def model_vocabulary(self, tokenizer_vocabulary: int) -> int:
        """Ids the model embeds: the tokenizer's, plus any special ids the family adds."""
        return tokenizer_vocabulary

    def targets_per_window(self, T: int) -> int:
        """Predicted positions per training window (the loss is their mean)."""
        return T

    def build(self, mcfg, seed: int | None = None):
        raise NotImplementedError

    def compile_args(self) -> dict:
        raise NotImplementedError

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
    from desktop_llm.core.models.gpt import GPT
    from desktop_llm.core.models.masked_lm import MaskedLM

    families = {f.name: f for f in (GPT(), MaskedLM())}
    key = (name or "gpt").replace("-", "_")
    if key not in families:
        raise ConfigError(f"Unknown model family '{name}'. Choose one of: {', '.join(families)}.")
    return families[key]


FAMILY_NAMES = ("gpt", "masked_lm")
