"""Attention weights per layer and head for a text, computed in a separate inspection pass.

Training uses the fused attention path, which never materialises the weights; here each
`TransformerDecoder` is replayed layer by layer and its own attention sublayer is asked for the
scores (`return_attention_scores=True`) on the same normalised inputs and causal mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AttentionMaps:
    token_ids: list[int]
    tokens: list[str]
    weights: np.ndarray  # (layers, heads, time, time); row i: how token i attends to tokens <= i

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]


def attention_weights(model, token_ids) -> np.ndarray:
    """(layers, heads, time, time) attention probabilities for one sequence of ids."""
    from keras import ops

    ids = np.asarray(token_ids, dtype=np.int32)[None, :]
    bb = model.backbone
    x = bb.embed(ids)
    maps = []
    for layer in bb.transformer_layers:
        mask = layer._compute_self_attention_mask(
            decoder_sequence=x, decoder_padding_mask=None, decoder_attention_mask=None,
            use_causal_mask=True, self_attention_cache=None, self_attention_cache_update_index=None,
        )
        h = layer._self_attention_layer_norm(x) if layer.normalize_first else x
        _, scores = layer._self_attention_layer(
            query=h, value=h, attention_mask=mask, return_attention_scores=True, training=False
        )
        maps.append(ops.convert_to_numpy(ops.cast(scores[0], "float32")))  # (heads, time, time)
        x = layer(x, training=False)
    return np.stack(maps)


def inspect_text(model, tokenizer, text: str) -> AttentionMaps:
    """Attention maps for `text` (truncated to the model's context length)."""
    from desktop_llm.core.loading import require_gpt

    require_gpt(model, "Attention maps")
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("Type some text to inspect.")
    ids = ids[: int(model.backbone.max_sequence_length)]
    return AttentionMaps(ids, [tokenizer.token_text(i) for i in ids], attention_weights(model, ids))
