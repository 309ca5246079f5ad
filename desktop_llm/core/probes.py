"""Probes: what the model learned, and when (issue 28). At every evaluation the trainer runs one
fixed probe, the same inputs every time, chosen once at run start from the validation split, and
appends its small result to the run folder; the views read these records, never checkpoints.

- `probes/spec.json`: the probe, written once (atomically): a few prompts (the first words of
  validation lines, in the corpus's own language) and one validation window of token ids.
- `probes/prompts.json`: the user's own prompts, where they edited them (the Learning page, `desktop-llm
  probes --prompt`): the trainer reads them at each evaluation, and `replay` runs them on the weight
  snapshots of the steps before (core/snapshots.py).
- `probes/records.jsonl`: one record per evaluation (one `write` per line, fsynced, as the metrics
  are; a resumed run drops the records past its checkpoint, so SIGKILL loses at most the tail):
  each prompt's greedy continuation with each token's surprise, the probe window's loss per
  token, the mean loss at each position of the context (the in-context learning curve), each
  attention head's scores (core/heads.py: previous-token, induction, sink...) and the training's
  health per layer (core/health.py).

The analyses here are plain NumPy over those records, shared by the Learning page and
`desktop-llm probes`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core.prober import CONTINUATION_TOKENS, Prober, log_softmax  # noqa: F401 - the probes' API
from desktop_llm.errors import DesktopLLMError


class ProbeError(DesktopLLMError):
    """Prompts the timeline cannot use, or a run with nothing to run them on."""

PROMPTS = 4  # prompts of the learning timeline
PROMPT_CHARS = 24  # at most this much of a validation line starts a prompt
POSITION_TOKENS = 4096  # validation tokens averaged for the loss by position: 64 windows of 64 (8 were noise)
LEARNED = 1.0  # nats: a token is "learned" once its loss stays below this (probability > 0.37)
WORSE = 0.7  # nats: a token whose final loss is this far above its best "got worse"
MAX_PROMPTS = 8  # the user's own, at most
MAX_PROMPT_CHARS = 200
HEAD_TOKENS = 128  # the probe text's first tokens whose attention maps score the heads
GRADIENT_WINDOWS = 8  # of the loss-by-position windows, those whose loss's gradient gives the health's norms


def folder(run) -> Path:
    return Path(run.folder) / "probes"


def spec_path(run) -> Path:
    return folder(run) / "spec.json"


def records_path(run) -> Path:
    return folder(run) / "records.jsonl"


def prompts_path(run) -> Path:
    return folder(run) / "prompts.json"


def prompts(run, spec: dict | None) -> list[str]:
    """The prompts of the learning timeline: the user's own where they set them, else the probe's."""
    try:
        own = atomic_json(prompts_path(run)).get("prompts")
    except (OSError, ValueError):
        own = None
    return list(own) if own else list((spec or {}).get("prompts") or [])


def set_prompts(run, texts: list[str]) -> list[str]:
    """Keep the user's prompts for the timeline (written atomically; an empty list goes back to the
    probe's own). Raises ProbeError, in one line, on prompts it cannot use."""
    texts = [t for t in (str(x).strip("\n") for x in texts) if t.strip()]
    if len(texts) > MAX_PROMPTS:
        raise ProbeError(f"At most {MAX_PROMPTS} prompts, please ({len(texts)} given).")
    long = next((t for t in texts if len(t) > MAX_PROMPT_CHARS), None)
    if long is not None:
        raise ProbeError(f"A prompt may be {MAX_PROMPT_CHARS} characters at most: “{long[:40]}…” has {len(long)}.")
    if not texts:
        prompts_path(run).unlink(missing_ok=True)
        return prompts(run, spec(run))
    prompts_path(run).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(prompts_path(run), {"prompts": texts})
    return texts


def same_prompts(recs: list[dict], spec: dict | None, wanted: list[str]) -> list[dict]:
    """The records whose continuations are of `wanted` (older records: of the probe's own prompts)."""
    own = list((spec or {}).get("prompts") or [])
    return [r for r in recs if list(r.get("prompts") or own) == list(wanted)]


class SnapshotModel:
    """A run's model, built once, into which each weight snapshot (core/snapshots.py) is loaded in
    turn: what replays prompts and maps sentences over training. Kept and reused by the model
    worker (core/worker_jobs.py) rather than built per request."""

    def __init__(self, run, prober_of=None):
        self.run = run
        self.prober_of = prober_of  # `Family.prober`, for the timeline
        self.model = self.tok = self._prober = None

    def steps(self) -> list[int]:
        from desktop_llm.core import snapshots

        kept = snapshots.steps(self.run)
        if not kept:
            raise ProbeError(f"Run {self.run.id} keeps no weight snapshots to run this on (trained before them, or "
                             "with --snapshot-budget 0): its later evaluations will have it.")
        return kept

    def at(self, step: int):
        """(model, tokenizer) with the weights of `step`."""
        from desktop_llm.core import snapshots
        from desktop_llm.core.loading import load_at_step

        if self.model is None:
            self.model, self.tok, _ = load_at_step(self.run, step)
            return self.model, self.tok
        try:
            snapshots.assign(self.model, snapshots.load(self.run, step), f"The snapshot at step {step:,}")
        except ValueError as e:
            from desktop_llm.core.loading import NoCheckpoint

            raise NoCheckpoint(str(e)) from None
        return self.model, self.tok

    def prober(self):
        if self._prober is None:
            self._prober = self.prober_of(self.model)
        return self._prober


def replay(run, wanted: list[str], prober_of, progress=None, cancelled=None,
           snapshot_model: SnapshotModel | None = None) -> list[dict]:
    """Records of `wanted`'s timeline at each step the run keeps a weight snapshot of
    (core/snapshots.py), as the probe would have taken them then: [{"step", "prompts",
    "continuations"}]. `prober_of(model)`: the run's family's prober (`Family.prober`);
    `progress(fraction, text)` and `cancelled()` as the GUI's workers pass them;
    `snapshot_model`: one to reuse (the model worker keeps one per run)."""
    sm = snapshot_model if snapshot_model is not None else SnapshotModel(run, prober_of)
    sm.prober_of = sm.prober_of or prober_of
    kept = sm.steps()
    T = run.config.model.sequence_length
    found = spec(run) or {}
    out = []
    for n, step in enumerate(kept):
        if cancelled is not None and cancelled():
            break
        if progress is not None:
            progress(n / len(kept), f"step {step:,} ({n + 1} of {len(kept)})")
        _model, tok = sm.at(step)
        sm.prober().spec = found
        banned = [i for i in getattr(tok, "placeholder_ids", []) if 0 <= i < tok.vocabulary_size]
        out.append({"step": step, "prompts": list(wanted), "continuations": sm.prober().timeline(tok, wanted, T, banned)})
    return out


def choose(tok, val: np.ndarray, sequence_length: int, prompts: list[str] | None = None) -> dict:
    """The run's probe, from its validation tokens: `prompts` (a family's own), else prompts that
    start validation lines (their first words, cut at a space where there is one), one window of
    T + 1 ids, and the starts of the windows averaged by position."""
    val = np.asarray(val)
    n = len(val)
    prompts = [p[:MAX_PROMPT_CHARS] for p in prompts if p.strip()][:PROMPTS] if prompts else []
    for k in range(PROMPTS * 3 if not prompts else 0):  # more places than prompts: some give an empty or repeated line
        if len(prompts) == PROMPTS or n < 2:
            break
        at = int(k * max(1, n - 200) / (PROMPTS * 3))
        text = tok.decode([int(i) for i in val[at: at + 200]])
        lines = [ln.strip() for ln in text.split("\n")[1:-1] if len(ln.strip()) >= 4]
        if not lines:
            continue
        line = lines[0][:PROMPT_CHARS]
        if " " in line[8:]:
            line = line[: 8 + line[8:].rindex(" ")]
        if line and line not in prompts:
            prompts.append(line)
    T = int(sequence_length)
    window = [int(i) for i in val[: T + 1]] if n > T + 1 else [int(i) for i in val]
    windows = min(64, max(8, POSITION_TOKENS // max(1, T)))
    starts = np.linspace(0, max(0, n - T - 2), windows).astype(int).tolist() if n > T + 1 else []
    return {"prompts": prompts, "window": window, "starts": starts, "sequence_length": T,
            "repeat": _repeat(val, T)}


def _repeat(val, T: int) -> list[int]:
    """The head atlas's repeated random sequence, of tokens from the validation text (core/heads.py)."""
    from desktop_llm.core.heads import repeated_sequence

    return repeated_sequence(np.asarray(val)[:100_000], T)


def ensure_spec(run, tok, val, sequence_length: int, prompts: list[str] | None = None, extra: dict | None = None) -> dict:
    """The run's probe: read, or chosen now and kept (a resumed run probes what it probed before;
    one chosen before the head atlas gets its repeated sequence added). `prompts`, `extra`: the
    family's own (`Family.probe_prompts`, `probe_extra`)."""
    path = spec_path(run)
    if path.exists():
        spec = atomic_json(path)
        if "repeat" in spec:
            return spec
        spec["repeat"] = _repeat(val, spec["sequence_length"])
    else:
        spec = {**choose(tok, val, sequence_length, prompts), **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, spec)
    return spec


def atomic_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text("utf-8"))


def measure(prober: Prober, tok, val: np.ndarray, spec: dict, step: int | None = None,
            training_gradients: dict | None = None) -> dict:
    """One evaluation's probe record (without its step); with `step`, the training's health too,
    its gradient norms from `training_gradients` (the training step's, core/health.py) or else
    from a backward pass on a few of the probe's windows."""
    T = spec["sequence_length"]
    prober.spec = spec  # what a family's prober may need besides the prompts (a classifier's classes)
    banned = [i for i in getattr(tok, "placeholder_ids", []) if 0 <= i < tok.vocabulary_size]
    record: dict = {"prompts": list(spec["prompts"]), "continuations": prober.timeline(tok, spec["prompts"], T, banned)}
    window = np.asarray(spec["window"], np.int32)
    starts = spec["starts"] if prober.reads_tokens else []
    windows = np.stack([np.asarray(val)[s: s + T + 1] for s in starts]).astype(np.int32) if starts else None
    if windows is not None and len(window) == windows.shape[1]:  # one call, one traced shape (0.35 s once)
        losses = prober.token_losses(np.concatenate([window[None], windows]))
        record["token_losses"] = [round(float(x), 3) for x in losses[0]]
        record["position_loss"] = [round(float(x), 3) for x in losses[1:].mean(0)]
    elif prober.reads_tokens:
        if len(window) > 1:
            record["token_losses"] = [round(float(x), 3) for x in prober.token_losses(window[None])[0]]
        if windows is not None:
            record["position_loss"] = [round(float(x), 3) for x in prober.token_losses(windows).mean(0)]
    text, xs = window[: min(len(window) - 1, HEAD_TOKENS)], None
    if len(window) > 2 and prober.reads_heads:
        from desktop_llm.core import heads

        repeat = np.asarray(spec.get("repeat") or [], np.int32)
        xs = prober.internals.inputs(text)  # one forward pass for the heads and the health
        record["heads"] = heads.scores(prober.internals.maps(xs), text,
                                       prober.attention(repeat) if len(repeat) else None, repeat, prober.causal)
    if step is not None:
        from desktop_llm.core import health

        grads = prober.gradients(windows[:: max(1, len(windows) // GRADIENT_WINDOWS)][:GRADIENT_WINDOWS]) \
            if windows is not None and training_gradients is None else None
        record["health"], prober.previous = health.measure(prober.model, text, prober.previous, step, xs, grads,
                                                           causal=prober.causal, training_gradients=training_gradients,
                                                           activity=xs is not None)
    return record


def append(run, step: int, record: dict) -> None:
    import json

    folder(run).mkdir(parents=True, exist_ok=True)
    atomic.append_line(records_path(run), json.dumps({"step": int(step), **record}, ensure_ascii=False))


def truncate(run, step: int) -> None:
    """Drop the records past the checkpoint a run resumes from (no evaluation appears twice)."""
    import json

    path = records_path(run)
    if path.exists():
        kept = [r for r in atomic.read_jsonl(path) if r.get("step", 0) <= step]
        atomic.write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def records(run) -> list[dict]:
    return atomic.read_jsonl(records_path(run)) if records_path(run).exists() else []


def spec(run) -> dict | None:
    return atomic_json(spec_path(run)) if spec_path(run).exists() else None


# ----------------------------------------------------------------------------- analyses
def loss_matrix(recs: list[dict]) -> tuple[list[int], np.ndarray]:
    """(steps, losses (evaluations, tokens)) of the probe window's tokens."""
    rows = [r for r in recs if r.get("token_losses")]
    if not rows:
        return [], np.zeros((0, 0))
    width = min(len(r["token_losses"]) for r in rows)
    return [r["step"] for r in rows], np.array([r["token_losses"][:width] for r in rows], np.float64)


def learned_when(steps: list[int], losses: np.ndarray) -> dict:
    """Per token of the probe window: the step from which its loss stays below LEARNED (None:
    never), and whether it got worse (its last loss WORSE nats above its best)."""
    if losses.size == 0:
        return {"learned_at": [], "got_worse": []}
    below = losses < LEARNED
    learned_at: list[int | None] = []
    for j in range(losses.shape[1]):
        col = below[:, j]
        if not col[-1]:
            learned_at.append(None)
            continue
        last_above = np.flatnonzero(~col)
        learned_at.append(steps[int(last_above[-1]) + 1] if last_above.size else steps[0])
    worse = (losses[-1] - losses.min(0)) > WORSE
    return {"learned_at": learned_at, "got_worse": worse.tolist()}


def shortened(prompt: str, width: int) -> str:
    """A prompt on one line of at most `width` characters, as the timeline's headers show it (a
    classifier's prompt is a whole validation text)."""
    one_line = " ".join(prompt.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def changed(previous: list[str], current: list[str]) -> list[bool]:
    """Which tokens of a continuation differ from the previous evaluation's at the same place."""
    return [i >= len(previous) or previous[i] != t for i, t in enumerate(current)]


def milestones(evals: list[dict], baselines: dict | None, recs: list[dict] | None = None) -> list[tuple[int, str]]:
    """(step, what happened) on the validation curve: the first evaluation that beat each baseline,
    the minimum of the validation loss where later evaluations rise above it (overfitting), and,
    given the probe records, the step induction heads formed (core/heads.py) and gradient spikes
    (core/health.py)."""
    out: list[tuple[int, str]] = []
    evals = [e for e in evals if e.get("val_loss") is not None and math.isfinite(e["val_loss"])]
    for name, fig in ((baselines or {}).get("figures") or {}).items():
        target = fig.get("loss")
        if target is None:
            continue
        first = next((e["step"] for e in evals if e["val_loss"] < target), None)
        if first is not None:
            out.append((first, f"beats the {name}"))
    if recs:
        from desktop_llm.core.heads import induction_formed
        from desktop_llm.core.health import spikes

        formed = induction_formed(recs)
        if formed is not None:
            out.append((formed, "induction heads formed"))
        out += spikes(recs)
    if len(evals) >= 3:
        best = min(range(len(evals)), key=lambda i: evals[i]["val_loss"])
        if best < len(evals) - 1 and evals[-1]["val_loss"] > evals[best]["val_loss"] * 1.01:
            out.append((evals[best]["step"], "validation minimum: overfitting after"))
    return sorted(out)
