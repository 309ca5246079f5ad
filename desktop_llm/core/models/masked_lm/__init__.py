"""The masked-LM family: a BERT-style bidirectional encoder (keras-hub `BertBackbone` with its
`BertMaskedLM` head, tied to the token embedding) that predicts masked tokens.

Any tokenizer works: the family appends its special ids after the tokenizer's vocabulary
([MASK], then [CLS] and [SEP], which the classifier reads), so "床前[MASK]月光" works with a
character tokenizer as well as WordPiece. Training windows are the corpus' token windows; 15%
of each window's positions are selected, of which 80% become [MASK], 10% a random token and 10%
stay as they are (BERT). Loss, accuracy and perplexity are over the selected positions only.

`train --base RUN` continues a masked-LM run on new text (its tokenizer, shape and weights).
"""

from __future__ import annotations

import numpy as np

from desktop_llm.core.models.backbones.bert import SPECIALS, bert_backbone
from desktop_llm.core.models.base import Family
from desktop_llm.core.models.continuation import ContinuesOnText

__all__ = ["FAMILY", "SPECIALS", "MaskedLM", "bert_backbone", "mask_windows"]

MASK_RATE = 0.15


def n_selected(T: int) -> int:
    return max(1, round(MASK_RATE * T))


def mask_windows(windows: np.ndarray, vocabulary: int, rng: np.random.Generator):
    """BERT's masking of (batch, T) token windows: (inputs dict, target ids).

    Written with NumPy rather than keras-hub's `MaskedLMMaskGenerator`: that layer draws from
    TensorFlow's global random state, so a resumed run would not see the masks the straight run
    saw; here each step's masks come from its own seed, and resuming repeats the curve exactly.
    Exactly round(15% x T) positions per window, so every target is real (no padded positions
    dilute the loss).
    """
    B, T = windows.shape
    M = n_selected(T)
    positions = np.sort(np.argsort(rng.random((B, T)), axis=1)[:, :M], axis=1).astype(np.int32)
    targets = np.take_along_axis(windows, positions, axis=1).astype(np.int32)
    tokens = windows.astype(np.int32).copy()
    roll = rng.random((B, M))
    replaced = np.where(roll < 0.8, vocabulary,  # [MASK] is the first id after the vocabulary
                        np.where(roll < 0.9, rng.integers(0, vocabulary, size=(B, M)), targets))
    np.put_along_axis(tokens, positions, replaced.astype(np.int32), axis=1)
    inputs = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens),
              "padding_mask": np.ones_like(tokens, dtype=bool), "mask_positions": positions}
    return inputs, targets


class MaskedLM(ContinuesOnText, Family):
    name = "masked_lm"
    title = "Masked LM (BERT-style encoder)"
    summary = "BERT-style masked tokens"
    command = "fill-mask"
    embeds_sentences = True
    accuracy_name = "masked-token accuracy"
    masked_perplexity = True
    probes = True  # the Learning page: masked losses, the prompts read back, heads and health both ways
    timeline_cells = "each token guessed with it masked"

    def prober(self, model, jit_compile: bool = False):
        from desktop_llm.core.models.masked_lm.probe import MaskedProber

        return MaskedProber(model, jit_compile=jit_compile)

    def add_commands(self, sub, kit) -> None:
        from desktop_llm.core.models.masked_lm import commands

        commands.add_parser(sub, kit)

    def model_vocabulary(self, tokenizer_vocabulary: int, cfg=None) -> int:
        return tokenizer_vocabulary + len(SPECIALS)

    def build(self, mcfg, seed=None):
        import keras
        import keras_hub

        mcfg.validate()
        if seed is not None:
            keras.utils.set_random_seed(seed)
        return keras_hub.models.BertMaskedLM(bert_backbone(mcfg), preprocessor=None)

    def estimate(self, mcfg, batch_size: int = 12, cfg=None):
        """BERT's encoder and its masked-LM head (a dense layer, a LayerNorm, an output bias; the
        output weights are the token embedding's)."""
        from dataclasses import replace

        from desktop_llm.core.config import estimate
        from desktop_llm.core.models.backbones.bert import bert_parameters

        m = replace(mcfg, tie_embeddings=True)
        d, V = m.hidden_dim, max(1, m.vocabulary_size)
        return estimate(m, batch_size, parameters=bert_parameters(m) + d * d + d + 2 * d + V)

    def baselines(self, data, tok) -> dict | None:
        """The unigram guess: the training split's token frequencies for every hidden token (the
        hidden tokens are a uniform draw of the text's), so its loss is the unigram model's and
        its accuracy the share of the most frequent token. No bits per byte: a masked model
        predicts some of the tokens, not the text."""
        from desktop_llm.core.baselines import ngram_losses

        loss = ngram_losses(data.train, data.val, tok.vocabulary_size, max_order=1).get("unigram")
        if loss is None:
            return None
        counts = np.bincount(np.asarray(data.train[:20_000_000], np.int64), minlength=tok.vocabulary_size)
        top = int(counts.argmax())
        accuracy = float(np.mean(np.asarray(data.val) == top))
        return {"figures": {"unigram guess": {"loss": loss, "accuracy": accuracy}}, "bytes_per_token": None}

    def train_batches(self, data, start_step, max_steps, batch, T, seed, vocabulary):
        for step in range(start_step, max_steps + 1024):
            x, _ = data.train_batch(step, batch, T, seed)
            yield mask_windows(x, vocabulary, np.random.default_rng([seed, step, 7]))

    def val_arrays(self, data, n_batches, batch, T, vocabulary):
        vx, _ = data.val_batches(n_batches, batch, T)
        return mask_windows(vx, vocabulary, np.random.default_rng(12345))  # the same each time

    def sample(self, ctx) -> str:
        """A validation snippet with a few tokens masked, and the model's guesses for them."""
        from desktop_llm.core.models.masked_lm.fill_mask import fill_mask

        ids = [int(i) for i in ctx.data.val[: min(48, ctx.cfg.model.sequence_length)]]
        picks = sorted(set(np.random.default_rng(ctx.step).choice(len(ids), size=3, replace=False).tolist()))
        text = "".join(("[MASK]" if i in picks else ctx.tok.decode([t])) for i, t in enumerate(ids))
        result = fill_mask(ctx.model, ctx.tok, text, top_k=1)
        guesses = ", ".join(f"{m['candidates'][0]['token']!r} (was {ctx.tok.decode([ids[p]])!r})"
                            for m, p in zip(result, picks))
        return f"{text}\n→ {guesses}"


FAMILY = MaskedLM()
