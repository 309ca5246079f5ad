"""Weight snapshots over training (issue 28): "the model at step N", kept sparse within a disk
budget, for the views that need weights and not only the probe's records (the embedding space).

At every probed evaluation the trainer writes `snapshots/step-NNNNNNNN.npz`: every weight by its
Keras path, in float16 (half the bytes; the views read directions and neighbours, which float16
keeps). Then it thins them to the budget: while they take more than it, the snapshot whose
removal leaves the smallest gap in log(step) goes, never the first or the newest. So they stay
dense early, when the model changes fastest, and log-spaced later. A resumed run drops the
snapshots past its checkpoint, as the probes do. These are not checkpoints: no optimizer state,
and nothing resumes from them.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic

NAME = re.compile(r"step-(\d{8})\.npz$")


def folder(run) -> Path:
    return Path(run.folder) / "snapshots"


def _path(run, step: int) -> Path:
    return folder(run) / f"step-{int(step):08d}.npz"


def steps(run) -> list[int]:
    """The kept snapshots' steps, oldest first."""
    if not folder(run).exists():
        return []
    return sorted(int(m.group(1)) for p in folder(run).iterdir() if (m := NAME.match(p.name)))


def usage(run) -> tuple[int, int]:
    """(snapshots kept, their bytes)."""
    kept = steps(run)
    return len(kept), sum(_path(run, s).stat().st_size for s in kept)


def save(run, model, step: int, budget_bytes: int) -> None:
    """This step's weights (float16, by path), written atomically, then thinned to the budget."""
    buf = io.BytesIO()
    np.savez(buf, **{w.path.replace("/", "|"): np.asarray(w.numpy(), np.float16) for w in model.weights})
    folder(run).mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(_path(run, step), buf.getvalue())
    thin(run, budget_bytes)


def thin(run, budget_bytes: int) -> list[int]:
    """Remove snapshots until they fit the budget (see the module's docstring); the steps removed."""
    kept = steps(run)
    sizes = {s: _path(run, s).stat().st_size for s in kept}
    removed = []
    while len(kept) > 2 and sum(sizes[s] for s in kept) > budget_bytes:
        logs = [math.log(max(s, 1)) for s in kept]
        i = min(range(1, len(kept) - 1), key=lambda i: (logs[i + 1] - logs[i - 1], kept[i]))
        _path(run, kept[i]).unlink(missing_ok=True)
        removed.append(kept.pop(i))
    return removed


def truncate(run, step: int) -> None:
    """Drop the snapshots past the checkpoint a run resumes from."""
    for s in steps(run):
        if s > step:
            _path(run, s).unlink(missing_ok=True)


def assign(model, weights: dict[str, np.ndarray], what: str) -> None:
    """Set `model`'s weights to a snapshot's (`load`): by path, or, where the paths differ, by
    order. Keras numbers a model's name when the process built one before ("mean_pooled_classifier_2/
    logits/kernel" in training, without the number in a fresh process); a snapshot keeps the weights
    in the model's order, so the same shapes in the same order are the same weights. Raises
    ValueError ("`what` does not fit its model") otherwise."""
    values = [weights.get(w.path) for w in model.weights]
    if any(v is None or v.shape != tuple(w.shape) for v, w in zip(values, model.weights)):
        values = list(weights.values())
        misfit = next((w.path for v, w in zip(values, model.weights) if v.shape != tuple(w.shape)), None)
        if len(values) != len(model.weights) or misfit:
            raise ValueError(f"{what} does not fit its model ({misfit or 'another number of weights'}).")
    for w, v in zip(model.weights, values):
        w.assign(v.astype(w.dtype))


def load(run, step: int, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """A snapshot's weights by Keras path (float32), or only those named."""
    with np.load(_path(run, step)) as z:
        keys = [k for k in z.files if names is None or k.replace("|", "/") in names]
        return {k.replace("|", "/"): np.asarray(z[k], np.float32) for k in keys}
