"""keras-hub's `TransformerDecoder`, with training's self-attention on the backend's causal kernel.

keras-hub's decoder always builds an explicit (batch, T, T) causal mask and hands it to the
attention as a tensor. Given a mask, a fused attention kernel must read it (cuDNN takes it as an
additive bias) and computes every tile, the masked half too. Asked for `is_causal` instead
(`keras.ops.dot_product_attention(is_causal=True)`), cuDNN's flash kernel skips the masked tiles
and no (T, T) tensor exists. Measured on an H100 (Keras 3.15 on JAX, bfloat16, 6x6x384,
`benchmarks/gpu_attention.py`): at context 8192 a step takes 11.3 ms against 22.0 with the mask
and 82.6 without fused attention; memory 2.1 GiB against 2.3 and 31.8.

Only where a backend has such a kernel (`CAUSAL_KERNEL`): JAX's cuDNN and PyTorch's SDPA. On
TensorFlow, the engine's own backend, `is_causal` builds the same masked softmax (measured on the
CPU: no change in speed), and its boolean `strided_slice` is an op LiteRT cannot convert, so the
layer there keeps keras-hub's mask exactly.

Only the training pass changes: no cache, no padding, no attention mask given. Generation (a
cache) and padded input keep keras-hub's explicit masks, and so does attention dropout, for which
Keras builds the causal mask itself. Weights, their paths and checkpoint files are keras-hub's own.
"""

from __future__ import annotations

import keras
import keras_hub

# Backends whose `dot_product_attention(is_causal=True)` has a fused causal kernel.
CAUSAL_KERNEL = keras.backend.backend() in ("jax", "torch")


class _CausalSelfAttention(keras_hub.layers.CachedMultiHeadAttention):
    """keras-hub's cached attention; called without a mask, it is causal.

    `_compute_attention` is the hook Keras' `MultiHeadAttention` documents for custom attention.
    The decoder below only passes no mask where the mask would have been the causal one.
    """

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):
        return super()._compute_attention(
            query, key, value, attention_mask=attention_mask, training=training,
            return_attention_scores=return_attention_scores,
            use_causal_mask=use_causal_mask or attention_mask is None,
        )


@keras.saving.register_keras_serializable(package="desktop_llm")
class TransformerDecoder(keras_hub.layers.TransformerDecoder):
    """A decoder-only `TransformerDecoder` (no cross-attention) whose training pass uses `is_causal`.

    It keeps keras-hub's class name on purpose: Keras keys a list of layers in a weights file by
    the snake-cased class name (`transformer_decoder_1/...`), so checkpoints written before and
    after this class existed load into either.
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        super().build(decoder_sequence_shape, encoder_sequence_shape)
        # keras-hub's build creates the attention layer from its own module's name for the class,
        # with no argument or hook to pass another, and ends by locking the layer's state (a new
        # sub-layer assigned after it raises). So the layer it built, variables and all, takes on
        # the subclass above in place: it holds no state of its own beyond keras-hub's, and only
        # its `_compute_attention` differs. (Building a second attention layer in its place would
        # also create and drop a set of variables, moving seeded initialisation.)
        self._self_attention_layer.__class__ = _CausalSelfAttention

    def _compute_self_attention_mask(self, decoder_sequence, decoder_padding_mask, decoder_attention_mask,
                                     use_causal_mask, self_attention_cache, self_attention_cache_update_index):
        if (CAUSAL_KERNEL and use_causal_mask and self_attention_cache is None
                and decoder_padding_mask is None and decoder_attention_mask is None
                and self._input_mask(decoder_sequence) is None):
            return None  # the attention applies the causal mask itself (is_causal)
        return super()._compute_self_attention_mask(
            decoder_sequence, decoder_padding_mask, decoder_attention_mask, use_causal_mask,
            self_attention_cache, self_attention_cache_update_index)

    def _input_mask(self, decoder_sequence):
        """The padding mask keras-hub reads from the input itself (a Keras mask an earlier layer
        set), or None. Asked for no causal mask, keras-hub's method returns just its merge of the
        padding and attention masks, here given neither: its own check, no private helper."""
        return super()._compute_self_attention_mask(decoder_sequence, None, None, False, None, None)
