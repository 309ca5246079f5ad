"""The window's model work, as the model worker's child runs it (core/worker_process.py): the
Learning page's replays and sentence maps on a run's weight snapshots, and the Attention page's
maps. Runs travel pickled (a store Run is its folder). What is built is kept for the child's life:
one model per run for its snapshots (core/probes.SnapshotModel), and the last checkpoint loaded
for inference, as the window's session kept them when this work ran in its own process."""

from __future__ import annotations

from desktop_llm.core.probes import SnapshotModel

_SNAPSHOTS: dict[str, SnapshotModel] = {}
_LOADED: dict = {}  # (run folder, checkpoint) -> (model, tokenizer, checkpoint): the last one only


def _snapshots(run) -> SnapshotModel:
    key = str(run.folder)
    if key not in _SNAPSHOTS:
        from desktop_llm.core.models import get_family

        _SNAPSHOTS[key] = SnapshotModel(run, get_family(run.config.family).prober)
    return _SNAPSHOTS[key]


def for_inference(run, which: str):
    """(model, tokenizer, checkpoint) of `run` at `which` (core/loading.load_for_inference), kept
    until another is asked for: a page's second request reuses the model and its traced steps."""
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.loading import load_for_inference, snapshot_step

    ckpt = None if snapshot_step(which) is not None else CheckpointManager(run.checkpoints_dir).find(which)
    key = (str(run.folder), str(ckpt.folder) if ckpt else which)
    if key not in _LOADED:
        _LOADED.clear()  # one model in memory
        _LOADED[key] = load_for_inference(run, which)
    return _LOADED[key]


def replay(run, wanted: list[str], progress=None, cancelled=None, emit=None) -> list[dict]:
    """core/probes.replay of `wanted` on `run`'s weight snapshots."""
    from desktop_llm.core import probes

    sm = _snapshots(run)
    return probes.replay(sm.run, wanted, sm.prober_of, progress, cancelled, sm)


def sentences(run, progress=None, cancelled=None, emit=None) -> dict:
    """core/embedding_space.sentence_space of `run`."""
    from desktop_llm.core.embedding_space import sentence_space

    return sentence_space(run, progress=progress, cancelled=cancelled, snapshot_model=_snapshots(run))


def attention(run, which: str, text: str, kind: str = "self", progress=None, cancelled=None, emit=None):
    """(the family's attention maps of `text`, the checkpoint's step): the Attention page's."""
    from desktop_llm.core.models import get_family

    progress(0.0, "Loading the model…")
    model, tok, ckpt = for_inference(run, which)
    progress(0.0, "Computing attention (the first time also builds the model's layers)…")
    return get_family(run.config.family).attention_maps(model, tok, text, kind), ckpt.step


def side_by_side(targets: list, prompt: str, cfg, progress=None, cancelled=None, emit=None) -> list[int]:
    """One prompt and seed (`cfg`, a SamplingConfig) through each (run, checkpoint) of `targets` in
    turn: emits (column, the prompt, its step) as a column starts, then (column, a token's text,
    None) per token; returns each column's step."""
    from desktop_llm.core.generation import Generator
    from desktop_llm.core.loading import load_for_inference

    steps = []
    for i, (run, which) in enumerate(targets):
        if cancelled():
            break
        progress(i / len(targets), f"Column {i + 1}: loading the model…")
        model, tok, ckpt = load_for_inference(run, which)
        steps.append(ckpt.step)
        emit((i, prompt, ckpt.step))
        Generator(model, tok).generate(prompt, cfg, on_token=lambda t, i=i: emit((i, t.text, None)),
                                       cancelled=cancelled)
    return steps
