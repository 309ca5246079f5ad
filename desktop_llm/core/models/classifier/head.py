"""What the classifier's own heads share (keras-hub has neither task): a backbone, the class count
and the head's dropout, and how model.keras holds them."""

from __future__ import annotations

import keras


class HeadOnBackbone(keras.Model):
    """A classification head on `backbone`; subclasses add their Dense and `call`."""

    def __init__(self, backbone, num_classes: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = dropout
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")

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
