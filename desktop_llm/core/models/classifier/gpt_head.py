"""A classification head on our GPT decoder (keras-hub has no GPT classifier task).

The decoder is causal, so the state at the last real token is the only one that has read the
whole text: the head reads that one (padding is on the right and changes nothing before it).
"""

from __future__ import annotations

import keras
from keras import ops

from desktop_llm.core.models.backbones.gpt import build_model  # also registers GPTBackbone for model.keras


@keras.saving.register_keras_serializable(package="desktop_llm")
class GPTClassifier(keras.Model):
    def __init__(self, backbone, num_classes: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = dropout
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
        self.head = keras.layers.Dense(num_classes, name="logits")

    @classmethod
    def from_config_of(cls, mcfg, num_classes: int) -> GPTClassifier:
        model = cls(build_model(mcfg).backbone, num_classes, mcfg.dropout)
        T = mcfg.sequence_length
        model({"token_ids": ops.zeros((1, T), "int32"), "padding_mask": ops.ones((1, T), "bool")})
        return model

    def get_config(self):
        """For model.keras (Keras cannot serialise a subclassed model's backbone argument alone)."""
        return {"name": self.name, "trainable": self.trainable, "num_classes": self.num_classes,
                "dropout": self.dropout, "backbone": keras.saving.serialize_keras_object(self.backbone)}

    def get_compile_config(self):
        """None: model.keras holds the model, not how the trainer compiled it (its optimizer is
        ours), so it loads anywhere desktop_llm's model classes are imported; as keras-hub's tasks."""
        return None  # noqa: RET501 - None is the answer here, not a procedure's end

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def call(self, inputs, training=False):
        hidden = self.backbone(inputs["token_ids"], training=training)
        last = ops.sum(ops.cast(inputs["padding_mask"], "int32"), axis=1) - 1
        pooled = ops.take_along_axis(hidden, ops.maximum(last, 0)[:, None, None], axis=1)[:, 0]
        return self.head(self.head_dropout(pooled, training=training))
