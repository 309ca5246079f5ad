"""A translator's baselines on the validation pairs its BLEU and chrF are measured on: copying
the source (numbers, names and loanwords survive a copy), and retrieval, the target of the
training pair whose source is most like this one (TF-IDF over the sources' token 1-3-grams).

Why hand-written: retrieval over the run's own token ids, an inverted index of a few thousand
pairs in NumPy; scikit-learn or SciPy would weigh tens of MB in the installer for one lookup."""

from __future__ import annotations

import numpy as np

ORDERS = (1, 2, 3)


def _grams(ids: np.ndarray) -> np.ndarray:
    """A sequence's token 1-3-grams as int64 keys (distinct per order: its length in the top bits)."""
    ids = ids.astype(np.int64) + 1
    out = [ids]
    for n in ORDERS[1:]:
        if len(ids) >= n:
            k = np.zeros(len(ids) - n + 1, np.int64)
            for i in range(n):
                k = k * 1_000_003 + ids[i: len(ids) - n + 1 + i]
            out.append(k * 4 + n)
    return np.unique(np.concatenate(out))


def nearest(train: list[np.ndarray], queries: list[np.ndarray]) -> np.ndarray:
    """For each query, the index of the training sequence with the highest TF-IDF cosine (binary
    term frequencies) over token 1-3-grams."""
    keys = [_grams(t) for t in train]
    rows = np.repeat(np.arange(len(keys)), [len(k) for k in keys])
    flat = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    order = np.argsort(flat, kind="stable")
    flat, rows = flat[order], rows[order]
    vocab, starts, df = np.unique(flat, return_index=True, return_counts=True)
    idf = np.log((1 + len(train)) / (1 + df)) + 1.0
    norms = np.zeros(len(train))
    np.add.at(norms, rows, idf[np.searchsorted(vocab, flat)] ** 2)
    norms = np.sqrt(np.maximum(norms, 1e-12))
    out = np.zeros(len(queries), int)
    for qi, q in enumerate(queries):
        g = _grams(q)
        g = g[np.isin(g, vocab)]
        if not len(g):
            continue
        at = np.searchsorted(vocab, g)
        hits = np.concatenate([rows[starts[a]: starts[a] + df[a]] for a in at])
        weights = np.repeat(idf[at] ** 2, df[at])
        out[qi] = int(np.argmax(np.bincount(hits, weights=weights, minlength=len(train)) / norms))
    return out


def translator_baselines(data, tok, decode_target, n_val: int) -> dict:
    """{"figures": {"copy the source": {...}, "retrieval": {...}}}: chrF, BLEU and exact match on the
    first `n_val` validation pairs, as the model's own figures are measured."""
    from desktop_llm.core.models.translator.decode import scores

    pairs = data.val_pairs[:n_val]
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    src, mask = data.arrays["src"], data.arrays["src_mask"]
    train = [src[i][mask[i]] for i in data.train_index]
    val = [src[i][mask[i]] for i in data.val_index[: len(pairs)]]
    best = nearest(train, val)
    tgt, tgt_mask = data.arrays["tgt_out"], data.arrays["tgt_mask"]
    retrieved = [decode_target(tgt[data.train_index[b]][tgt_mask[data.train_index[b]]]) for b in best]
    figures = {}
    for name, hyps in (("copy the source", sources), ("retrieval", retrieved)):
        s = scores(hyps, references)
        figures[name] = {"chrf": s["chrf"], "bleu": s["bleu"], "exact_match": s["exact_match"]}
    return {"figures": figures, "bytes_per_token": None}
