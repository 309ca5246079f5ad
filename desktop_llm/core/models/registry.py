"""The model families, one line each: everything generic (the trainer, the commands, the pages)
finds a family here by its name. The families are imported by name so that none of them, nor
this list, imports another (import-linter's contracts in pyproject.toml check it)."""

from __future__ import annotations

import importlib
from functools import cache

from desktop_llm.core.config import DEFAULT_FAMILY, ConfigError
from desktop_llm.core.models.base import Family

# One line per family: its folder under core/models/ (the order of menus and `--family` choices).
FAMILY_NAMES = ("gpt", "masked_lm", "classifier", "translator", "chat")


@cache
def families() -> tuple[Family, ...]:
    """Every family, in FAMILY_NAMES' order (each folder's `FAMILY`)."""
    return tuple(importlib.import_module(f"desktop_llm.core.models.{name}").FAMILY for name in FAMILY_NAMES)


def get_family(name: str | None) -> Family:
    """The family of that name (a run without one is a GPT run); an unknown name is one line."""
    key = (name or DEFAULT_FAMILY).replace("-", "_")
    for family in families():
        if family.name == key:
            return family
    raise ConfigError(f"Unknown model family '{name}'. Choose one of: {', '.join(FAMILY_NAMES)}.")
