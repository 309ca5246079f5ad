import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA = Path(__file__).resolve().parent.parent / "resources" / "corpora"
SHAKESPEARE = DATA / "tinyshakespeare.txt"
TANGSHI = DATA / "tangshi300.txt"


@pytest.fixture(scope="session")
def shakespeare_small(tmp_path_factory) -> Path:
    """The first 200k characters of tiny Shakespeare (a copy: tests never touch resources/)."""
    p = tmp_path_factory.mktemp("corpus") / "shakespeare_small.txt"
    p.write_text(SHAKESPEARE.read_text("utf-8")[:200_000], encoding="utf-8")
    return p


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "workspace"
    monkeypatch.setenv("DESKTOP_LLM_HOME", str(h))
    return h
