"""Load a trained run for inference: its tokenizer and model weights from a checkpoint."""

from __future__ import annotations

from dataclasses import replace
from itertools import chain

from desktop_llm.core.checkpoints import CheckpointError, CheckpointManager, stored_weights
from desktop_llm.core.tokenizers import load_tokenizer
from desktop_llm.errors import DesktopLLMError


class NoCheckpoint(DesktopLLMError, RuntimeError):
    pass


def require_family(run, family: str | tuple[str, ...], command: str) -> None:
    """One clear line where a command meets a run of another family (generate on a masked LM);
    `family`: the one a command needs, or every one it takes (similar: masked_lm or classifier)."""
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.models import get_family

    have, families = run.config.family, (family,) if isinstance(family, str) else tuple(family)
    if have not in families:
        hint = get_family(have).command
        needs = " or ".join(families)
        raise ConfigError(f"Run {run.id} is a {have} run; `{command}` needs a {needs} run"
                          + (f" (try `desktop-llm {hint}`)." if hint else "."))


def load_run_tokenizer(folder):
    """A run's tokenizer, of any kind, a family's own included (the families register theirs)."""
    from desktop_llm.core.models import families

    families()
    return load_tokenizer(folder)


def snapshot_step(which: str) -> int | None:
    """The step `which` names ("1200" or "step:1200": a weight snapshot), None for "best" / "latest"."""
    text = str(which).removeprefix("step:")
    return int(text) if text.isdigit() else None


def load_at_step(run, step: int):
    """(model, tokenizer, checkpoint) of the run as it was at `step`: one of its weight snapshots
    (core/snapshots.py) in the model its latest checkpoint builds. The checkpoint returned names
    the snapshot's file and step."""
    from desktop_llm.core import snapshots
    from desktop_llm.core.checkpoints import Checkpoint

    kept = snapshots.steps(run)
    if step not in kept:
        listed = ", ".join(f"{s:,}" for s in kept[:12]) + (" …" if len(kept) > 12 else "")
        raise NoCheckpoint(f"Run {run.id} keeps no snapshot at step {step:,}"
                           + (f"; it keeps steps {listed}." if kept else ": it keeps none (a run trained before "
                              "snapshots, or with --snapshot-budget 0)."))
    model, tok, _ = load_for_inference(run, "latest")
    try:
        snapshots.assign(model, snapshots.load(run, step), f"The snapshot at step {step:,} of run {run.id}")
    except ValueError as e:
        raise NoCheckpoint(str(e)) from None
    return model, tok, Checkpoint(folder=snapshots.folder(run) / f"step-{step:08d}.npz", state={"step": step})


def load_for_inference(run, which: str = "best"):
    """(model, tokenizer, checkpoint) of a run folder; `which` is "best", "latest" or a step
    that a weight snapshot keeps ("1200", "step:1200").

    Weights load into a model built from the run's own config.json (no code from the files runs).
    A checkpoint whose weights do not fit or do not load is skipped for the previous good one, as
    training's resume does.
    """
    import keras

    from desktop_llm.core.models import get_family

    if snapshot_step(which) is not None:
        return load_at_step(run, snapshot_step(which))
    family = get_family(run.config.family)
    manager = CheckpointManager(run.checkpoints_dir)
    ckpts = manager.verified(which)
    first = next(ckpts, None)  # first: a run that failed at once has no tokenizer either, and this says why
    if first is None:
        if manager.notes:
            why = manager.notes[0].removeprefix("Skipped ").removesuffix("; using an earlier one.")
            raise NoCheckpoint(f"Run {run.id} has no usable checkpoint ({why[:200]}).")
        raise NoCheckpoint(f"Run {run.id} has no checkpoint yet: train it for at least one evaluation interval.")
    tok = load_tokenizer(run.tokenizer_dir)
    keras.mixed_precision.set_global_policy("float32")
    cfg = run.config
    mcfg = replace(cfg.model, dropout=0.0, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, cfg))
    # Checked before building: a config that claims 10,000 layers or a width of 2^20 against small
    # weights is refused at once, not built for minutes or until memory runs out.
    need = family.estimate(mcfg, cfg=cfg).parameters
    model = None
    for ckpt in chain([first], ckpts):
        try:
            if stored_weights(ckpt.weights_path) < need:
                continue
        except CheckpointError:
            continue
        if model is None:
            model = family.build_for_run(run, cfg, mcfg)
            # keras-hub compiles a new task with a default optimizer, and the checkpoint's weights
            # file also holds the training optimizer's state: Keras would try to load it into
            # that unbuilt optimizer and warn "Skipping variable loading for optimizer" on every
            # load. Inference needs no optimizer: without one, only the model's own weights are read.
            model.optimizer = None
        try:
            model.load_weights(str(ckpt.weights_path))
        except (ValueError, OSError):  # weights of another shape (a translator from before BART)
            continue
        return model, tok, ckpt
    raise NoCheckpoint(_misfit(run, model, tok, mcfg, first))


def _misfit(run, model, tok, mcfg, ckpt) -> str:
    """Why no checkpoint fits the model the run's files describe, naming the sizes that differ: a
    tokenizer replaced by one of another vocabulary read "made by an earlier version?"."""
    from collections import Counter

    from desktop_llm.core.checkpoints import stored_shapes

    stored = Counter(stored_shapes(ckpt.weights_path))
    built = Counter(tuple(int(d) for d in w.shape) for w in model.weights) if model is not None else Counter()
    only_built, only_stored = list((built - stored).elements()), list((stored - built).elements())
    vocab, extra = mcfg.vocabulary_size, mcfg.vocabulary_size - tok.vocabulary_size
    for b in only_built:
        for s in only_stored:
            differs = [i for i in range(len(b)) if len(s) == len(b) and s[i] != b[i]]
            if len(differs) == 1 and b[differs[0]] == vocab:
                return (f"Run {run.id}'s tokenizer has {tok.vocabulary_size:,} tokens, but its checkpoints were trained "
                        f"with {s[differs[0]] - extra:,}: its tokenizer folder was replaced or edited. Put back the "
                        "run's own tokenizer, or train the run again.")
    if only_built and only_stored:
        return (f"Run {run.id}'s checkpoints do not fit the {run.config.family} model its config.json describes "
                f"(weights of shape {only_stored[0]} stored, {only_built[0]} described): was config.json edited? "
                "Train the run again.")
    return (f"Run {run.id}'s checkpoints do not fit the {run.config.family} model its config.json describes "
            "(they hold fewer weights than it needs): was config.json edited? Train the run again.")
