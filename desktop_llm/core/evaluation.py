"""Perplexity and per-token loss of a model on token ids, a text, or the validation split."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Evaluation:
    loss: float
    perplexity: float
    tokens: int
    bits_per_token: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TokenLosses:
    token_ids: list[int]
    tokens: list[str]
    losses: list[float]  # losses[i]: -log p(token i | tokens < i); losses[0] is NaN (no context)


def require_gpt(model, what: str) -> None:
    """Next-token tools (attention maps, perplexity, generation) on a model of another family:
    one clear message instead of an AttributeError from deep inside. Asked of the model
    (`predicts_next_token`, set by the GPT's class) rather than by importing that class: the
    families build on this module, not the other way round."""
    from desktop_llm.core.config import ConfigError

    if not getattr(model, "predicts_next_token", False):
        raise ConfigError(f"{what} works on GPT runs; this run's model is a {type(model).__name__} "
                          "(a masked LM fills masks, a classifier classifies: the Generate page, or "
                          "`desktop-llm fill-mask` / `classify`).")


def _summary(total: float, n: int) -> Evaluation:
    loss = total / max(1, n)
    return Evaluation(loss, math.exp(min(loss, 50.0)), n, loss / math.log(2))


def per_token_losses(model, ids: Sequence[int], batch_size: int = 16) -> np.ndarray:
    """Loss of each token given the ones before it (windows of the context length, stride
    half a window, each token scored once with at least half a window of context when it can)."""
    from keras import ops

    ids = np.asarray(ids, dtype=np.int32)
    T = int(model.backbone.max_sequence_length)
    out = np.full(len(ids), np.nan, dtype=np.float64)
    if len(ids) < 2:
        return out
    stride = max(1, T // 2)
    starts = [0] + list(range(stride, max(1, len(ids) - T) + stride, stride))
    starts = sorted({min(s, max(0, len(ids) - T - 1)) for s in starts})
    windows, spans = [], []
    done = 0  # tokens 1..done already scored
    for s in starts:
        e = min(s + T, len(ids) - 1)
        first = max(done + 1, s + 1)
        if first > e:
            continue
        windows.append((s, e))
        spans.append((first, e))
        done = e
    for b in range(0, len(windows), batch_size):
        chunk = windows[b : b + batch_size]
        width = max(e - s for s, e in chunk)
        x = np.zeros((len(chunk), width), dtype=np.int32)
        for r, (s, e) in enumerate(chunk):
            x[r, : e - s] = ids[s:e]
        logits = ops.convert_to_numpy(ops.cast(model(x, training=False), "float32"))
        logits = logits - logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        for r, ((s, _e), (first, last)) in enumerate(zip(chunk, spans[b : b + batch_size])):
            for t in range(first, last + 1):
                out[t] = -logp[r, t - 1 - s, ids[t]]
    return out


def evaluate_text(model, tokenizer, text: str) -> tuple[Evaluation, TokenLosses]:
    require_gpt(model, "Perplexity")
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        raise ValueError("The text is too short to evaluate: it needs at least two tokens.")
    losses = per_token_losses(model, ids)
    valid = losses[~np.isnan(losses)]
    return (_summary(float(valid.sum()), int(valid.size)),
            TokenLosses(ids, [tokenizer.token_text(i) for i in ids], losses.tolist()))


def evaluate_windows(model, inputs: np.ndarray, targets: np.ndarray, batch_size: int = 32,
                     progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Mean loss over full windows (as training's validation does)."""
    from keras import ops

    require_gpt(model, "Perplexity")

    total, n = 0.0, 0
    for b in range(0, len(inputs), batch_size):
        logits = ops.convert_to_numpy(ops.cast(model(inputs[b : b + batch_size], training=False), "float32"))
        logits = logits - logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        y = targets[b : b + batch_size]
        nll = -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
        total += float(nll.sum())
        n += nll.size
        if progress:
            progress(min(b + batch_size, len(inputs)), len(inputs))
    return _summary(total, n)


def split_windows(tokens: np.ndarray, sequence_length: int, max_windows: int = 2000):
    """Non-overlapping (inputs, targets) windows covering a token array (e.g. the whole val split)."""
    T = sequence_length
    n = min(max_windows, (len(tokens) - 1) // T)
    if n < 1:
        raise ValueError(f"Need at least {T + 1} tokens to evaluate with a context of {T}.")
    idx = np.arange(n)[:, None] * T + np.arange(T + 1)[None, :]
    w = np.asarray(tokens[idx], dtype=np.int32)
    return w[:, :-1], w[:, 1:]


def line_start(tokens: list[str]) -> int:
    """Where the first new line begins among these tokens (0 if none does): the validation split
    starts wherever the cut fell, often mid-word, and the per-token view reads better from there."""
    return next((i + 1 for i, t in enumerate(tokens) if t.endswith("\n")), 0)
