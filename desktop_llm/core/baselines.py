"""The baselines a model must beat, computed on its own split: n-gram language models over the
same tokens (unigram, bigram, trigram), and bits per byte, which compares runs across tokenizers.

Why hand-written: the figure needs counts over the run's own token ids (no text library counts
those) on up to tens of millions of tokens, which NumPy's sort-based `unique` does in seconds.
The smoothing is Witten-Bell interpolation: a proper distribution with no parameter to tune, so
a baseline cannot be flattered by tuning it on the validation split; its unigram is add-one.
"""

from __future__ import annotations

import math

import numpy as np

MAX_TRAIN_TOKENS = 20_000_000  # counted from the start of the training split beyond this (said in `note`)
ORDERS = {1: "unigram", 2: "bigram", 3: "trigram"}


def _keys(a: np.ndarray, n: int, V: int) -> np.ndarray:
    """The n-grams of `a` as one int64 each (id_0·V^(n-1) + … + id_{n-1})."""
    k = np.zeros(len(a) - n + 1, np.int64)
    for i in range(n):
        k = k * V + a[i: len(a) - n + 1 + i].astype(np.int64)
    return k


def _lookup(sorted_keys: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The count of each query key (0 where it never occurred)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), np.float64)
    i = np.clip(np.searchsorted(sorted_keys, queries), 0, len(sorted_keys) - 1)
    return np.where(sorted_keys[i] == queries, counts[i], 0).astype(np.float64)


def ngram_losses(train: np.ndarray, val: np.ndarray, V: int, max_order: int = 3) -> dict[str, float]:
    """Cross-entropy (nats per token) of the validation tokens under n-gram models of the training
    tokens: {"unigram": …, "bigram": …, "trigram": …}. Each position is predicted from the n-1
    tokens before it (the first positions from the ones there are)."""
    train = np.asarray(train[:MAX_TRAIN_TOKENS], np.int64)
    val = np.asarray(val, np.int64)
    if len(val) < 2 or len(train) < 3 or V < 2:
        return {}
    if V ** max_order >= 2**62:  # keys would overflow: a vocabulary of over a million
        max_order = 2
    p = (np.bincount(train, minlength=V)[:V] + 1.0) / (len(train) + V)  # add-one unigram
    probs = p[val]
    out = {ORDERS[1]: float(-np.log(probs).mean())}
    for n in range(2, max_order + 1):
        grams, grams_n = np.unique(_keys(train, n, V), return_counts=True)
        contexts, contexts_n = np.unique(_keys(train[:-1], n - 1, V), return_counts=True)
        followers, followers_n = np.unique(grams // V, return_counts=True)  # distinct next tokens per context
        q = _keys(val, n, V)
        c_hw = _lookup(grams, grams_n, q)
        c_h = _lookup(contexts, contexts_n, q // V)
        n1_h = _lookup(followers, followers_n, q // V)
        lower = probs[n - 1:]  # the (n-1)-gram's probability of the same positions
        seen = c_h + n1_h > 0
        higher = np.where(seen, (c_hw + n1_h * lower) / np.maximum(c_h + n1_h, 1.0), lower)
        probs = np.concatenate([probs[: n - 1], higher])
        out[ORDERS[n]] = float(-np.log(probs).mean())
    return out


def bytes_per_token(tok, ids: np.ndarray, limit: int = 2_000_000) -> float | None:
    """UTF-8 bytes per token of `ids` (the first `limit`), decoded by the run's tokenizer: what
    turns a loss per token into bits per byte."""
    ids = [int(i) for i in np.asarray(ids[:limit])]
    if not ids:
        return None
    n = len(tok.decode(ids).encode("utf-8"))
    return n / len(ids) if n else None


def chars_per_token(tok, ids: np.ndarray, limit: int = 2_000_000) -> float | None:
    """Characters per token of `ids` (the first `limit`): how much text the tokenizer packs into a
    context, against a character tokenizer's 1."""
    ids = [int(i) for i in np.asarray(ids[:limit])]
    return len(tok.decode(ids)) / len(ids) if ids else None


def bits_per_byte(nats_per_token: float, per_token_bytes: float | None) -> float | None:
    if not per_token_bytes or nats_per_token is None or not math.isfinite(nats_per_token):
        return None
    return nats_per_token / math.log(2) / per_token_bytes


def beaten(value: float, figures: dict[str, dict], metric: str = "loss") -> tuple[list[str], list[str]]:
    """(the baselines `value` beats or matches, those it does not), by name, on `metric` (a loss:
    lower is better; an accuracy or F1: higher). A tie is no loss: a classifier at macro-F1 1.0
    beside a naive Bayes at 1.0 has done all there is to do (issue 25 asks for >= the baseline)."""
    better = (lambda a, b: a <= b) if metric == "loss" else (lambda a, b: a >= b)
    scored = [n for n, f in figures.items() if f.get(metric) is not None]
    wins = [n for n in scored if better(value, figures[n][metric])]
    return wins, [n for n in scored if n not in wins]


def verdict(value: float | None, figures: dict[str, dict], metric: str = "loss") -> str:
    """One line: which baselines the model's `value` of `metric` beats (or matches). A model that
    loses says so."""
    if value is None or not figures:
        return ""
    wins, losses = beaten(value, figures, metric)
    if not wins and not losses:
        return ""
    ties = [n for n in wins if figures[n][metric] == value]
    beats = [n for n in wins if n not in ties]
    said = ([f"beats {', '.join(beats)}"] if beats else []) + ([f"matches {', '.join(ties)}"] if ties else [])
    if not losses:
        return (f"beats every baseline ({', '.join(wins)})" if not ties else "; ".join(said))
    if not wins:
        return f"worse than every baseline ({', '.join(losses)}): it has not learned what they know"
    return f"{'; '.join(said)}; not yet {', '.join(losses)}"


def describe(figures: dict[str, dict]) -> str:
    """The baselines in one line, as the command line, the card and the window show them:
    "unigram 3.308 (4.77 bits/byte) · bigram 2.461 (3.55 bits/byte)"; accuracy and macro-F1
    where a family measures them."""
    parts = []
    for name, f in figures.items():
        # + 0.0: a loss that rounds to zero from below (float error of a certain answer) read "-0.000"
        main = [f"loss {round(f['loss'], 3) + 0.0:.3f}"] if f.get("loss") is not None else []
        if f.get("bits_per_byte") is not None:
            main.append(f"{f['bits_per_byte']:.2f} bits/byte")
        if f.get("accuracy") is not None:
            main.append(f"accuracy {f['accuracy']:.1%}")
        if f.get("macro_f1") is not None:
            main.append(f"macro-F1 {f['macro_f1']:.3f}")
        for key in ("chrf", "bleu"):
            if f.get(key) is not None:
                main.append(f"{key.replace('chrf', 'chrF').replace('bleu', 'BLEU')} {f[key]:.1f}")
        parts.append(f"{name} {', '.join(main)}")
    return " · ".join(parts)


def tfidf_vectors(texts: list[str], dims: int = 4096) -> np.ndarray:
    """Unit TF-IDF vectors of the texts' character 1-3-grams, hashed into `dims` columns: the
    baseline a sentence embedding must beat at finding related sentences (hand-written: a
    vectoriser of a dozen lines beats shipping scikit-learn for it)."""
    import zlib

    rows = np.zeros((len(texts), dims), np.float32)
    for i, t in enumerate(texts):
        for n in (1, 2, 3):
            for j in range(max(0, len(t) - n + 1)):
                rows[i, zlib.crc32(t[j: j + n].encode("utf-8")) % dims] += 1.0
    df = (rows > 0).sum(0)
    rows *= np.log((1 + len(texts)) / (1 + df)) + 1.0
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def compared_figure(family, best_loss: float | None, best_score: float | None, last_eval: dict) -> float | None:
    """The model's figure that its baselines are compared with (`family.baseline_metric`): the
    best validation loss, the score that chose the best checkpoint, else the last evaluation's.
    One rule for the trainer's closing warning and the run card."""
    metric = family.baseline_metric
    if metric == "loss":
        return best_loss
    if metric == family.selection_metric and best_score is not None:
        return best_score
    return last_eval.get(f"val_{metric}")
