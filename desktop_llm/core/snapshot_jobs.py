"""The window's work on a run's weight snapshots, as the model worker's child runs it
(core/worker_process.py): replaying prompts on the timeline, mapping an encoder's sentences. One
model per run is built on first use and kept for the child's life (core/probes.SnapshotModel)."""

from __future__ import annotations

from desktop_llm.core.probes import SnapshotModel

_KEPT: dict[str, SnapshotModel] = {}


def _model(run) -> SnapshotModel:
    key = str(run.folder)
    if key not in _KEPT:
        from desktop_llm.core.models import get_family

        _KEPT[key] = SnapshotModel(run, get_family(run.config.family).prober)
    return _KEPT[key]


def replay(run, wanted: list[str], progress=None, cancelled=None, emit=None) -> list[dict]:
    """core/probes.replay of `wanted` on `run` (a store Run: it travels pickled, as its folder)."""
    from desktop_llm.core import probes

    sm = _model(run)
    return probes.replay(sm.run, wanted, sm.prober_of, progress, cancelled, sm)


def sentences(run, progress=None, cancelled=None, emit=None) -> dict:
    """core/embedding_space.sentence_space of `run`."""
    from desktop_llm.core.embedding_space import sentence_space

    sm = _model(run)
    return sentence_space(sm.run, progress=progress, cancelled=cancelled, snapshot_model=sm)
