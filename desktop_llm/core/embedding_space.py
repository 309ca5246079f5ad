"""The embedding space over training (issue 28, view 5), read from the run's weight snapshots
(core/snapshots.py).

- A 2-D map of the token embeddings at each snapshot: the final snapshot's two principal
  directions, and each earlier map turned onto the final one by orthogonal Procrustes (the best
  rotation or reflection), so that the picture does not spin or flip between steps.
- Drift: how far the embeddings moved since the previous snapshot, relative to their size.
- Neighbour overlap: the share of each token's K nearest neighbours (cosine) that are its
  neighbours in the final snapshot too: 1.0 once the space has settled.
- The position embeddings' cosine similarity matrix.
- For an encoder: its sentence embeddings' map over training, and how much they group sentences
  by source, against TF-IDF (`sentence_space`).
"""

from __future__ import annotations

import itertools

import numpy as np

from desktop_llm.core import snapshots

TOKENS = "token_embedding/embeddings"
POSITIONS = "position_embedding/embeddings"
K = 10  # neighbours compared


def _unit(E: np.ndarray) -> np.ndarray:
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)


def neighbours(E: np.ndarray, k: int = K) -> np.ndarray:
    """(V, k): each row's k nearest other rows by cosine similarity, nearest first."""
    U = _unit(E)
    sim = U @ U.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(E) - 1)
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(E), 0), int)
    order = np.take_along_axis(sim, idx, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(idx, order, 1)


def procrustes(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A turned onto B: A @ R with R orthogonal minimising |A R - B| (Schönemann, 1966)."""
    u, _, vt = np.linalg.svd(A.T @ B)
    return A @ (u @ vt)


def space(run, vocabulary: int | None = None) -> dict:
    """{"steps", "coords" (snapshots, V, 2), "drift", "overlap", "positions" (T, T) of the final
    snapshot}: the token embeddings' first `vocabulary` rows (the tokenizer's; not the model's
    padding of its vocabulary)."""
    kept = snapshots.steps(run)
    if not kept:
        return {"steps": [], "coords": np.zeros((0, 0, 2)), "drift": [], "overlap": [], "positions": None}
    tables = [snapshots.load(run, s, (TOKENS,))[TOKENS] for s in kept]
    V = min(len(t) for t in tables) if vocabulary is None else min(vocabulary, *(len(t) for t in tables))
    tables = [t[:V] for t in tables]
    final = tables[-1] - tables[-1].mean(0)
    _, _, vt = np.linalg.svd(final, full_matrices=False)
    axes = vt[:2].T  # (d, 2)
    target = final @ axes
    coords = np.stack([procrustes((t - t.mean(0)) @ axes, target) for t in tables])
    last_nn = neighbours(tables[-1])
    overlap = []
    for t in tables:
        nn = neighbours(t)
        overlap.append(float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(nn, last_nn)])))
    drift = [None] + [float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-12)) for a, b in itertools.pairwise(tables)]
    positions = None
    final_weights = snapshots.load(run, kept[-1], (POSITIONS,))
    if POSITIONS in final_weights:
        P = _unit(final_weights[POSITIONS])
        positions = P @ P.T
    return {"steps": kept, "coords": coords, "drift": drift, "overlap": overlap, "positions": positions,
            "tables": tables}


def nearest_over_training(s: dict, token: int, k: int = 5) -> list[tuple[int, list[int]]]:
    """(step, the token's k nearest tokens) at each snapshot."""
    out = []
    for step, E in zip(s["steps"], s["tables"]):
        U = _unit(E)
        sim = U @ U[token]
        sim[token] = -np.inf
        out.append((step, [int(i) for i in np.argsort(-sim)[:k]]))
    return out


SENTENCES = 300  # the sentences mapped over training: a fixed sample, embedded once per snapshot


def sentence_space(run, limit: int = SENTENCES, progress=None, cancelled=None, snapshot_model=None) -> dict:
    """An encoder run's sentence embeddings over training (issue 28, view 5): a fixed sample of its
    sentences (core/inference/embeddings.py, mean pooling) embedded by the model at each weight
    snapshot, centred as the search index centres them, mapped to 2-D on the final snapshot's
    principal directions with each earlier map turned onto it (Procrustes), and at each step the
    share of sentences whose nearest neighbour has the same source, against chance and against
    TF-IDF character n-grams (the baseline the model's vectors must beat):
    {"steps", "coords" (snapshots, n, 2), "sources", "texts", "agreement", "chance", "baseline",
    "drift"}. `snapshot_model`: a core/probes.SnapshotModel of the run to reuse (the model worker keeps one)."""
    from desktop_llm.core.inference.embeddings import Index, embed, embedder, sentences
    from desktop_llm.core.probes import SnapshotModel

    kept = snapshots.steps(run)
    items = sentences(run, limit)
    out = {"steps": [], "coords": np.zeros((0, len(items), 2)), "sources": [s.source for s in items],
           "texts": [s.text for s in items], "agreement": [], "chance": None, "baseline": None, "drift": []}
    if not kept:
        return out
    sm = snapshot_model if snapshot_model is not None else SnapshotModel(run)
    model, tok = sm.at(kept[0])
    emb = embedder(model)  # one: its compiled prediction serves every snapshot
    vectors = []
    for n, step in enumerate(kept):
        if cancelled is not None and cancelled():
            return out
        if progress is not None:
            progress(n / len(kept), f"step {step:,} ({n + 1} of {len(kept)})")
        sm.at(step)
        index = Index(items, embed(model, tok, out["texts"], emb=emb))
        vectors.append(index.vectors)
        same, chance = index.neighbour_agreement()
        out["agreement"].append(same)
        out["chance"] = chance
    final = vectors[-1]
    _, _, vt = np.linalg.svd(final - final.mean(0), full_matrices=False)
    axes = vt[:2].T
    target = final @ axes
    out.update(steps=kept, coords=np.stack([procrustes(v @ axes, target) for v in vectors]),
               drift=[None] + [float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-12))
                               for a, b in itertools.pairwise(vectors)],
               baseline=index.baseline_agreement())  # TF-IDF of the same sentences
    return out
