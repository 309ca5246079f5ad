"""The masked LM's probe (core/probes.py, issue 28): the same records as a GPT's, measured the way a
bidirectional model is.

- Each token's loss is its loss when masked, the others visible. A window's T tokens are masked
  in STRIDE interleaved sets (positions k, k + STRIDE, ...), one forward pass each in a batch:
  about BERT's 15%, and every token once.
- The learning timeline guesses each token of a prompt with that token masked: its cells read the
  prompt as the model reconstructs it.
- The head atlas and the training's health read attention both ways.
"""

from __future__ import annotations

import numpy as np

from desktop_llm.core.models.backbones.bert import SPECIALS
from desktop_llm.core.prober import Prober, log_softmax

STRIDE = 7  # every 7th token masked at once: 14% of a window, as BERT's 15%


class MaskedProber(Prober):
    causal = False

    def __init__(self, model, jit_compile: bool = True):
        super().__init__(model, jit_compile)
        self.mask_id = int(model.backbone.vocabulary_size) - len(SPECIALS)  # [MASK]: the first after the tokenizer's

    def _inputs(self, tokens: np.ndarray, positions: np.ndarray, real: np.ndarray | None = None) -> dict:
        """BertMaskedLM's inputs: `tokens` (batch, T) with `positions` (batch, M) masked."""
        ids = tokens.astype(np.int32).copy()
        np.put_along_axis(ids, positions, self.mask_id, axis=1)
        mask = np.ones_like(ids, bool) if real is None else real
        return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask,
                "mask_positions": positions.astype(np.int32)}

    @staticmethod
    def _sets(T: int) -> np.ndarray:
        """(STRIDE, M) positions: set k holds k, k + STRIDE, ... (the short ones repeat their last)."""
        M = -(-T // STRIDE)
        return np.array([[min(k + STRIDE * j, k + STRIDE * ((T - 1 - k) // STRIDE)) for j in range(M)]
                         for k in range(min(STRIDE, T))], np.int32)

    def loss_inputs(self, windows: np.ndarray) -> tuple:
        """The masked loss of `windows`' last T tokens (batch, T + 1), one interleaved set masked per window."""
        tokens = windows[:, 1:]
        sets = self._sets(tokens.shape[1])
        positions = sets[np.arange(len(tokens)) % len(sets)]
        return self._inputs(tokens, positions), np.take_along_axis(tokens, positions, axis=1).astype(np.int32)

    def token_losses(self, ids: np.ndarray) -> np.ndarray:
        """Each of `ids`' last T tokens' loss (batch, T + 1 -> batch, T) when it is masked."""
        tokens = np.asarray(ids)[:, 1:]
        B, T = tokens.shape
        sets = self._sets(T)
        K = len(sets)
        batch = np.repeat(tokens, K, axis=0)
        positions = np.tile(sets, (B, 1))
        log_probs = log_softmax(self.logits(self._inputs(batch, positions)))  # (B * K, M, V)
        targets = np.take_along_axis(batch, positions, axis=1)
        loss = -np.take_along_axis(log_probs, targets[..., None].astype(np.int64), axis=-1)[..., 0]
        out = np.zeros((B, T))
        for b in range(B):
            for k in range(K):
                out[b, sets[k]] = loss[b * K + k]
        return out

    def logits(self, inputs) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self.forward(inputs))

    def timeline(self, tok, texts: list[str], T: int, banned=()) -> list[dict]:
        """Each prompt read back: every token guessed with it masked (the others visible), and the
        surprise of the guess."""
        encoded = [tok.encode(t)[:T] or [0] for t in texts]
        L = max(len(e) for e in encoded)
        rows, positions, real = [], [], []
        for e in encoded:
            for p in range(len(e)):
                rows.append(e + [0] * (L - len(e)))
                positions.append([p])
                real.append([True] * len(e) + [False] * (L - len(e)))
        logits = np.asarray(self.logits(self._inputs(np.array(rows), np.array(positions), np.array(real))),
                            np.float64)[:, 0, : self.mask_id].copy()  # never a special token
        if banned:
            logits[:, list(banned)] = -np.inf
        log_probs = log_softmax(logits)
        out, i = [], 0
        for e in encoded:
            picks = [int(np.argmax(log_probs[i + p])) for p in range(len(e))]
            out.append({"tokens": [tok.decode([t]) for t in picks],
                        "surprise": [round(float(-log_probs[i + p][t]), 3) for p, t in enumerate(picks)]})
            i += len(e)
        return out
