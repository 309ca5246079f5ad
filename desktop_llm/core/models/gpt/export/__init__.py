"""The GPT's exports: a keras-hub GPT-2 preset, a TensorFlow SavedModel (with generation), ONNX and
LiteRT (the forward pass). `core/export` writes whichever a run's family offers, atomically."""

from __future__ import annotations


def check(run, fmt: str) -> None:
    """Refuse a run the format cannot carry, before anything is loaded."""
    if fmt == "keras-hub":
        from desktop_llm.core.models.backbones import gpt2_preset as keras_hub_preset

        keras_hub_preset.check(run.config.model)


def write(model, tok, run, fmt: str, folder) -> dict:
    import numpy as np

    model(np.zeros((1, 1), "int32"))  # Keras' ONNX and LiteRT exporters refuse a model never called
    if fmt == "keras-hub":
        from desktop_llm.core.models.backbones import gpt2_preset as keras_hub_preset

        return keras_hub_preset.write(model, tok, folder, dropout=run.config.model.dropout)
    if fmt == "savedmodel":
        from desktop_llm.core.models.gpt.export import saved_model as m
    elif fmt == "onnx":
        from desktop_llm.core.models.gpt.export import onnx_model as m
    else:
        from desktop_llm.core.models.gpt.export import litert_model as m
    return m.write(model, folder)
