"""A classification head on the mean of an encoder's token states (keras-hub's
`BertTextClassifier` reads the [CLS] token's pooled state only).

Why: on small data the mean lets every token's state reach the head directly, where [CLS] has
to gather the text through attention first. Measured on 古文观止 paragraphs by dynasty (7
classes, 1,016 paragraphs, context 256): a 2 x 64 encoder with the mean reached validation
macro-F1 0.67-0.73 against naive Bayes' 0.60; the [CLS] head of the same size stayed at 0.35
(benchmarks/quality.py, benchmarks/README.md).
"""

from __future__ import annotations

import keras
from keras import ops

from desktop_llm.core.models.classifier.head import HeadOnBackbone


@keras.saving.register_keras_serializable(package="desktop_llm")
class MeanPooledClassifier(HeadOnBackbone):
    """Logits of `num_classes` from a BERT backbone's `sequence_output`, averaged over the real
    tokens ([CLS] and [SEP] included: they are tokens the encoder wrote states for)."""

    reads_specials = True  # [CLS] text [SEP], as keras-hub's BERT tasks (core/inspection.py)

    def __init__(self, backbone, num_classes: int, dropout: float = 0.0, **kwargs):
        super().__init__(backbone, num_classes, dropout, **kwargs)
        self.output_dense = keras.layers.Dense(num_classes, kernel_initializer="glorot_uniform", name="logits")

    @classmethod
    def on(cls, backbone, num_classes: int, dropout: float) -> MeanPooledClassifier:
        model = cls(backbone, num_classes, dropout)
        T = int(backbone.max_sequence_length)
        model({"token_ids": ops.zeros((1, T), "int32"), "segment_ids": ops.zeros((1, T), "int32"),
               "padding_mask": ops.ones((1, T), "bool")})
        return model

    def pooled(self, inputs, training=False):
        """The text's vector: the mean of its real tokens' states."""
        hidden = self.backbone(inputs, training=training)["sequence_output"]
        mask = ops.cast(inputs["padding_mask"], hidden.dtype)[:, :, None]
        return ops.sum(hidden * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def call(self, inputs, training=False):
        return self.output_dense(self.head_dropout(self.pooled(inputs, training), training=training))


def write_preset(model: MeanPooledClassifier, tok, folder, extra: dict) -> dict:
    """Plain keras-hub loads the encoder (`BertBackbone` preset); the head is two arrays in
    `head.npz` (keras-hub has no mean-pooled classifier task to carry them)."""
    import io

    import numpy as np

    from desktop_llm.core import atomic

    model.backbone.save_to_preset(str(folder))
    kernel, bias = (np.asarray(w) for w in model.output_dense.get_weights())
    buf = io.BytesIO()
    np.savez(buf, kernel=kernel, bias=bias)
    atomic.write_bytes(folder / "head.npz", buf.getvalue())
    V = tok.vocabulary_size
    atomic.write_json(folder / "specials.json", {"[MASK]": V, "[CLS]": V + 1, "[SEP]": V + 2, **extra})
    T = int(model.backbone.max_sequence_length)
    return {"files": {"preset": "config.json, model.weights.h5, metadata.json, head.npz, specials.json"},
            "keras_hub_classes": [type(model.backbone).__name__],
            "keras_hub_tokenizer": None,
            "usage": ["encoder = keras_hub.models.Backbone.from_preset(folder); head = numpy.load(folder + '/head.npz')",
                      (f"x = {{'token_ids': [[CLS] + ids + [SEP]] padded with 0 to (1, {T}), 'segment_ids': zeros, "
                       "'padding_mask': 1 where a token is}"),
                      "h = encoder.predict(x)['sequence_output']; v = (h * mask).sum(1) / mask.sum(1)  # the mean",
                      ("probabilities = softmax(v @ head['kernel'] + head['bias'])  # classes: specials.json; "
                       "+ log(prior) there weighs in the classes' shares in training (it saw them balanced)")],
            "notes": [(f"no keras-hub tokenizer: the {tok.kind} tokenizer's ids are ours (vocabulary.json); "
                      "[MASK], [CLS], [SEP] come after them (specials.json)"),
                      ("the classifier averages the encoder's token states: keras-hub has no such task, so its "
                      "head is head.npz")]}
