"""The families' faces in the window, one module each, found by the family's name (core's registry
lists the families): `gui/families/<family>.py` holds what the Generate page shows for that
family's runs (TABS: FamilyPanel classes; HEADER: the page's title and line) and the texts the
other pages say about it. A family that writes text (`Family.writes_text`) also gets the page's
prompt and chat tabs. `panel.py` is the panels' shared base, `similar.py` the encoders' shared
sentence search."""

from __future__ import annotations

import importlib
from types import ModuleType


def family_ui(name: str) -> ModuleType:
    """`gui/families/<name>.py`: every family has one (tests/gui checks it)."""
    return importlib.import_module(f"desktop_llm.gui.families.{name}")
