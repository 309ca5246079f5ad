"""Where the bundled files live: the sample corpora, their attribution and the app icons.

They are package data of the installed package `desktop_llm._resources` (the repository's top-level
`resources/` folder, mapped into the package by pyproject.toml), found with importlib.resources, so
they work from a wheel as well as from a source checkout (editable install or not).
"""

from __future__ import annotations

from importlib import resources as _importlib_resources
from pathlib import Path


def _root() -> Path:
    try:
        root = Path(str(_importlib_resources.files("desktop_llm._resources")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError, ValueError):
        pass  # a source checkout run without installing (python -m from the repository)
    return Path(__file__).resolve().parent.parent / "resources"


ROOT = _root()
CORPORA = ROOT / "corpora"
ICONS = ROOT / "icons"
LABELLED = ROOT / "labelled"  # classifier examples: one folder per task, one file per class
PARALLEL = ROOT / "parallel"  # translator examples: sentence pairs
CONVERSATIONS = ROOT / "conversations"  # chat examples
CJK_FONT = ROOT / "fonts" / "wqy-microhei.ttc"  # gui/fonts.py: Chinese text where the system has no font for it
ATTRIBUTION = ROOT / "ATTRIBUTION.md"


def sample_corpus(name: str = "tinyshakespeare.txt") -> Path:
    return CORPORA / name


def labelled_example(name: str = "poem-prose-drama") -> Path:
    """A bundled labelled task for the classifier (poem / prose / drama: one text file per class)."""
    return LABELLED / name


def parallel_example(name: str = "tatoeba-cmn-eng-5k.tsv") -> Path:
    """Bundled sentence pairs for the translator (English, Chinese, attribution; CC-BY 2.0 FR)."""
    return PARALLEL / name


def chat_example(name: str = "chat-example.jsonl") -> Path:
    """Bundled conversations for the chat family: Tatoeba pairs as translation requests, Tang poems
    as poem requests (CC-BY 2.0 FR and MIT; each line keeps its source)."""
    return CONVERSATIONS / name


def icon_path(size: int | None = None) -> Path:
    """The app icon: the SVG, or the PNG rendered at `size` pixels (16, 32, 48, 64, 128, 256)."""
    return ICONS / ("desktop_llm.svg" if size is None else f"desktop_llm-{size}.png")


ICON_SIZES = (16, 32, 48, 64, 128, 256)
