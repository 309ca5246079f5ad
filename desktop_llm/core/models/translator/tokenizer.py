"""Two tokenizers in one id space, for a translator whose source and target are best read apart
(English words by WordPiece, Chinese characters by their own vocabulary): the source tokenizer's
ids come first, the target's follow, offset by the source's size. The model embeds both in one
table, as BART does with a shared vocabulary, so nothing else in the engine needs to know.

`encode` reads a source sentence (what a user types), `encode_target` a target one; `decode`
and `token_text` read either side's ids. Saved as a folder with `source/` and `target/` inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path

from desktop_llm.core.tokenizers import Tokenizer, load_tokenizer, register_tokenizer, train_tokenizer


class PairTokenizer(Tokenizer):
    kind = "pair"

    def __init__(self, source: Tokenizer, target: Tokenizer):
        self.source, self.target = source, target
        self.offset = source.vocabulary_size

    @property
    def vocabulary_size(self) -> int:
        return self.source.vocabulary_size + self.target.vocabulary_size

    @property
    def lossless(self) -> bool:
        return self.source.lossless and self.target.lossless

    @property
    def target_ids(self) -> range:
        """The ids a translation is written in."""
        return range(self.offset, self.vocabulary_size)

    def encode(self, text: str) -> list[int]:
        return self.source.encode(text)

    def encode_target(self, text: str) -> list[int]:
        return [self.offset + i for i in self.target.encode(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """Each run of one side's ids decoded by that side's tokenizer."""
        out = []
        for is_target, run in groupby(ids, key=lambda i: i >= self.offset):
            run = list(run)
            out.append(self.target.decode([i - self.offset for i in run]) if is_target else self.source.decode(run))
        return "".join(out)

    def token_text(self, token_id: int) -> str:
        if token_id >= self.offset:
            return self.target.token_text(token_id - self.offset)
        return self.source.token_text(token_id)

    def _save_files(self, folder: Path) -> dict:
        self.source.save(folder / "source")
        self.target.save(folder / "target")
        return {"source": self.source.kind, "target": self.target.kind}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> PairTokenizer:
        return cls(load_tokenizer(folder / "source"), load_tokenizer(folder / "target"))

    @classmethod
    def train(cls, pairs: Iterable[tuple[str, str]], kind: str, vocabulary_size: int | None = None) -> PairTokenizer:
        pairs = list(pairs)
        return cls(train_tokenizer(kind, (s + "\n" for s, _ in pairs), vocabulary_size),
                   train_tokenizer(kind, (t + "\n" for _, t in pairs), vocabulary_size))


register_tokenizer(PairTokenizer)


def target_encoder(tok):
    """How `tok` encodes a target sentence (a shared tokenizer: as any text)."""
    return getattr(tok, "encode_target", tok.encode)


def target_ids(tok) -> range:
    """The ids a translation may use (a shared tokenizer: all of them)."""
    return getattr(tok, "target_ids", range(tok.vocabulary_size))
