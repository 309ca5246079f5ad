"""A classifier scored on a held-out labelled file (`desktop-llm classify RUN --data FILE`),
beside the baselines fitted on its training split: the fair figure, where the validation split's
has already chosen the checkpoint."""

from __future__ import annotations

import numpy as np

from desktop_llm.core.config import ConfigError
from desktop_llm.core.models.classifier.baselines import baselines_on
from desktop_llm.core.models.classifier.examples import encode
from desktop_llm.core.models.classifier.report import predict_proba, scores


def held_out_report(model, tok, data, examples, T: int, misclassified: int = 50) -> dict:
    """Scores on a held-out labelled set (`examples`, read as training reads them), beside the
    majority class and naive Bayes fitted on the run's training split and scored on the same texts.
    The validation split chose the best checkpoint, so its figure flatters the model; a test set
    it never saw does not. Texts that repeat a training text (same tokens) are left out and
    counted; a label the run never saw is refused in one line, as no answer could be right."""
    unknown = sorted({e.label for e in examples} - set(data.classes))
    if unknown:
        raise ConfigError(f"Label '{unknown[0]}' is not one of the run's classes ({', '.join(data.classes[:10])}"
                          f"{', …' if len(data.classes) > 10 else ''}); a test set needs the run's own labels.")
    ids, mask, cut = encode(tok, [e.text for e in examples], T, data.specials)
    tr = data.train_index
    seen = {r.tobytes() for r in np.where(data.mask[tr], data.token_ids[tr], -1)}
    repeat = np.array([r.tobytes() in seen for r in np.where(mask, ids, -1)], bool)
    keep = np.flatnonzero(~repeat)
    if not len(keep):
        raise ConfigError("Every text of that file repeats a training text: nothing is held out.")
    texts = [examples[i].text for i in keep]
    ids, mask = ids[keep], mask[keep]
    truth = np.array([data.classes.index(examples[i].label) for i in keep])
    probs = predict_proba(model, {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask})
    pred = probs.argmax(-1)
    out = scores(truth, pred, len(data.classes))
    wrong = np.flatnonzero(pred != truth)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:misclassified]
    out["classes"] = data.classes
    out["misclassified"] = [{"text": texts[i], "true": data.classes[int(truth[i])],
                             "predicted": data.classes[int(pred[i])], "p": float(probs[i, pred[i]])} for i in wrong]
    out["texts"], out["repeats_left_out"], out["cut"] = len(keep), int(repeat.sum()), int(cut)
    out["baselines"] = baselines_on(data, tok.vocabulary_size, ids, mask, truth)["figures"]
    return out
