"""Attention weights per layer and head for a text, computed by our own code in a separate pass.

Training uses the fused attention path, which never materialises the weights. Here a probe model
(Keras' functional API: each Transformer layer's input, by the layer's name) gives the hidden
states, and the attention probabilities are computed from each layer's own weights, found by their
public paths (`<layer>/self_attention/query/kernel`...): the same projections, scaling, masks and
layer norms keras-hub's `TransformerEncoder` / `TransformerDecoder` apply. No private attribute of
keras-hub is touched, and the same code serves the GPT's causal attention, an encoder's
bidirectional attention and a translator's cross-attention (target tokens x source tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("self", "encoder", "decoder", "cross")


@dataclass
class AttentionMaps:
    token_ids: list[int]
    tokens: list[str]  # the rows: tokens attending
    weights: np.ndarray  # (layers, heads, rows, columns); row i: how token i attends to each column
    key_tokens: list[str] | None = None  # the columns, where they differ from the rows (cross-attention)
    kind: str = "causal"  # causal | bidirectional | cross
    notes: list[str] = field(default_factory=list)

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    @property
    def columns(self) -> list[str]:
        return self.key_tokens if self.key_tokens is not None else self.tokens


# --------------------------------------------------------------------------- the arithmetic
def _weights(model, layer: str) -> dict[str, np.ndarray]:
    """A layer's weights by their path below the layer ("self_attention/query/kernel": array)."""
    prefix = layer + "/"
    return {w.path[len(prefix):]: np.asarray(w.numpy(), np.float32) for w in model.weights
            if w.path.startswith(prefix)}


def _layer_norm(x, w, name, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w[f"{name}/gamma"] + w[f"{name}/beta"]


def _attend(w, block: str, query_in, key_in, causal: bool, key_mask=None):
    """(heads, Tq, Tk) probabilities and the block's output (Tq, d) for one sequence."""
    q = np.einsum("td,dhk->thk", query_in, w[f"{block}/query/kernel"]) + w[f"{block}/query/bias"]
    k = np.einsum("td,dhk->thk", key_in, w[f"{block}/key/kernel"]) + w[f"{block}/key/bias"]
    v = np.einsum("td,dhk->thk", key_in, w[f"{block}/value/kernel"]) + w[f"{block}/value/bias"]
    scores = np.einsum("qhk,shk->hqs", q, k) / np.sqrt(q.shape[-1])
    allowed = np.ones(scores.shape[1:], bool)
    if causal:
        allowed &= np.tril(allowed)
    if key_mask is not None:
        allowed &= key_mask[None, :]
    scores = np.where(allowed[None], scores, -1e9)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = np.einsum("hqs,shk->qhk", p, v)
    out = np.einsum("qhk,hkd->qd", out, w[f"{block}/attention_output/kernel"]) + w[f"{block}/attention_output/bias"]
    return p, out


def _block_name(w: dict, cross: bool = False) -> str:
    if cross:
        return "cross_attention"
    return "self_attention" if "self_attention/query/kernel" in w else "self_attention_layer"


def layer_maps(model, layer, x, causal: bool, encoder_out=None, encoder_mask=None):
    """(self-attention, cross-attention or None) probabilities of one keras-hub Transformer layer
    whose input is `x` (T, d)."""
    w = _weights(model, layer.name)
    eps = getattr(layer, "layer_norm_epsilon", 1e-5)
    pre = bool(getattr(layer, "normalize_first", False))
    h = _layer_norm(x, w, "self_attention_layer_norm", eps) if pre else x
    probs, out = _attend(w, _block_name(w), h, h, causal)
    if encoder_out is None:
        return probs, None
    y = x + out
    y = y if pre else _layer_norm(y, w, "self_attention_layer_norm", eps)
    q = _layer_norm(y, w, "cross_attention_layer_norm", eps) if pre else y
    cross, _ = _attend(w, "cross_attention", q, encoder_out, False, encoder_mask)
    return probs, cross


def block_activity(model, layer, x, causal: bool = True) -> dict:
    """Inside one keras-hub Transformer block whose input is `x` (T, d): the largest attention
    logit of any head (before the softmax), and the feed-forward units' activations (T, units),
    with the block's own weights, norms (before or after each part) and activation function
    (core/health.py reads them)."""
    w = _weights(model, layer.name)
    eps = getattr(layer, "layer_norm_epsilon", 1e-5)
    pre = bool(getattr(layer, "normalize_first", False))
    block = _block_name(w)
    h = _layer_norm(x, w, "self_attention_layer_norm", eps) if pre else x
    q = np.einsum("td,dhk->thk", h, w[f"{block}/query/kernel"]) + w[f"{block}/query/bias"]
    k = np.einsum("td,dhk->thk", h, w[f"{block}/key/kernel"]) + w[f"{block}/key/bias"]
    logits = np.einsum("qhk,shk->hqs", q, k) / np.sqrt(q.shape[-1])
    allowed = np.tril(np.ones(logits.shape[1:], bool)) if causal else np.ones(logits.shape[1:], bool)
    _, out = _attend(w, block, h, h, causal=causal)
    y = x + out
    if pre:
        f = _layer_norm(y, w, "feedforward_layer_norm", eps)
    else:  # BERT: the norm after the residual
        f = _layer_norm(y, w, "self_attention_layer_norm", eps)
    pre_act = f @ w["feedforward_intermediate_dense/kernel"] + w["feedforward_intermediate_dense/bias"]
    import keras

    act = keras.activations.get(getattr(layer, "activation", "gelu"))
    units = np.asarray(keras.ops.convert_to_numpy(act(keras.ops.convert_to_tensor(pre_act.astype(np.float32)))))
    return {"max_logit": float(logits[:, allowed].max()), "units": units}


def probe(model, names: list[str], extra: list[str] = ()):
    """A functional model giving each named layer's sequence input, and `extra` layers' outputs."""
    import keras

    outs = [model.get_layer(n).input[0] if isinstance(model.get_layer(n).input, list)
            else model.get_layer(n).input for n in names]
    outs += [model.get_layer(n).output for n in extra]
    return keras.Model(model.input, outs)


def to_numpy(xs) -> list[np.ndarray]:
    """The probe's outputs as float32 arrays (a one-layer model's probe returns one tensor, not a list)."""
    from keras import ops

    xs = xs if isinstance(xs, (list, tuple)) else [xs]
    return [np.asarray(ops.convert_to_numpy(ops.cast(x, "float32"))) for x in xs]


# --------------------------------------------------------------------------- per family
def attention_weights(model, token_ids) -> np.ndarray:
    """(layers, heads, time, time) causal attention of our GPT for one sequence of ids."""
    return causal_attention(model)(token_ids)


class BlockProbe:
    """A GPT's or an encoder's insides for one sequence, its probe model built once (the probes run
    it at every evaluation: building it each time cost more than the maps): each block's input,
    and from those the attention maps (and core/health.py's block activity)."""

    def __init__(self, model, jit_compile: bool | None = None, causal: bool = True):
        """`jit_compile`: compile the forward pass through the backend's runner, once per input
        length (the probes' lengths are fixed: 3x faster per call there); None: run it eagerly
        (the Attention page's texts have any length). `causal`: a GPT's masked attention, or an
        encoder's that reads both ways."""
        self.backbone = model.backbone
        self.causal = causal
        self.encoder = isinstance(self.backbone.input, dict)  # BERT's inputs: ids, segments, padding
        self.hidden = probe(self.backbone, [layer.name for layer in self.backbone.transformer_layers])
        self.forward = self.hidden
        if jit_compile is not None:
            from desktop_llm.core import runners

            hidden = self.hidden
            self.forward = runners.get().compiled(hidden, lambda ids: hidden(ids), jit_compile)

    def inputs(self, token_ids) -> list[np.ndarray]:
        """Each block's input (T, d)."""
        ids = np.asarray(token_ids, np.int32)[None, :]
        given = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids, bool)} \
            if self.encoder else ids
        return [x[0] for x in to_numpy(self.forward(given))]

    def maps(self, xs: list[np.ndarray]) -> np.ndarray:
        """(layers, heads, T, T) attention, from `inputs`."""
        bb = self.backbone
        return np.stack([layer_maps(bb, layer, x, causal=self.causal)[0] for layer, x in zip(bb.transformer_layers, xs)])


CausalProbe = BlockProbe  # a GPT's (causal: the default)


def causal_attention(model):
    """`maps(token_ids)` for our GPT (CausalProbe's, in one call)."""
    internals = CausalProbe(model)
    return lambda token_ids: internals.maps(internals.inputs(token_ids))


def encoder_weights(backbone, token_ids) -> np.ndarray:
    """(layers, heads, time, time) bidirectional attention of a BERT encoder."""
    ids = np.asarray(token_ids, np.int32)[None, :]
    names = [layer.name for layer in backbone.transformer_layers]
    xs = to_numpy(probe(backbone, names)({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                                         "padding_mask": np.ones_like(ids, bool)}))
    return np.stack([layer_maps(backbone, layer, x[0], causal=False)[0]
                     for layer, x in zip(backbone.transformer_layers, xs)])


def _token_text(tok, i: int) -> str:
    V = tok.vocabulary_size
    if i < V:
        return tok.token_text(i)
    return {0: "[MASK]", 1: "[CLS]", 2: "[SEP]"}.get(i - V, "[?]")


def inspect_text(model, tokenizer, text: str, kind: str = "self") -> AttentionMaps:
    """Attention maps for `text` (cut to the model's context): a GPT's causal self-attention or an
    encoder's bidirectional self-attention, by the model's backbone. A family with another
    architecture captures its own (`Family.attention_maps`: a translator's three kinds)."""
    import keras_hub

    from desktop_llm.core.config import ConfigError

    ids = tokenizer.encode(text)
    if not ids:
        raise ConfigError("Type some text to inspect.")
    if getattr(getattr(model, "backbone", None), "reads_causally", False):  # the GPT, or a classifier on it
        ids = ids[: int(model.backbone.max_sequence_length)]
        return AttentionMaps(ids, [tokenizer.token_text(i) for i in ids], attention_weights(model, ids))
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, keras_hub.models.BertBackbone):
        V = tokenizer.vocabulary_size
        # a classifier reads [CLS] text [SEP], as in training (keras-hub's, or its mean-pooled head)
        if isinstance(model, keras_hub.models.BertTextClassifier) or getattr(model, "reads_specials", False):
            ids = [V + 1, *ids[: backbone.max_sequence_length - 2], V + 2]
        ids = ids[: backbone.max_sequence_length]
        return AttentionMaps(ids, [_token_text(tokenizer, i) for i in ids], encoder_weights(backbone, ids),
                             kind="bidirectional")
    raise ConfigError(f"No attention maps for a {type(model).__name__}.")
