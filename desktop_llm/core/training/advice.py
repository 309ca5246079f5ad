"""What a finished run says when it learned little: a learner who trains 50 steps reads a loss of
4.1 and cannot tell that guessing uniformly scores 4.2. The rule is the uniform guess, ln(n) for
n tokens: the first baseline every model must beat (the loss plot draws it too)."""

from __future__ import annotations

import math

CLOSE_TO_GUESSING = 0.9  # a best validation loss above this share of ln(n) learned little


def learned_little(best_val_loss: float | None, choices: int, steps: int) -> str | None:
    """A warning for a run whose best validation loss is still near uniform guessing among
    `choices` answers, or None."""
    if best_val_loss is None or choices < 2 or not math.isfinite(best_val_loss):
        return None
    uniform = math.log(choices)
    if best_val_loss <= CLOSE_TO_GUESSING * uniform:
        return None
    return (f"After {steps:,} steps the best validation loss ({best_val_loss:.2f}) is still close to guessing "
            f"uniformly among {choices:,} tokens (ln {choices:,} = {uniform:.2f}): the run was too short to learn "
            "much. Train longer (more steps), or with a higher learning rate.")
