"""One base class for the errors desktop_llm raises on purpose, and one cancellation."""

import importlib

from desktop_llm.errors import Cancelled, DesktopLLMError

EXPECTED = [("desktop_llm.core.config", "ConfigError"), ("desktop_llm.core.corpus", "CorpusError"),
            ("desktop_llm.core.tokenizers", "TokenizerError"), ("desktop_llm.core.checkpoints", "CheckpointError"),
            ("desktop_llm.core.loading", "NoCheckpoint"), ("desktop_llm.core.training", "TrainingFailed"),
            ("desktop_llm.core.generation", "SamplingError"), ("desktop_llm.core.export", "ExportError"),
            ("desktop_llm.store.runs", "StoreError"), ("desktop_llm.cli", "CliError")]


def test_every_expected_error_shares_one_base_class():
    for module, name in EXPECTED:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, DesktopLLMError), f"{module}.{name}"


def test_one_cancellation_for_engine_and_window():
    from desktop_llm.core import data

    assert data.Cancelled is Cancelled and issubclass(Cancelled, DesktopLLMError)
    from desktop_llm.gui import workers  # Qt is importable in the test environment

    assert workers.Cancelled is Cancelled


def test_one_out_of_memory_rule_for_trainer_and_commands(tmp_path):
    """The trainer, the command line and the window tell an allocation failure by one rule
    (errors.out_of_memory): the trainer records it and asks to exit at once (a possibly corrupt heap)."""
    import gc

    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.training.failures import classify_failure
    from desktop_llm.errors import out_of_memory
    from desktop_llm.store import RunStore

    assert out_of_memory(MemoryError()) and out_of_memory(ValueError("std::bad_alloc in the allocator"))
    assert not out_of_memory(ValueError("shapes (3,) and (4,) do not match"))
    run = RunStore(tmp_path).create(RunConfig(name="r"))
    events = []
    try:
        st = classify_failure(run, RuntimeError("tf.data: MemoryError: Unable to allocate 8 GiB"), events.append)
    finally:
        gc.enable()
    assert st["exit_now"] and st["status"] == "failed" and st["message"].startswith("Out of memory")
    assert events[-1]["type"] == "failed" and "smaller" in events[-1]["suggestion"]


def test_a_run_that_learned_little_says_so():
    """Loss 4.1 after 50 steps reads as a number; beside ln(65) = 4.17 it reads as "almost nothing"."""
    import math

    from desktop_llm.core.training.advice import learned_little

    note = learned_little(4.1, 65, 50)
    assert note and "After 50 steps" in note and "ln 65 = 4.17" in note and "Train longer" in note
    assert learned_little(0.9 * math.log(65) - 1e-9, 65, 50) is None  # well below guessing: it learned
    assert learned_little(None, 65, 50) is None and learned_little(float("nan"), 65, 5) is None
