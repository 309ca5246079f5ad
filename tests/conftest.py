import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The CPU speed probe (core/speed_probe.py) would time each new tiny shape of the suite twice on a
# CPU with bfloat16 instructions: off here (every process the tests start inherits it), on in its own test.
os.environ["DESKTOP_LLM_SPEED_PROBE"] = "0"
# Its answers, and this CPU's measured peak (core/peak.py), cached in a folder of the suite's own
if "DESKTOP_LLM_SPEED_CACHE" not in os.environ:
    import tempfile

    os.environ["DESKTOP_LLM_SPEED_CACHE"] = str(Path(tempfile.mkdtemp(prefix="desktop_llm_speed_")) / "speed.json")

DATA = Path(__file__).resolve().parent.parent / "resources" / "corpora"
SHAKESPEARE = DATA / "tinyshakespeare.txt"
TANGSHI = DATA / "tangshi300.txt"


@pytest.fixture(scope="session")
def shakespeare_small(tmp_path_factory) -> Path:
    """The first 200k characters of tiny Shakespeare (a copy: tests never touch resources/)."""
    p = tmp_path_factory.mktemp("corpus") / "shakespeare_small.txt"
    p.write_text(SHAKESPEARE.read_text("utf-8")[:200_000], encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def probed(tmp_path_factory):
    """(store, run): one tiny GPT run probed at steps 20, 40 and 60, with its snapshots, shared by
    the probes', heads', health's, snapshots' and Learning page's tests (read only, or restored)."""
    from tests.core.test_probes import train_probed

    return train_probed(tmp_path_factory.mktemp("probed"))


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "workspace"
    monkeypatch.setenv("DESKTOP_LLM_HOME", str(h))
    return h


# Modules whose tests train models, spawn the trainer or kill processes: `make test-fast` (-m "not
# slow") leaves them out for a quick loop; `make test` runs everything. Measured with --durations:
# each of these takes 10 s or more per test on 2 cores.
SLOW_MODULES = {
    "test_robustness.py", "test_distributed.py", "test_full_disk.py", "test_translator.py",
    "test_classifier.py", "test_cli.py", "test_cli_messages.py", "test_families.py", "test_embeddings.py",
    "test_export.py", "test_training.py", "test_masked_lm.py", "test_flow.py", "test_family_pages.py",
    "test_fill_mask_page.py", "test_fused_steps.py", "test_events.py", "test_sharing.py", "test_tensorboard.py",
    "test_store_safety.py", "test_distributed_families.py", "test_continue.py", "test_chat.py",
}


# The longest files first, so that `make test`'s workers (one file each at a time) do not end with
# one of them alone on a long file; the order within a file is kept.
LONGEST_FIRST = ("test_flow.py", "test_classifier.py", "test_robustness.py", "test_distributed.py",
                 "test_distributed_families.py", "test_cli.py", "test_continue.py", "test_chat.py",
                 "test_families.py", "test_translator.py", "test_full_disk.py", "test_store_safety.py",
                 "test_family_pages.py", "test_training.py", "test_masked_lm.py", "test_embeddings.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # (sort is stable)
