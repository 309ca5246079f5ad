"""Fill-mask: "To be or [MASK] to be" -> the top candidates for each [MASK], with probabilities."""

from __future__ import annotations

import numpy as np

from desktop_llm.core.config import ConfigError

MASK = "[MASK]"


NO_MASK = 'Write [MASK] where a token should be guessed, e.g. "To be or [MASK] to be".'


def check_masked(text: str) -> None:
    """Refuse a text without [MASK] in one line (before any model is loaded)."""
    if MASK not in text:
        raise ConfigError(NO_MASK)


def encode_with_masks(tok, text: str) -> tuple[list[int], list[int]]:
    """Token ids of `text` with the family's [MASK] id where "[MASK]" is written, and the mask
    positions. The pieces between masks are tokenized separately, so a mask is always one token."""
    check_masked(text)
    pieces = text.split(MASK)
    mask_id = tok.vocabulary_size
    ids, positions = [], []
    for i, piece in enumerate(pieces):
        if piece:
            ids.extend(tok.encode(piece))
        if i < len(pieces) - 1:
            positions.append(len(ids))
            ids.append(mask_id)
    return ids, positions


def fill_mask(model, tok, text: str, top_k: int = 10) -> list[dict]:
    """[{position, candidates: [{id, token, p}]}] for each [MASK] in `text`, best first."""
    ids, positions = encode_with_masks(tok, text)
    T = model.backbone.max_sequence_length
    if len(ids) > T:
        raise ConfigError(f"The text is {len(ids)} tokens long; this model reads at most {T}.")
    n = len(ids)
    token_ids = np.zeros((1, T), np.int32)
    token_ids[0, :n] = ids
    padding = np.zeros((1, T), bool)
    padding[0, :n] = True
    logits = model.predict_on_batch({"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                                     "padding_mask": padding,
                                     "mask_positions": np.array([positions], np.int32)})
    logits = np.asarray(logits, np.float64)[0, :, : tok.vocabulary_size]  # real tokens only
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    k = max(1, min(top_k, tok.vocabulary_size))
    out = []
    for pos, p in zip(positions, probs):
        best = np.argsort(-p)[:k]
        out.append({"position": pos, "candidates": [{"id": int(i), "token": tok.token_text(int(i)),
                                                     "p": float(p[i])} for i in best]})
    return out
