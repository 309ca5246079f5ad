"""Run store: run folders plus an SQLite catalog of them (no TensorFlow, no Qt)."""

from desktop_llm.store.runs import Run, RunStore, StoreError, default_home

__all__ = ["Run", "RunStore", "StoreError", "default_home"]
