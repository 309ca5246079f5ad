"""Where the bundled sample corpora live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "resources"
CORPORA = ROOT / "corpora"


def sample_corpus(name: str = "tinyshakespeare.txt") -> Path:
    return CORPORA / name
