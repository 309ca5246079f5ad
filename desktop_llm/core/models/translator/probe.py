"""The translator's probe: at each evaluation, its greedy translation of a few validation sources,
each token tinted by its surprise, so a learner sees the translations take shape; and the
training's health per encoder and decoder block. keras-hub's BART blocks are not read by
core/inspection, so there is no head atlas, and its loss is per target token of a pair, not of a
running text, so no loss by position."""

from __future__ import annotations

from desktop_llm.core.prober import CONTINUATION_TOKENS, Prober


class TranslatorProber(Prober):
    reads_tokens = False
    reads_heads = False

    def __init__(self, model, jit_compile: bool = True):
        super().__init__(model, jit_compile)
        self._decoder = None

    def timeline(self, tok, texts: list[str], T: int, banned=()) -> list[dict]:
        from desktop_llm.core.models.translator.decode import Translator

        if self._decoder is None or self._decoder.tok is not tok:
            self._decoder = Translator(self.model, tok, T)
        d = self._decoder
        cells = [{"tokens": [], "surprise": []} for _ in texts]
        for n, nxt in enumerate(d.steps(texts)):
            for i, t in enumerate(nxt.tolist()):
                if t != d.eos:  # (a text that has ended gets EOS at every later step)
                    cells[i]["tokens"].append(tok.decode([t]))
                    cells[i]["surprise"].append(round(float(d.surprise[i]), 3))
            if n + 1 >= CONTINUATION_TOKENS:
                break
        return cells
