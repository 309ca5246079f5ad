"""The GPT: a keras-hub Backbone (token + learned position embeddings, pre-LayerNorm
`keras_hub.layers.TransformerDecoder` blocks whose training pass attends through the backend's
causal kernel (`causal_decoder.py`), final LayerNorm) and a keras-hub CausalLM task that
adds the (optionally tied) output projection and a key/value-cached forward pass.

The model knows nothing about tokenization: it maps token ids (batch, time) to logits
(batch, time, vocabulary). Both classes are registered Keras serializables, so a trained model
saves and loads as a `.keras` file like any keras-hub model (with `safe_mode`, no code runs).
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from desktop_llm.core.config import ModelConfig
from desktop_llm.core.models.backbones import causal_decoder


def _init(stddev: float = 0.02):
    return keras.initializers.RandomNormal(stddev=stddev)


@keras.saving.register_keras_serializable(package="desktop_llm")
class GPTBackbone(keras_hub.models.Backbone):
    """Decoder-only Transformer trunk: token ids (batch, time) -> hidden states (batch, time, dim)."""

    reads_causally = True  # what core.inspection asks of a backbone (it imports no model class)

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int,
        dropout: float = 0.0,
        tie_embeddings: bool = True,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=tie_embeddings,
            embeddings_initializer=_init(0.02),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=_init(0.02),
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            causal_decoder.TransformerDecoder(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                activation="gelu",
                layer_norm_epsilon=1e-5,
                kernel_initializer=_init(0.02),
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name="layer_norm")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        x = self.token_embedding(token_ids)  # (batch, time, dim)
        x = x + self.position_embedding(x)
        x = self.embeddings_dropout(x)
        for layer in self.transformer_layers:
            x = layer(x)  # causal self-attention; no padding (training windows are full)
        x = self.layer_norm(x)
        super().__init__(inputs=token_ids, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "max_sequence_length": self.max_sequence_length,
                "dropout": self.dropout,
                "tie_embeddings": self.tie_embeddings,
            }
        )
        return config

    def embed(self, token_ids, start_index=0):
        """Token + position embeddings for ids written at `start_index` (batch, time, dim).

        Positions are gathered, not sliced: XLA compiles a slice with a dynamic start once per
        start value, which made every generated token recompile.
        """
        x = self.token_embedding(token_ids)
        positions = ops.arange(ops.shape(token_ids)[1], dtype="int32") + ops.cast(start_index, "int32")
        return x + self.position_embedding(x, positions=positions)


@keras.saving.register_keras_serializable(package="desktop_llm")
class GPTCausalLM(keras_hub.models.CausalLM):
    """Next-token prediction head over `GPTBackbone`: token ids -> logits (batch, time, vocab)."""

    backbone_cls = GPTBackbone
    predicts_next_token = True  # what core.evaluation.require_gpt asks

    def __init__(self, backbone: GPTBackbone, preprocessor=None, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        inputs = backbone.input
        hidden = backbone(inputs)
        logits = backbone.token_embedding(hidden, reverse=True)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Forward `token_ids` written at `cache_update_index`, reading/updating the K/V cache.

        cache: (batch, layers, 2, max_length, heads, head_dim). Returns (logits, hidden, cache).
        """
        x = self.backbone.embed(token_ids, start_index=cache_update_index)
        caches = []
        for i, layer in enumerate(self.backbone.transformer_layers):
            x, next_cache = layer(
                x,
                self_attention_cache=cache[:, i, ...],
                self_attention_cache_update_index=cache_update_index,
            )
            caches.append(next_cache)
        cache = ops.stack(caches, axis=1)
        hidden = self.backbone.layer_norm(x)
        logits = self.backbone.token_embedding(hidden, reverse=True)
        return logits, hidden, cache

    def empty_cache(self, batch_size: int, max_length: int):
        b = self.backbone
        shape = [batch_size, b.num_layers, 2, max_length, b.num_heads, b.hidden_dim // b.num_heads]
        return ops.zeros(shape, dtype=self.compute_dtype)

    def _build_cache(self, token_ids):
        cache = self.empty_cache(ops.shape(token_ids)[0], ops.shape(token_ids)[1])
        _, hidden, cache = self.call_with_cache(token_ids, cache, 0)
        return hidden, cache


def build_model(cfg: ModelConfig, dtype=None, seed: int | None = None) -> GPTCausalLM:
    """A freshly initialised GPT for `cfg` (validated first)."""
    cfg.validate()
    if cfg.vocabulary_size < 2:
        from desktop_llm.core.config import ConfigError

        raise ConfigError("The vocabulary must have at least 2 tokens: train a tokenizer first.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    backbone = GPTBackbone(
        vocabulary_size=cfg.vocabulary_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_dim,
        intermediate_dim=cfg.intermediate_dim,
        max_sequence_length=cfg.sequence_length,
        dropout=cfg.dropout,
        tie_embeddings=cfg.tie_embeddings,
        dtype=dtype,
    )
    return GPTCausalLM(backbone)


def load_model(path: str) -> GPTCausalLM:
    """Load a `.keras` model file in safe mode: a file from elsewhere can never run code."""
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    if not isinstance(model, GPTCausalLM):
        raise ValueError(  # noqa: TRY004 - the file is wrong, not an argument
            f"{path} holds a {type(model).__name__}, not a desktop_llm GPT.")
    return model
