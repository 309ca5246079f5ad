"""keras-hub presets of the families whose model is a keras-hub task: a masked-LM run as
keras-hub's `BertMaskedLM`, a classifier fine-tuned on one as its `BertTextClassifier`, a
translator as its `BartSeq2SeqLM`, written by the task's own `save_to_preset`, so plain keras-hub
loads them (`from_preset(folder)`) with no desktop_llm.

No tokenizer or preprocessor is attached: keras-hub's BERT and BART preprocessing add their
special tokens at ids of their own vocabularies, where ours come after the tokenizer's ids (see
core/models/masked_lm, core/models/translator). The model runs on token ids; `vocabulary.json`
maps ids to tokens and `specials.json` names the special ids (a classifier's classes too).
"""

from __future__ import annotations

from pathlib import Path

from desktop_llm.core import atomic


def write(model, tok, folder: Path, extra: dict | None = None) -> dict:
    """The task's own preset in `folder`, with specials.json (and `extra`: a classifier's classes)."""
    model.save_to_preset(str(folder))
    V = tok.vocabulary_size
    task = type(model).__name__
    specials = {"[BOS]": V, "[EOS]": V + 1} if task == "BartSeq2SeqLM" else {"[MASK]": V, "[CLS]": V + 1, "[SEP]": V + 2}
    atomic.write_json(folder / "specials.json", {**specials, **(extra or {})})
    T = int(model.backbone.max_sequence_length)
    if task == "BertTextClassifier":
        usage = ["model = keras_hub.models.BertTextClassifier.from_preset(folder)",
                 (f"x = {{'token_ids': [[CLS] + ids + [SEP]] padded with 0 to (1, {T}), 'segment_ids': zeros, "
                 "'padding_mask': 1 where a token is}"),
                 ("probabilities = softmax(model.predict(x))  # classes: specials.json; + log(prior) there "
                  "weighs in the classes' shares in training (it saw them balanced)")]
    elif task == "BartSeq2SeqLM":
        usage = ["model = keras_hub.models.BartSeq2SeqLM.from_preset(folder)",
                 (f"x = {{'encoder_token_ids': source ids padded with 0 to (1, {T}), 'encoder_padding_mask': 1 where "
                 f"a token is, 'decoder_token_ids': [BOS] ({V}) + the target so far, padded, "
                 "'decoder_padding_mask': likewise}"),
                 ("logits = model.predict(x)  # (1, T, vocabulary): the next target token after each position; "
                 f"stop at [EOS] ({V + 1})")]
    else:
        usage = ["model = keras_hub.models.BertMaskedLM.from_preset(folder)",
                 (f"x = {{'token_ids': ids with [MASK] ({V}) where hidden, padded to (1, {T}), 'segment_ids': "
                 "zeros, 'padding_mask': 1 where a token is, 'mask_positions': [[positions of the masks]]}"),
                 "logits = model.predict(x)  # (1, masks, vocabulary)"]
    return {"files": {"preset": "config.json, task.json, model.weights.h5, task.weights.h5, metadata.json, "
                                "specials.json"},
            "keras_hub_classes": [type(model.backbone).__name__, task],
            "keras_hub_tokenizer": None,
            "usage": usage,
            "notes": [(f"no keras-hub tokenizer: the {tok.kind} tokenizer's ids are ours (vocabulary.json); "
                      f"{', '.join(specials)} come after them (specials.json)")]}
