"""Model families: each owns its builder, its inputs and targets, its loss and metrics, and what
it shows at each evaluation. The trainer (`core.training`) fits whatever the run's family
builds, with the same checkpoints, pause/stop/resume, metrics stream and fault handling.

    gpt/        decoder-only language model, next-token prediction (the default)
    masked_lm/  BERT-style encoder, masked-token prediction (15%: 80% [MASK], 10% random, 10% kept)
    classifier/ a classification head fine-tuned on a masked-LM or GPT run (or trained from scratch)
    translator/ an encoder-decoder trained on sentence pairs (teacher forcing; BLEU, exact match)

Adding a family: its folder here (a `Family` subclass as `FAMILY` in its `__init__`), its Generate
panel in `gui/families/`, and one line in `registry.py`. A run records its family in config.json (`"family"`); runs made before families existed have
none and load as GPT runs.
"""

from __future__ import annotations

from desktop_llm.core.models.base import Family
from desktop_llm.core.models.registry import FAMILY_NAMES, families, get_family

__all__ = ["FAMILY_NAMES", "Family", "families", "get_family"]
