"""The head atlas (issue 28, view 3): what each attention head does, scored at every evaluation on
the run's fixed probe, so the page can show when each role formed.

The roles are TransformerLens' `head_detector` patterns, computed on our own attention maps
(core/inspection.py), plus three read off the map directly:

- previous-token: position i attends to i - 1;
- duplicate-token: i attends to earlier positions that hold the same token;
- induction: i attends to the position after an earlier occurrence of its token (j + 1 where
  token j == token i): the copy-what-came-next circuit behind in-context learning. Measured on the
  probe's repeated random sequence (n random tokens, then the same n again), as TransformerLens
  does;
- first-token sink: the mass on position 0;
- local: the mass on the last four positions (i - 3 to i);
- entropy: each row's entropy over the positions it may read, divided by its maximum (1: spread
  evenly, "broad"; 0: one position).

A pattern's score is the attention mass on its positions, averaged over the rows that have such a
position (TransformerLens averages over every row, so a perfect induction head reads 0.5 on a
sequence repeated once, and 1.0 here). Each score lies in [0, 1].
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("previous", "duplicate", "induction", "sink")  # scored against a pattern of positions
SCORES = (*PATTERNS, "local", "entropy")
ROLE_AT = 0.4  # a pattern's score from which a head is given that role
LOCAL_AT = 0.7  # local mass from which an otherwise unnamed head is "local"
BROAD_AT = 0.7  # normalised entropy from which it is "broad"
INDUCTION_FORMED = 0.4  # the milestone: the best head's induction score reaches this
LABELS = {"previous": "previous token", "duplicate": "duplicate token", "induction": "induction",
          "sink": "first-token sink", "local": "local", "broad": "broad", "mixed": "mixed"}
COLOURS = {"previous": "#9ecae1", "duplicate": "#c7b3e5", "induction": "#f4a261", "sink": "#d9d9d9",
           "local": "#a8ddb5", "broad": "#fff2ae", "mixed": "#ffffff"}  # each role's, on the page and in reports
REPEAT_TOKENS = 24  # the random half of the repeated sequence (the whole is twice this, within the context)


def repeated_sequence(vocabulary_ids, sequence_length: int, seed: int = 0) -> list[int]:
    """n distinct random tokens of the validation text, then the same n again (n fits the context)."""
    ids = np.unique(np.asarray(vocabulary_ids))
    n = int(min(REPEAT_TOKENS, sequence_length // 2, len(ids)))
    if n < 2:
        return []
    half = np.random.default_rng(seed).choice(ids, n, replace=False).tolist()
    return [int(i) for i in half + half]


def _patterns(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Each pattern's (T, T) 0/1 matrix: row i marks the positions a head of that kind reads."""
    T = len(ids)
    i, j = np.indices((T, T))
    same = (ids[:, None] == ids[None, :]) & (j < i)
    after = np.zeros((T, T), bool)
    after[:, 1:] = same[:, :-1]  # j + 1 where token j == token i (j + 1 <= i)
    sink = (j == 0) & (i > 0)
    return {"previous": j == i - 1, "duplicate": same, "induction": after, "sink": sink}


def _pattern_score(maps: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(layers, heads): the mass on the pattern's positions, averaged over rows that have one."""
    rows = pattern.any(1)
    if not rows.any():
        return np.full(maps.shape[:2], np.nan)
    return (maps[:, :, rows] * pattern[rows][None, None]).sum(-1).mean(-1)


def scores(window_maps: np.ndarray, window_ids, repeat_maps: np.ndarray | None, repeat_ids,
           causal: bool = True) -> dict:
    """{score name: (layers, heads) list}: the previous-token, duplicate-token, sink, local and
    entropy scores on the probe text, and the induction score on the repeated sequence. An
    encoder's heads (`causal` False) read both ways: "local" is then the mass within two positions
    either side, and the entropy is over all T positions."""
    window_ids = np.asarray(window_ids)
    T = len(window_ids)
    pats = _patterns(window_ids)
    out = {name: _pattern_score(window_maps, pats[name]) for name in ("previous", "duplicate", "sink")}
    if repeat_maps is not None and len(repeat_ids):
        out["induction"] = _pattern_score(repeat_maps, _patterns(np.asarray(repeat_ids))["induction"])
    else:
        out["induction"] = np.full(window_maps.shape[:2], np.nan)
    i, j = np.indices((T, T))
    near = ((j <= i) & (j >= i - 3)) if causal else (np.abs(j - i) <= 2)
    out["local"] = (window_maps * near[None, None]).sum(-1)[..., 1:].mean(-1)
    p = np.clip(window_maps[..., 1:, :], 1e-12, 1.0)
    entropy = -(window_maps[..., 1:, :] * np.log(p)).sum(-1)
    readable = np.arange(2, T + 1) if causal else np.full(T - 1, T)  # the positions each row may read
    out["entropy"] = (entropy / np.log(readable)[None, None]).mean(-1)
    return {k: [[None if np.isnan(v) else round(float(v), 3) for v in row] for row in out[k]] for k in SCORES}


def matrix(heads: dict, name: str) -> np.ndarray:
    """One score of a record's heads as a (layers, heads) float array (NaN where not measured)."""
    return np.array([[np.nan if v is None else v for v in row] for row in heads[name]], np.float64)


def roles(heads: dict) -> list[list[str]]:
    """Each head's dominant role: the pattern it follows most (from ROLE_AT), else broad or
    local where it is clearly so, else mixed."""
    m = {name: np.nan_to_num(matrix(heads, name), nan=0.0) for name in SCORES}
    L, H = m["previous"].shape
    out = []
    for layer in range(L):
        row = []
        for h in range(H):
            best = max(PATTERNS, key=lambda n: m[n][layer, h])
            if m[best][layer, h] >= ROLE_AT:
                row.append(best)
            elif m["entropy"][layer, h] >= BROAD_AT:  # first: on a short text, even spread is mostly recent
                row.append("broad")
            elif m["local"][layer, h] >= LOCAL_AT:
                row.append("local")
            else:
                row.append("mixed")
        out.append(row)
    return out


def curves(recs: list[dict]) -> dict:
    """Over the evaluations that scored heads: the best induction score, the lowest entropy and the
    largest sink mass of any head, and the step of each."""
    rows = [r for r in recs if r.get("heads")]
    return {"steps": [r["step"] for r in rows],
            "induction": [float(np.nanmax(matrix(r["heads"], "induction"), initial=0.0)) for r in rows],
            "entropy": [float(np.nanmin(matrix(r["heads"], "entropy"), initial=1.0)) for r in rows],
            "sink": [float(np.nanmax(matrix(r["heads"], "sink"), initial=0.0)) for r in rows]}


def induction_formed(recs: list[dict]) -> int | None:
    """The first step at which some head's induction score reached INDUCTION_FORMED."""
    c = curves(recs)
    return next((s for s, v in zip(c["steps"], c["induction"]) if v >= INDUCTION_FORMED), None)
