"""Translating with a trained encoder-decoder: greedy decoding, batched for validation and
streamed token by token for the Translate box; BLEU (sacrebleu) and exact match."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from desktop_llm.core.models.translator.pairs import special_ids


def _numpy(x):
    import keras

    return keras.ops.convert_to_numpy(x)


class Translator:
    """Greedy decoding with one compiled forward pass of fixed shape (batch, T): the encoder
    runs again at each step, which at these sizes costs less than a second compiled function
    with a cache would save, and keeps one traced shape per batch size."""

    def __init__(self, model, tok, T: int):
        from desktop_llm.core import runners

        self.model, self.tok, self.T = model, tok, T
        from desktop_llm.core.models.translator.tokenizer import target_ids

        self.bos, self.eos = special_ids(tok.vocabulary_size)
        self.allowed = np.full(self.eos + 1, -np.inf, np.float32)  # the target's tokens and EOS
        self.allowed[list(target_ids(tok)) + [self.eos]] = 0
        forward = runners.inference(model)
        self._forward = lambda x: _numpy(forward(x))

    def _encode(self, texts: list[str]):
        ids = np.zeros((len(texts), self.T), np.int32)
        mask = np.zeros((len(texts), self.T), np.int32)
        cut = []
        for i, t in enumerate(texts):
            row = self.tok.encode(t)
            cut.append(len(row) > self.T)
            row = row[: self.T]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask, cut

    def cut_note(self, text: str) -> str | None:
        """What a source longer than the context loses, said once for the command line and the
        window (it was translated from its first T tokens without a word)."""
        n = len(self.tok.encode(text))
        if n <= self.T:
            return None
        return (f"The text is {n:,} tokens long and this model reads {self.T:,}: only its start was translated. "
                "Translate it a sentence at a time, or train with a longer context.")

    def steps(self, texts: list[str]) -> Iterator[np.ndarray]:
        """The next token of every text at each step (EOS once a text has ended); `surprise` then
        holds each pick's -ln p."""
        src, src_mask, _ = self._encode(texts)
        n = len(texts)
        dec = np.zeros((n, self.T), np.int32)
        dec[:, 0] = self.bos
        done = np.zeros(n, bool)
        for t in range(self.T - 1):
            mask = np.zeros((n, self.T), np.int32)
            mask[:, : t + 1] = 1
            logits = np.asarray(self._forward({"encoder_token_ids": src, "encoder_padding_mask": src_mask,
                                               "decoder_token_ids": dec, "decoder_padding_mask": mask}))
            scores = logits[:, t, : self.eos + 1].astype(np.float64) + self.allowed
            nxt = scores.argmax(-1).astype(np.int32)
            top = scores.max(-1, keepdims=True)  # the surprise of each pick, -ln p (the probes' timeline)
            self.surprise = (np.log(np.exp(scores - top).sum(-1)) + top[:, 0] - scores[np.arange(n), nxt])
            nxt[done] = self.eos
            done |= nxt == self.eos
            dec[:, t + 1] = nxt
            yield nxt
            if done.all():
                return

    def translate(self, texts: list[str], batch: int = 64) -> list[str]:
        out: list[str] = []
        for s in range(0, len(texts), batch):
            chunk = texts[s: s + batch]
            for row in np.stack(list(self.steps(chunk)), axis=1).tolist():
                out.append(self.tok.decode(row[: row.index(self.eos)] if self.eos in row else row))
        return out

    def stream(self, text: str, on_text: Callable[[str], None]) -> str:
        """Translate one text, calling on_text with each new piece as it is decoded."""
        decoder = self.tok.stream_decoder()
        pieces = []
        for nxt in self.steps([text]):
            if nxt[0] == self.eos:
                break
            piece = decoder.feed(int(nxt[0]))
            if piece:
                pieces.append(piece)
                on_text(piece)
        rest = decoder.flush()
        if rest:
            pieces.append(rest)
            on_text(rest)
        return "".join(pieces)


def _cjk_share(texts: list[str]) -> float:
    from desktop_llm.core.corpus import is_cjk

    chars = "".join(texts)
    return sum(map(is_cjk, chars)) / max(1, len(chars))


def scores(hypotheses: list[str], references: list[str]) -> dict:
    """chrF and BLEU (sacrebleu, its Chinese tokenisation when the references are Chinese) and the
    share of exact matches. BLEU of effective order: one-token targets ("5" for "five") read 0.0
    at BLEU-4 however right they were; chrF, over characters, needs no such care."""
    import sacrebleu

    tokenize = "zh" if _cjk_share(references) > 0.3 else "13a"
    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize, use_effective_order=True)
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    exact = np.mean([h.strip() == r.strip() for h, r in zip(hypotheses, references)]) if references else 0.0
    return {"bleu": float(bleu.score), "chrf": float(chrf.score), "exact_match": float(exact),
            "bleu_tokenize": tokenize}
