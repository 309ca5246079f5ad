"""Validation examples that also occur in training: a model that memorised them scores well on
them without having learned anything that carries over (Tatoeba's pairs repeat across any random
split). Exact duplicates after whitespace is normalised; a family's data drops them from its
validation split and says how many (issue 25)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def leaked(keys: Sequence[str], is_val: np.ndarray) -> np.ndarray:
    """The validation items (is_val) whose normalised key also occurs among the training items."""
    is_val = np.asarray(is_val, bool)
    norm = [normalise(k) for k in keys]
    seen = {k for k, v in zip(norm, is_val) if not v}
    return np.array([bool(v) and k in seen for k, v in zip(norm, is_val)], bool)
