"""How well a classifier does: confusion matrix, per-class precision / recall / F1, macro-F1,
the misclassified validation texts; and classifying new text.

Written with NumPy (a dozen lines) rather than pulling scikit-learn into the install for it.
"""

from __future__ import annotations

import weakref

import numpy as np


def predict_proba(model, inputs: dict, batch: int = 64, prior: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities (float64) for a dict of input arrays. Training draws classes uniformly
    (examples.LabelledData.batch), so these are p(class | text) under a flat prior: every class
    counts as much, as in macro-F1, the family's figure. `prior` (the classes' shares in
    training) puts the true prior back (Bayes' rule), which favours the frequent classes. The
    classifier answers without it: on 古文观止 paragraphs by dynasty (7 classes, 273 to 11) the
    prior took validation macro-F1 from 0.73 to 0.51 and accuracy from 0.77 to 0.74; by author
    (8 classes) the two rules were within 0.02 (benchmarks/README.md)."""
    import keras

    n = len(next(iter(inputs.values())))
    shift = np.log(np.maximum(prior, 1e-12)) if prior is not None else 0.0
    forward = _forward(model)
    out = []
    for s in range(0, n, batch):
        logits = keras.ops.convert_to_numpy(forward({k: v[s: s + batch] for k, v in inputs.items()}))
        logits = np.asarray(logits, np.float64) + shift
        e = np.exp(logits - logits.max(-1, keepdims=True))
        out.append(e / e.sum(-1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, 0))


_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward(model):
    """The model's logits for a dict of arrays, compiled once per model (`runners.inference`).
    Not Keras' `predict_on_batch`: under tf.distribute (`--devices cpu:2`) it split the batch over
    the replicas and gave back twice the rows (9 validation texts, 18 rows), so every evaluation of
    a classifier on several devices lost its macro-F1 and accuracy."""
    from desktop_llm.core import runners

    if model not in _FORWARDS:
        _FORWARDS[model] = runners.inference(model)
    return _FORWARDS[model]


def scores(y_true, y_pred, n_classes: int) -> dict:
    """accuracy, macro_f1, confusion (rows: true class, columns: predicted) and per-class P/R/F1."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    confusion = np.zeros((n_classes, n_classes), int)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    predicted, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    present = support > 0
    return {"accuracy": float(tp.sum() / max(1, len(y_true))),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "confusion": confusion.tolist(),
            "per_class": [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                          for p, r, f, s in zip(precision, recall, f1, support)]}


def report(model, data, misclassified: int = 50) -> dict:
    """Scores on the run's validation split, with the texts it got wrong (most confident first)."""

    idx = data.val_index
    return scored(predict_proba(model, data.inputs(idx)), data.labels[idx], data.val_texts, data.classes,
                  misclassified)


def scored(probs: np.ndarray, truth: np.ndarray, texts: list[str], classes: list[str], misclassified: int) -> dict:
    """scores() of the answers in `probs`, with the texts it got wrong (most confident first)."""
    pred = probs.argmax(-1)
    out = scores(truth, pred, len(classes))
    wrong = np.flatnonzero(pred != truth)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:misclassified]
    out["classes"] = classes
    out["misclassified"] = [{"text": texts[i], "true": classes[int(truth[i])],
                             "predicted": classes[int(pred[i])], "p": float(probs[i, pred[i]])}
                            for i in wrong]
    return out


def classify(model, tok, classes: list[str], texts: list[str], T: int, specials: bool = True,
             prior: np.ndarray | None = None) -> list[dict]:
    """[{label, p, probabilities: {class: p}, cut}] per text, best class first."""
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.models.classifier.examples import encode

    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ConfigError("Type a text to classify.")
    ids, mask, _ = encode(tok, texts, T, specials)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
    probs = predict_proba(model, inputs, prior=prior)
    out = []
    for text, p in zip(texts, probs):
        n = len(tok.encode(text)) + (2 if specials else 0)
        order = np.argsort(-p)
        out.append({"text": text, "label": classes[int(order[0])], "p": float(p[order[0]]),
                    "probabilities": {classes[int(i)]: float(p[i]) for i in order}, "cut": n > T})
    return out
