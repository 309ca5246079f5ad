"""LoRA for a fine-tune of a decoder run (`train --base RUN --lora-rank N`): keras-hub's own
`Backbone.enable_lora` freezes the backbone and adds rank-N factors to each attention's query and
value projections (Keras' `EinsumDense.enable_lora`), so only those factors train; the factor B
starts at zero, so the first step is the base model exactly.

A run that adds tokens (a chat template's) keeps its token embedding trainable: frozen at the mean
of the base's embeddings, its four new tokens would stay identical and the model could never write
`<|end|>` apart from the others.

Checkpoints: Keras saves a LoRA layer's kernel with its factors folded in, and loading zeroes both
factors (a model that computes exactly what was saved). With both at zero no gradient reaches
either, so a resumed run draws A afresh (B stays zero: still exactly the checkpoint's function) and
goes on learning a new update on top of the folded one, as ReLoRA does (`restart_factors`).

Exports and other tools want plain weights: `merged` folds the factors into the kernels
(Keras' `EinsumDense.kernel` is the kernel plus the scaled product of the factors) and returns a
model without LoRA, weight for weight the base's layout.
"""

from __future__ import annotations


def enable(model, rank: int, embeddings_trainable: bool = False) -> None:
    """LoRA of `rank` on `model`'s backbone (query and value of every attention)."""
    model.backbone.enable_lora(rank)
    if embeddings_trainable:
        model.backbone.token_embedding.trainable = True


def restart_factors(model, seed: int = 0) -> None:
    """After a checkpoint loaded (factors folded into the kernels, both zeroed): A drawn as
    `enable_lora` draws it (He uniform), B left at zero."""
    import keras

    for i, layer in enumerate(model._flatten_layers()):
        if getattr(layer, "lora_enabled", False):
            a = layer.lora_kernel_a
            a.assign(keras.initializers.HeUniform(seed=seed + i)(a.shape))


def trainable_parameters(model) -> int:
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))


def merged(model, build):
    """A plain model (`build()`, no LoRA) holding `model`'s weights with its LoRA factors folded in;
    `model` itself when it has no LoRA."""
    lora_layers = [layer for layer in model._flatten_layers() if getattr(layer, "lora_enabled", False)]
    if not lora_layers:
        return model
    folded = {layer._kernel.path: layer.kernel for layer in lora_layers}  # kernel + scaled A @ B
    plain = build()
    values = {w.path: folded.get(w.path, w) for w in model.weights if "lora_kernel" not in w.path}
    for w in plain.weights:
        w.assign(values[w.path])
    return plain
