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
