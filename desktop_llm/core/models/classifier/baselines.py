"""A classifier's baselines on its own split: always the majority class, and multinomial naive
Bayes on the same token ids the model reads (unigrams and bigrams of each example, as truncated to
the context). Hand-written in NumPy, about twenty lines: scikit-learn would add tens of MB to the
installer for one fit and one predict."""

from __future__ import annotations

import numpy as np

from desktop_llm.core.models.classifier.report import scores

ALPHA = 0.1  # additive smoothing of the per-class feature counts


def _features(ids: np.ndarray, mask: np.ndarray, V: int) -> list[np.ndarray]:
    """Each example's unigram and bigram features as integer keys (bigram a·V+b, after V)."""
    out = []
    for row, m in zip(ids, mask):
        t = row[m.astype(bool)].astype(np.int64)
        out.append(np.concatenate([t, V + t[:-1] * V + t[1:]]))
    return out


def naive_bayes(train_x, train_y, val_x, n_classes: int) -> np.ndarray:
    """Log-posteriors (val examples × classes) of multinomial naive Bayes fitted on train."""
    keys = np.unique(np.concatenate(train_x)) if train_x else np.zeros(0, np.int64)
    counts = np.full((n_classes, len(keys)), ALPHA)
    for x, y in zip(train_x, train_y):
        np.add.at(counts[y], np.searchsorted(keys, x), 1.0)
    log_p = np.log(counts) - np.log(counts.sum(1, keepdims=True))
    prior = np.log((np.bincount(train_y, minlength=n_classes) + 1.0) / (len(train_y) + n_classes))
    out = np.tile(prior, (len(val_x), 1))
    for i, x in enumerate(val_x):
        known = x[np.isin(x, keys)]  # a feature never seen in training says nothing
        out[i] += log_p[:, np.searchsorted(keys, known)].sum(1)
    return out - np.logaddexp.reduce(out, axis=1, keepdims=True)


def classifier_baselines(data, vocabulary: int) -> dict:
    """{"figures": {"majority class": {...}, "naive Bayes": {...}}}: each with its accuracy,
    macro-F1 and cross-entropy on the validation examples (the model's own figures)."""
    va = data.val_index
    return baselines_on(data, vocabulary, data.token_ids[va], data.mask[va], data.labels[va])


def baselines_on(data, vocabulary: int, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict:
    """The same two baselines, fitted on the run's training split and scored on any examples
    (`ids`, `mask`, `labels`): the validation split, or a held-out test file (held_out.held_out_report)."""
    n = len(data.classes)
    tr = data.train_index
    y_tr, y_ev = data.labels[tr].astype(int), np.asarray(labels, int)
    prior = np.bincount(y_tr, minlength=n) / max(1, len(y_tr))
    majority = int(prior.argmax())
    figures = {"majority class": {**_figures(y_ev, np.full(len(y_ev), majority), n),
                                  "loss": float(-np.log(np.maximum(prior[y_ev], 1e-12)).mean())}}
    V = vocabulary + 8  # (+ the specials' ids)
    x_tr = _features(data.token_ids[tr], data.mask[tr], V)
    log_post = naive_bayes(x_tr, y_tr, _features(ids, mask, V), n)
    figures["naive Bayes"] = {**_figures(y_ev, log_post.argmax(1), n),
                              "loss": float(-log_post[np.arange(len(y_ev)), y_ev].mean())}
    return {"figures": figures, "bytes_per_token": None}


def _figures(y_true, y_pred, n: int) -> dict:
    s = scores(y_true, y_pred, n)
    return {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
