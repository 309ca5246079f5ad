"""A classification head on our GPT decoder (keras-hub has no GPT classifier task).

The decoder is causal, so the state at the last real token is the only one that has read the
whole text: the head reads that one (padding is on the right and changes nothing before it).
"""

from __future__ import annotations

import keras
from keras import ops

from desktop_llm.core.models.backbones.gpt import build_model  # also registers GPTBackbone for model.keras
from desktop_llm.core.models.classifier.head import HeadOnBackbone


@keras.saving.register_keras_serializable(package="desktop_llm")
class GPTClassifier(HeadOnBackbone):
    def __init__(self, backbone, num_classes: int, dropout: float = 0.0, **kwargs):
        super().__init__(backbone, num_classes, dropout, **kwargs)
        self.head = keras.layers.Dense(num_classes, name="logits")

    @classmethod
    def from_config_of(cls, mcfg, num_classes: int) -> GPTClassifier:
        model = cls(build_model(mcfg).backbone, num_classes, mcfg.dropout)
        T = mcfg.sequence_length
        model({"token_ids": ops.zeros((1, T), "int32"), "padding_mask": ops.ones((1, T), "bool")})
        return model

    def call(self, inputs, training=False):
        hidden = self.backbone(inputs["token_ids"], training=training)
        last = ops.sum(ops.cast(inputs["padding_mask"], "int32"), axis=1) - 1
        pooled = ops.take_along_axis(hidden, ops.maximum(last, 0)[:, None, None], axis=1)[:, 0]
        return self.head(self.head_dropout(pooled, training=training))
