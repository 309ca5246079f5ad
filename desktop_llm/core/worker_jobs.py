"""The window's model work, as the model worker's child runs it (core/worker_process.py): the
Learning page's replays and sentence maps on a run's weight snapshots, the Attention page's maps,
Side by side, Generate, Chat and Evaluate. Runs travel pickled (a store Run is its folder). What
is built is kept for the child's life: a model for the snapshots of each of the last few runs
(core/probes.SnapshotModel), the last checkpoint loaded for inference with its Generator (whose
compiled decoding steps later requests reuse)."""

from __future__ import annotations

from desktop_llm.core.probes import SnapshotModel

_SNAPSHOTS: dict[str, SnapshotModel] = {}  # run folder -> its snapshots' model, the last used last
_KEPT_SNAPSHOT_MODELS = 3
_LOADED: dict = {}  # (run folder, checkpoint) -> (model, tokenizer, checkpoint): the last one only
_GENERATORS: dict = {}  # id(model) -> its Generator: the last one only
_COMPILED: set = set()  # (generator, sampling settings) whose decoding loop is compiled


def backend_name(progress=None, cancelled=None, emit=None) -> str:
    """The Keras backend this child computes with."""
    import keras

    return keras.backend.backend()


def ready() -> None:
    """Before the first model: on TensorFlow, GPU memory taken as needed, never all of it, so that
    a trainer (another child process) shares the card with the window's model work. Here, not at
    the child's start, which then stays quick (a job that loads no model imports no backend)."""
    global _READY
    if not _READY:
        from desktop_llm.core import backend, device

        if backend.current().name == "tensorflow":
            device.gpu_memory_growth()
        _READY = True


_READY = False


def _snapshots(run) -> SnapshotModel:
    ready()
    key = str(run.folder)
    sm = _SNAPSHOTS.pop(key, None)
    if sm is None:
        from desktop_llm.core.models import get_family

        sm = SnapshotModel(run, get_family(run.config.family).prober)
    _SNAPSHOTS[key] = sm  # the newest last; the oldest dropped (this child's one thread made them all)
    while len(_SNAPSHOTS) > _KEPT_SNAPSHOT_MODELS:
        _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
    return sm


def for_inference(run, which: str):
    """(model, tokenizer, checkpoint) of `run` at `which` (core/loading.load_for_inference), kept
    until another is asked for: a page's second request reuses the model and its traced steps."""
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.loading import load_for_inference, snapshot_step

    ready()
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

    ready()
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


def _generator(run, which: str, progress):
    """The Generator of `run` at `which`, kept with its compiled steps (core/generation.py)."""
    from desktop_llm.core.generation import Generator

    progress(0.0, "Loading the model…")
    model, tok, _ckpt = for_inference(run, which)
    if id(model) not in _GENERATORS:
        _GENERATORS.clear()
        _GENERATORS[id(model)] = Generator(model, tok)
    return _GENERATORS[id(model)]


def _say_compiling(progress, gen, cfg) -> None:
    """Say that the first request with these sampling settings compiles (seconds)."""
    key = (id(gen), cfg.temperature, cfg.top_k, cfg.top_p)
    if key in _COMPILED:
        progress(0.0, "Generating…")
    else:
        _COMPILED.add(key)
        progress(0.0, "Compiling the model for these sampling settings (first time only)…")


def generate(run, which: str, prompt: str, cfg, progress=None, cancelled=None, emit=None):
    """The Generate page's completion of `prompt` (a GenerationResult), each token emitted as it comes."""
    gen = _generator(run, which, progress)
    _say_compiling(progress, gen, cfg)
    return gen.generate(prompt, cfg, on_token=emit, cancelled=cancelled)


def next_tokens(run, which: str, prompt: str, k: int = 10, progress=None, cancelled=None, emit=None):
    """The `k` likeliest next tokens after `prompt`, with their probabilities."""
    gen = _generator(run, which, progress)
    progress(0.5, "Reading the prompt…")
    return gen.next_tokens(prompt, k=k)


def chat_reply(run, which: str, history: list, system: str, cfg, message: str | None = None, progress=None,
         cancelled=None, emit=None) -> dict:
    """The model's reply to `message` after `history` ((role, text) pairs), or, where `message` is
    None, another reply in place of the last: {"text", "history", "templated", "stopped_by",
    "dropped"}. The window keeps the conversation; this child keeps only the model."""
    from desktop_llm.core.generation import ChatSession

    gen = _generator(run, which, progress)
    session = ChatSession(gen, system=system)
    session.history = [tuple(turn) for turn in history]
    _say_compiling(progress, gen, cfg)
    if message is None:
        text = session.regenerate(cfg, on_token=emit, cancelled=cancelled)
    else:
        text = session.reply(message, cfg, on_token=emit, cancelled=cancelled)
    return {"text": text, "history": session.history, "templated": session.templated,
            "stopped_by": session.stopped_by, "dropped": session.dropped}


SHOWN_TOKENS = 1500  # the Evaluate page's per-token view of the first tokens: enough to read, cheap to render


def evaluate(run, which: str, source: str, path: str = "", text: str = "", progress=None, cancelled=None,
             emit=None):
    """The Evaluate page's figures of `run` at `which` on its validation split (`source` "val"),
    a file or a text: (the evaluation, (ids, tokens, losses) of its first tokens, the step)."""
    from desktop_llm.core.evaluation import (
        evaluate_text,
        evaluate_windows,
        line_start,
        per_token_losses,
        split_windows,
    )
    from desktop_llm.errors import Cancelled

    progress(0.0, "Loading the model…")
    model, tok, ckpt = for_inference(run, which)
    progress(0.0, "Evaluating…")
    if source == "val":
        from desktop_llm.core.data import TokenData

        data = TokenData(run.data_dir)
        x, y = split_windows(data.val, model.backbone.max_sequence_length)

        def counted(done, total):
            if cancelled():
                raise Cancelled("Cancelled.")
            progress(done / total, "")

        ev = evaluate_windows(model, x, y, progress=counted)
        start = line_start([tok.token_text(int(i)) for i in data.val[:200]])
        ids = [int(i) for i in data.val[start:start + SHOWN_TOKENS]]
        return ev, (ids, [tok.token_text(i) for i in ids], per_token_losses(model, ids).tolist()), ckpt.step
    if source == "file":
        from desktop_llm.core.corpus import Corpus

        corpus = Corpus(paths=[path])
        corpus.require_text()
        text = "".join(corpus.iter_text())
    ev, per = evaluate_text(model, tok, text)
    return ev, (per.token_ids[:SHOWN_TOKENS], per.tokens[:SHOWN_TOKENS], per.losses[:SHOWN_TOKENS]), ckpt.step


def with_model(run, which: str, function: str, stage: str = "", progress=None, cancelled=None, emit=None, **kwargs):
    """`function(model, tokenizer, run, emit=emit, **kwargs)` on `run`'s model at `which`: the work
    of a family's own tab, whose function ("module:name") lives in its family's folder."""
    from desktop_llm.core.worker_process import resolve

    progress(0.0, "Loading the model…")
    model, tok, _ckpt = for_inference(run, which)
    if stage:
        progress(0.5, stage)
    return resolve(function)(model, tok, run, emit=emit, **kwargs)


_INDEX: dict = {}  # (run folder, checkpoint, pooling) -> its sentence index: the last one only


def similar(run, which: str, pooling: str, query: str | None = None, k: int = 10, projector_to: str | None = None,
            progress=None, cancelled=None, emit=None):
    """The Similar sentences tab's work on `run`'s sentence index (built once per checkpoint and
    pooling, kept): (the index, the `k` sentences closest to `query`, or the projector files written
    to the folder `projector_to`)."""
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.inference.embeddings import build_index, embed, write_projector

    progress(0.0, "Loading the model…")
    model, tok, _ckpt = for_inference(run, which)
    ckpt = CheckpointManager(run.checkpoints_dir).find(which)
    key = (str(run.folder), str(ckpt.folder) if ckpt else which, pooling)
    if key not in _INDEX:
        progress(0.3, "Embedding the corpus' sentences (once per run)…")
        _INDEX.clear()
        _INDEX[key] = build_index(model, tok, run, pooling)
    index = _INDEX[key]
    if projector_to is not None:
        return index, write_projector(projector_to, index)
    if not (query or "").strip():
        from desktop_llm.core.config import ConfigError

        raise ConfigError("Type a sentence to search for.")
    return index, index.search(embed(model, tok, [query], pooling)[0], k)


def export(run, fmt: str, out: str, exports_dir, progress=None, cancelled=None, emit=None):
    """The Runs page's Export model: core/export.export_run of `run` as `fmt` into `out`."""
    from desktop_llm.core.export import export_run

    ready()
    return export_run(run, fmt, out=out, exports_dir=exports_dir, report=progress)
