"""Training health per layer (issue 28, view 4), measured with the probe at every evaluation and
kept in its record, so the Learning page follows it live and a finished run keeps its history.

Per group of weights (the embeddings, each block, the final norm):
- weight norm (Frobenius, over the group's weights);
- net change per step: |W now - W at the previous evaluation| / |W then| / the steps between.
  Karpathy's rule of thumb for an update's size against its weight is about 1e-3 per step; far
  below, a layer barely learns; far above, it thrashes. (The net change over many steps is at
  most the sum of the steps', so it reads low where updates cancel out.)
Per block, on the probe text:
- dormant feed-forward units: a unit whose mean |activation| is at most DORMANT of the block's
  average unit's (the τ-dormant units of Sokar et al., "The Dormant Neuron Phenomenon in Deep
  Reinforcement Learning", 2023);
- the largest attention logit before the softmax. Sharp heads are normal; logits that keep
  growing into the hundreds are the instability Dehghani et al. saw before ViT-22B diverged
  ("Scaling Vision Transformers to 22 Billion Parameters", 2023), which QK-normalisation cures.

Per group, the gradient norm, from the training step itself where its optimizer keeps it
(core/training/fused_adamw.py: every step's norm before clipping, summed per group): the mean over
the steps since the previous evaluation, and the largest with its step, so a spike between two
evaluations is seen and placed (a norm SPIKE times the group's usual, "clipped" where the whole
gradient's norm passed the clip). Where the optimizer keeps none (the replicated loop's Keras
AdamW), one backward pass per evaluation on a few of the probe's validation windows, through the
backend's runner, gives the norms at the evaluations only.
"""

from __future__ import annotations

import numpy as np

DORMANT = 0.025  # τ: a unit this quiet against the block's average is dormant (Sokar et al.)
RULE_OF_THUMB = 1e-3  # net change per step, Karpathy's update/weight ratio
BARELY = 1e-5  # below this per step: "barely changes"
THRASHES = 1e-2  # above: "changes fast"
SATURATES = 100.0  # an attention logit this large: growing toward instability
DORMANT_FLAG = 0.2  # a share of dormant units worth saying
SPIKE = 10.0  # a gradient norm this many times its median over the earlier evaluations: a spike
GROUP_FIGURES = ("weight_norm", "change_per_step", "grad_norm", "grad_peak", "grad_peak_step")  # one per group
KEPT_WEIGHTS = 50_000_000  # a model up to this size keeps a float32 copy between evaluations (200 MB)


def groups(model) -> dict[str, list]:
    """Weight variables by group, in the model's order: "embeddings", "block 0", ... (an
    encoder-decoder's "encoder 0", ..., "decoder 0", ...), then the rest: "final norm" (a GPT's), or
    "output" where it holds more than norms (an encoder's pooler and masked-LM head, a classifier's
    head)."""
    bb = model.backbone
    if hasattr(bb, "transformer_layers"):
        blocks = {layer.name: f"block {i}" for i, layer in enumerate(bb.transformer_layers)}
    else:  # an encoder-decoder (keras-hub's BART): its encoder's blocks, then its decoder's
        blocks = {**{layer.name: f"encoder {i}" for i, layer in enumerate(bb.encoder_transformer_layers)},
                  **{layer.name: f"decoder {i}" for i, layer in enumerate(bb.decoder_transformer_layers)}}
    out: dict[str, list] = {"embeddings": []}
    out.update({name: [] for name in blocks.values()})
    rest: list = []
    for w in model.weights:
        top = w.path.split("/")[0]
        if top in blocks:
            out[blocks[top]].append(w)
        elif "embedding" in top:
            out["embeddings"].append(w)
        else:
            rest.append(w)
    out["final norm" if all("norm" in w.path.split("/")[0] for w in rest) else "output"] = rest
    return {k: v for k, v in out.items() if v}


def group_index(model) -> tuple[dict[str, int], int]:
    """({weight path: its group's index in `groups` order}, the number of groups): how the
    training step's optimizer sums its gradient norms (core/training/fused_adamw.py)."""
    found = groups(model)
    return {w.path: i for i, ws in enumerate(found.values()) for w in ws}, len(found)


def snapshot(model) -> dict[str, list[np.ndarray]]:
    return {name: [np.array(w.numpy(), np.float32) for w in ws] for name, ws in groups(model).items()}


def _norm(arrays) -> float:
    return float(np.sqrt(sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)))


def measure(model, window_ids, previous: tuple[int, dict] | None, step: int,
            block_inputs: list[np.ndarray] | None = None,
            gradients: list | None = None, causal: bool = True,
            training_gradients: dict | None = None, activity: bool = True) -> tuple[dict, tuple[int, dict] | None]:
    """(this evaluation's health record, the snapshot the next evaluation compares with: none for
    a model over KEPT_WEIGHTS, whose records then go without the change per step). `block_inputs`:
    each block's input for `window_ids`, where the caller has them (core/inspection.CausalProbe);
    `gradients`: the loss's gradient for each of `model.trainable_variables` (None: not measured);
    `causal`: a GPT's attention, or an encoder's that reads both ways; `training_gradients`: the
    training step's norms since the previous evaluation (FusedAdamW.gradient_stats, with the run's
    "clip"), used instead of `gradients`; `activity`: the blocks' dormant units and attention logits
    (a model core/inspection.BlockProbe reads)."""
    from desktop_llm.core.inspection import BlockProbe, block_activity

    now = snapshot(model)
    record: dict = {"groups": list(now), "weight_norm": [round(_norm(v), 4) for v in now.values()]}
    kept = (step, now) if sum(a.size for v in now.values() for a in v) <= KEPT_WEIGHTS else None
    if previous is not None and previous[0] < step and set(previous[1]) == set(now):
        steps = step - previous[0]
        record["change_per_step"] = [
            float(f"{_norm([a - b for a, b in zip(now[g], previous[1][g])]) / max(_norm(previous[1][g]), 1e-12) / steps:.3g}")
            for g in now]
    n = len(now)
    if training_gradients is not None and len(training_gradients["mean"]) == n + 1:
        g = training_gradients
        record.update({"grad_norm": [_sig(x) for x in g["mean"][:n]], "grad_peak": [_sig(x) for x in g["max"][:n]],
                       "grad_peak_step": [int(x) for x in g["at"][:n]],
                       "grad_total": [_sig(g["mean"][n]), _sig(g["max"][n]), int(g["at"][n])],
                       "grad_steps": int(g["steps"]), "grad_clip": g.get("clip") or 0.0})
    elif gradients is not None:
        record["grad_norm"] = gradient_norms(model, gradients)
    if not activity:
        return record, kept
    bb = model.backbone
    xs = block_inputs if block_inputs is not None else BlockProbe(model, causal=causal).inputs(window_ids)
    dormant, logits = [], []
    for layer, x in zip(bb.transformer_layers, xs):
        a = block_activity(bb, layer, x, causal)
        score = np.abs(a["units"]).mean(0)
        dormant.append(round(float((score <= DORMANT * max(score.mean(), 1e-12)).mean()), 4))
        logits.append(round(a["max_logit"], 3))
    record["dormant"], record["max_logit"] = dormant, logits
    return record, kept


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def gradient_norms(model, gradients: list) -> list[float]:
    """Per group (as `groups` orders them), the norm of its weights' gradients (0 for a group of
    frozen weights or weights that get none)."""
    given = {id(v): g for v, g in zip(model.trainable_variables, gradients) if g is not None}
    return [_sig(_norm([np.asarray(given[id(w)], np.float32) for w in ws if id(w) in given]))
            for ws in groups(model).values()]


def spikes(recs: list[dict]) -> list[tuple[int, str]]:
    """(step, plain words) for each group whose gradient norm reached SPIKE times or more its
    median over the earlier evaluations (three at least): the largest of the interval's steps where
    the training step kept them (at its own step), else the evaluation's."""
    steps, names, values = series(recs, "grad_norm")
    _, _, peaks = series(recs, "grad_peak")
    _, _, at = series(recs, "grad_peak_step")
    rows = [r for r in recs if r.get("health")]
    out = []
    for i in range(3, len(steps)):
        for j, name in enumerate(names):
            earlier = values[:i, j][~np.isnan(values[:i, j])]  # runs from before the norms have none
            before = float(np.median(earlier)) if len(earlier) >= 3 else 0.0
            high, step = (peaks[i, j], int(at[i, j])) if not np.isnan(peaks[i, j]) else (values[i, j], steps[i])
            if before > 0 and high >= SPIKE * before:
                h = rows[i]["health"]
                total, clip = h.get("grad_total"), h.get("grad_clip") or 0
                clipped = "; clipped" if clip and total and total[2] == step and total[1] > clip else ""
                out.append((step, f"gradient spike in {name} ({high / before:.0f}x its usual norm{clipped})"))
    return out


def flags(recs: list[dict]) -> list[tuple[int, str]]:
    """(step, plain words) where something is off, the newest state of each kind: a group that
    barely changes or changes fast, dormant units, saturating attention."""
    rows = [r for r in recs if r.get("health")]
    out: list[tuple[int, str]] = []
    if not rows:
        return out
    last = rows[-1]
    h = last["health"]
    step = last["step"]
    for name, change in zip(h["groups"], h.get("change_per_step") or []):
        if change < BARELY:
            out.append((step, f"{name} barely changes ({change:.1e} per step; about {RULE_OF_THUMB:g} is usual)"))
        elif change > THRASHES:
            out.append((step, f"{name} changes fast ({change:.1e} per step; about {RULE_OF_THUMB:g} is usual)"))
    for i, share in enumerate(h.get("dormant", [])):
        if share >= DORMANT_FLAG:
            out.append((step, f"{share:.0%} of block {i}'s feed-forward units are dormant"))
    out += spikes(rows)[-3:]  # the newest few
    for i, logit in enumerate(h.get("max_logit", [])):
        if logit >= SATURATES:
            first = next(r["step"] for r in rows if r["health"]["max_logit"][i] >= SATURATES)
            out.append((first, (f"block {i}'s attention logits reach {logit:.0f}: large logits grow toward "
                               "instability")))
    return out


def series(recs: list[dict], key: str) -> tuple[list[int], list[str], np.ndarray]:
    """(steps, names, values (evaluations, names)) of one health figure over the run (NaN where an
    evaluation lacks it, such as the first one's change)."""
    rows = [r for r in recs if r.get("health")]
    if not rows:
        return [], [], np.zeros((0, 0))
    names = rows[-1]["health"]["groups"] if key in GROUP_FIGURES else \
        [f"block {i}" for i in range(len(rows[-1]["health"].get(key, [])))]
    values = np.full((len(rows), len(names)), np.nan)
    for i, r in enumerate(rows):
        v = r["health"].get(key)
        if v is not None and len(v) == len(names):
            values[i] = v
    return [r["step"] for r in rows], names, values
