"""Tokenizers trained on a corpus: character, byte, WordPiece and SentencePiece (unigram or BPE).

All share one small interface (`encode`, `decode`, `token_text`, `vocabulary_size`, `save`,
`load`) so the rest of the engine only sees token ids. Round trips are exact for `char` (on
characters seen in training), `byte`, `sentencepiece` and `bpe` (identity normalisation and byte
fallback); WordPiece drops whitespace by design, and its decoder joins CJK characters without
spaces.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from desktop_llm.core import atomic
from desktop_llm.core.config import LEARNED_KINDS, MIN_LEARNED_VOCAB
from desktop_llm.core.corpus import CorpusError, is_cjk
from desktop_llm.errors import DesktopLLMError

KINDS = ("char", "byte", "wordpiece", "sentencepiece", "bpe")
KIND_LABELS = {
    "char": "Character (Unicode code point)",
    "byte": "Byte (UTF-8, 256 ids)",
    "wordpiece": "WordPiece (trained vocabulary)",
    "sentencepiece": "SentencePiece unigram (trained)",
    "bpe": "BPE (SentencePiece, trained)",
}
LOSSLESS = {"char": True, "byte": True, "wordpiece": False, "sentencepiece": True, "bpe": True}
DEFAULT_VOCAB = {"char": 0, "byte": 256, "wordpiece": 2000, "sentencepiece": 2000, "bpe": 2000}


class TokenizerError(DesktopLLMError, ValueError):
    pass


class Tokenizer:
    """Common interface. Subclasses set `kind` and implement the abstract parts."""

    kind = ""

    @property
    def vocabulary_size(self) -> int:
        raise NotImplementedError

    @property
    def lossless(self) -> bool:
        return LOSSLESS[self.kind]

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def token_text(self, token_id: int) -> str:
        """How one token reads on its own (for vocabulary browsers and coloured token views)."""
        raise NotImplementedError

    def vocabulary(self) -> list[str]:
        return [self.token_text(i) for i in range(self.vocabulary_size)]

    @property
    def placeholder_ids(self) -> list[int]:
        """Ids that stand for no text (unknown, padding): generation never samples them, since
        they would print as <unk> or � (an undertrained model gives them some probability)."""
        return []

    def _save_files(self, folder: Path) -> dict:
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "vocabulary_size": self.vocabulary_size}
        meta.update(self._save_files(folder))
        atomic.write_json(folder / "tokenizer.json", meta)

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)


class StreamDecoder:
    """Turns a stream of token ids into a stream of text pieces.

    Holds back text that ends in an incomplete character (a byte-level token sequence cut inside
    a UTF-8 sequence decodes to U+FFFD until its last byte arrives). Each step decodes only the
    tail since the previous emission, twice (with and without the new ids) and emits the
    difference, so a long generation costs O(n), not O(n^2), and a decoder that treats the first
    token specially (SentencePiece drops its leading space) treats both decodings alike.
    """

    def __init__(self, tokenizer: Tokenizer, max_hold: int = 4):
        self.tok = tokenizer
        self.ids: list[int] = []
        self.max_hold = max_hold
        self.held = 0
        self.prefix = 0  # start of the decoded tail: the ids emitted by the previous step
        self.read = 0  # ids[:read] have been emitted

    def _piece(self) -> str:
        before = self.tok.decode(self.ids[self.prefix:self.read])
        text = self.tok.decode(self.ids[self.prefix:])
        if text.startswith(before):
            return text[len(before):]
        # a decoder that rewrote earlier text: emit only what is new past the common prefix
        return text[len(os.path.commonprefix([text, before])):]  # noqa: RUF071 - text, not paths

    def feed(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        piece = self._piece()
        if piece.endswith("\ufffd") and self.held < self.max_hold:
            self.held += 1
            return ""
        self.held = 0
        self.prefix, self.read = self.read, len(self.ids)
        return piece

    def flush(self) -> str:
        """What is still held back at the end of the stream (text that really ends in U+FFFD)."""
        piece = self._piece()
        self.prefix, self.read, self.held = self.read, len(self.ids), 0
        return piece


# --------------------------------------------------------------------------- character


class CharTokenizer(Tokenizer):
    """One id per Unicode code point seen in training; id 0 is `<unk>` for unseen characters.

    Written by hand: keras-hub's UnicodeCodepointTokenizer uses raw code points as ids, which
    would give a Chinese corpus an embedding table of ~40k rows for ~4k characters.
    """

    kind = "char"
    UNK = "<unk>"

    placeholder_ids: ClassVar[list[int]] = [0]  # <unk>

    def __init__(self, chars: Sequence[str]):
        self.chars = [self.UNK] + [c for c in chars if c != self.UNK]
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocabulary_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        get = self.index.get
        return [get(c, 0) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        chars = self.chars
        n = len(chars)
        return "".join(chars[i] if 0 < i < n else "\ufffd" for i in ids)

    def token_text(self, token_id: int) -> str:
        return self.chars[token_id] if 0 <= token_id < len(self.chars) else "\ufffd"

    def _save_files(self, folder: Path) -> dict:
        atomic.write_json(folder / "vocabulary.json", self.chars)
        return {"files": ["vocabulary.json"]}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> CharTokenizer:
        chars = json.loads((folder / "vocabulary.json").read_text("utf-8"))
        return cls(chars[1:])

    @classmethod
    def train(cls, texts: Iterable[str], vocabulary_size: int = 0, **_) -> CharTokenizer:
        counts: collections.Counter[str] = collections.Counter()
        for t in texts:
            counts.update(t)
        if not counts:
            raise CorpusError("The corpus is empty: there is no text to build a vocabulary from.")
        chars = sorted(counts)
        if vocabulary_size and len(chars) + 1 > vocabulary_size:
            keep = {c for c, _ in counts.most_common(max(1, vocabulary_size - 1))}
            chars = [c for c in chars if c in keep]
        return cls(chars)


# --------------------------------------------------------------------------- byte


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255: lossless for any text, no training.

    Written by hand: it is `str.encode`; keras-hub's ByteTokenizer does the same through TF ops
    with a per-call overhead that matters when decoding token by token.
    """

    kind = "byte"

    @property
    def vocabulary_size(self) -> int:
        return 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) & 0xFF for i in ids).decode("utf-8", errors="replace")

    def token_text(self, token_id: int) -> str:
        if 32 <= token_id < 127:
            return chr(token_id)
        if token_id == 10:
            return "\n"
        return f"<0x{token_id:02X}>"

    def _save_files(self, folder: Path) -> dict:
        return {}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> ByteTokenizer:
        return cls()

    @classmethod
    def train(cls, texts: Iterable[str], vocabulary_size: int = 0, **_) -> ByteTokenizer:
        return cls()


# --------------------------------------------------------------------------- WordPiece


class WordPieceTokenizer(Tokenizer):
    """keras-hub's WordPiece tokenizer with a vocabulary trained by keras-hub's trainer."""

    kind = "wordpiece"
    RESERVED: ClassVar[list[str]] = ["[PAD]", "[UNK]"]

    placeholder_ids: ClassVar[list[int]] = [0, 1]  # RESERVED: [PAD], [UNK]

    def __init__(self, vocabulary: list[str]):
        import keras_hub

        self.vocab = list(vocabulary)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self._tok = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.vocab, lowercase=False, strip_accents=False, oov_token="[UNK]",
            dtype="int32",
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        if not text:
            return []
        return [int(i) for i in _to_list(self._tok(text))]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return [[int(i) for i in r] for r in _to_list(self._tok(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        # Written by hand: keras-hub joins all pieces with spaces, which puts a space between
        # every pair of Chinese characters. Join "##" pieces, CJK and punctuation without spaces.
        out: list[str] = []
        prev = ""
        for i in ids:
            i = int(i)
            tok = self.vocab[i] if 0 <= i < len(self.vocab) else "[UNK]"
            if tok == "[PAD]":
                continue
            if tok.startswith("##"):
                piece, space = tok[2:], False
            else:
                piece = tok
                space = bool(out) and not (
                    (prev and is_cjk(prev[-1])) or is_cjk(piece[0]) or _no_space_before(piece)
                    or _no_space_after(prev)
                )
            if space:
                out.append(" ")
            out.append(piece)
            prev = piece
        return "".join(out)

    def token_text(self, token_id: int) -> str:
        return self.vocab[token_id] if 0 <= token_id < len(self.vocab) else "[UNK]"

    def _save_files(self, folder: Path) -> dict:
        atomic.write_json(folder / "vocabulary.json", self.vocab)
        return {"files": ["vocabulary.json"]}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> WordPieceTokenizer:
        return cls(json.loads((folder / "vocabulary.json").read_text("utf-8")))

    @classmethod
    def train(cls, texts: Iterable[str], vocabulary_size: int = 2000, **_) -> WordPieceTokenizer:
        import keras_hub

        try:  # keras-hub computes the vocabulary with tf.data and tensorflow-text, on any backend
            import tensorflow as tf
        except ImportError:
            raise TokenizerError("Training a WordPiece tokenizer needs TensorFlow (and tensorflow-text), which is "
                                 "not installed here: pick the character, byte, SentencePiece or BPE tokenizer.") from None

        from desktop_llm.core.device import gpu_memory_growth

        gpu_memory_growth()  # (the window trains this tokenizer: never take the whole GPU for it)
        lines = [ln for t in texts for ln in t.split("\n") if ln.strip()]
        if not lines:
            raise CorpusError("The corpus is empty: there is no text to build a vocabulary from.")
        ds = tf.data.Dataset.from_tensor_slices(lines).batch(1024)
        vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
            ds, vocabulary_size, lowercase=False, strip_accents=False, split_on_cjk=True,
            reserved_tokens=cls.RESERVED,
        )
        return cls(vocab)


def _to_list(x):
    if hasattr(x, "to_list"):  # tf.RaggedTensor
        return x.to_list()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return x.tolist()


_NO_SPACE_BEFORE = set(".,;:!?)]}'\"%、。，；：！？）」』》")
_NO_SPACE_AFTER = set("([{\"'「『《")


def _no_space_before(piece: str) -> bool:
    return len(piece) == 1 and piece in _NO_SPACE_BEFORE


def _no_space_after(prev: str) -> bool:
    return len(prev) == 1 and prev in _NO_SPACE_AFTER


# --------------------------------------------------------------------------- SentencePiece


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model (unigram or BPE) trained on the corpus.

    Trained with the `sentencepiece` library directly: keras-hub's `compute_sentence_piece_proto`
    does not expose the options a lossless round trip needs (identity normalisation, no dummy
    prefix, kept whitespace, byte fallback). The same proto loads into
    `keras_hub.tokenizers.SentencePieceTokenizer` (see `to_keras_hub`).
    """

    kind = "sentencepiece"

    def __init__(self, proto: bytes, kind: str = "sentencepiece"):
        import sentencepiece as spm

        self.kind = kind
        self.proto = proto
        self.sp = spm.SentencePieceProcessor(model_proto=proto)

    @property
    def vocabulary_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    @property
    def placeholder_ids(self) -> list[int]:
        return [i for i in (self.sp.unk_id(), self.sp.pad_id()) if 0 <= i < self.vocabulary_size]

    def token_text(self, token_id: int) -> str:
        if not 0 <= token_id < self.vocabulary_size:
            return "\ufffd"
        return self.sp.id_to_piece(token_id).replace("\u2581", " ")

    def to_keras_hub(self):
        import keras_hub

        return keras_hub.tokenizers.SentencePieceTokenizer(proto=self.proto)

    def _save_files(self, folder: Path) -> dict:
        atomic.write_bytes(folder / "sentencepiece.model", self.proto)
        return {"files": ["sentencepiece.model"]}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> SentencePieceTokenizer:
        return cls((folder / "sentencepiece.model").read_bytes(), kind=meta["kind"])

    @classmethod
    def train(cls, texts: Iterable[str], vocabulary_size: int = 2000, kind: str = "sentencepiece",
              max_sentences: int = 2_000_000, grow: bool = False, **_) -> SentencePieceTokenizer:
        """`grow`: the size was not the user's choice (the default), so a corpus with more
        frequent characters than it holds (Chinese) gets the smallest vocabulary that fits."""
        import sentencepiece as spm

        sample = _sample_sentences(texts, max_sentences)
        if not sample:
            raise CorpusError("The corpus is empty: there is no text to build a vocabulary from.")
        # A small vocabulary cannot hold every character of a Chinese corpus: lower the character
        # coverage step by step; byte fallback keeps the rare characters lossless.
        for coverage in (0.9995, 0.995, 0.98):
            model = io.BytesIO()
            try:
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(sample),
                    model_writer=model,
                    vocab_size=vocabulary_size,
                    model_type="bpe" if kind == "bpe" else "unigram",
                    normalization_rule_name="identity",
                    add_dummy_prefix=False,
                    remove_extra_whitespaces=False,
                    split_by_whitespace=True,
                    allow_whitespace_only_pieces=True,
                    byte_fallback=True,
                    character_coverage=coverage,
                    user_defined_symbols=["\n"],
                    hard_vocab_limit=False,
                    max_sentence_length=8192,
                    bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
                    num_threads=max(1, min(4, os.cpu_count() or 1)),
                    minloglevel=2,
                )
                break
            except RuntimeError as e:
                msg = str(e)
                if "required_chars" in msg and coverage > 0.98:
                    continue
                m = re.search(r"(\d+) vs (\d+)", msg)
                if "required_chars" in msg and m and grow:
                    return cls.train(sample, int(m.group(2)) + 300, kind, max_sentences)
                if "required_chars" in msg and m:
                    raise TokenizerError(
                        f"A vocabulary of {vocabulary_size} is too small for this corpus: {m.group(2)} entries are "
                        "needed before any merge (each frequent character of the corpus, the 256 byte pieces "
                        "that keep rare text lossless, and the special tokens). Use at least "
                        f"{int(m.group(2)) + 300}, or the character tokenizer."
                    ) from None
                raise TokenizerError(f"SentencePiece could not train on this corpus: {e}") from None
        return cls(model.getvalue(), kind=kind)


def _sample_sentences(texts: Iterable[str], limit: int, seed: int = 1234) -> list[str]:
    """Lines of the corpus (long ones cut to 1000 characters), reservoir-sampled to `limit`.

    Bounds the trainer's memory on huge corpora and makes the sample replayable.
    """
    import random

    rng = random.Random(seed)
    out: list[str] = []
    n = 0
    for t in texts:
        for ln in t.split("\n"):
            for i in range(0, max(1, len(ln)), 1000):
                piece = ln[i : i + 1000]
                if not piece:
                    continue
                n += 1
                if len(out) < limit:
                    out.append(piece)
                else:
                    j = rng.randrange(n)
                    if j < limit:
                        out[j] = piece
    return out


# --------------------------------------------------------------------------- factory

_CLASSES = {
    "char": CharTokenizer,
    "byte": ByteTokenizer,
    "wordpiece": WordPieceTokenizer,
    "sentencepiece": SentencePieceTokenizer,
    "bpe": SentencePieceTokenizer,
}
_LOADERS: dict[str, type[Tokenizer]] = dict(_CLASSES)  # kind -> class that loads a saved folder


class KerasHubTokenizer(Tokenizer):
    """The tokenizer of a keras-hub preset folder (GPT-2's byte-level BPE, or the RWKV tokenizer of
    a desktop_llm char export), read with keras-hub's own `Tokenizer.from_preset`: a run that
    continues a preset reads text exactly as the preset's model was trained to. Saved as the
    preset's tokenizer files in `keras_hub/` (keras-hub's own tokenizer.json, its assets and
    metadata), beside our tokenizer.json."""

    kind = "keras-hub"
    FILES = ("tokenizer.json", "metadata.json", "config.json", "assets/tokenizer")  # config: from_preset asks for it

    def __init__(self, folder: Path):
        import keras_hub

        self.folder = Path(folder)
        self.tok = keras_hub.tokenizers.Tokenizer.from_preset(str(self.folder))
        self.class_name = type(self.tok).__name__

    @property
    def vocabulary_size(self) -> int:
        return int(self.tok.vocabulary_size())

    @property
    def lossless(self) -> bool:
        return True

    def encode(self, text: str) -> list[int]:
        import numpy as np

        return [int(i) for i in np.asarray(self.tok(text)).reshape(-1)] if text else []

    def decode(self, ids: Sequence[int]) -> str:
        if not len(ids):
            return ""
        out = self.tok.detokenize([int(i) for i in ids])
        out = out.numpy() if hasattr(out, "numpy") else out
        return out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)

    def token_text(self, token_id: int) -> str:
        return self.decode([token_id])

    def _save_files(self, folder: Path) -> dict:
        import shutil

        target = folder / "keras_hub"
        for name in self.FILES:
            src = self.folder / name
            if src.is_dir():
                shutil.copytree(src, target / name, dirs_exist_ok=True)
            elif src.exists():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                atomic.write_bytes(target / name, src.read_bytes())
        return {"keras_hub_class": self.class_name}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> KerasHubTokenizer:
        return cls(folder / "keras_hub")


_LOADERS[KerasHubTokenizer.kind] = KerasHubTokenizer


def is_keras_hub_preset(folder: str | os.PathLike) -> bool:
    """A keras-hub preset folder (what `save_to_preset` writes: metadata.json and config.json)."""
    folder = Path(folder)
    try:
        return "keras_hub_version" in json.loads((folder / "metadata.json").read_text("utf-8")) and (
            folder / "config.json").exists()
    except (OSError, ValueError):
        return False


def register_tokenizer(cls: type[Tokenizer]) -> None:
    """Let `load_tokenizer` read folders of `cls.kind`: a family's own tokenizer (a translator's
    pair of tokenizers) registers itself when its family is imported (`core.models.families()`)."""
    _LOADERS[cls.kind] = cls


def train_tokenizer(kind: str, texts: Iterable[str], vocabulary_size: int | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` on an iterable of text chunks."""
    if kind not in _CLASSES:
        raise TokenizerError(f"Unknown tokenizer kind '{kind}'. Choose one of: {', '.join(KINDS)}.")
    size = DEFAULT_VOCAB[kind] if vocabulary_size is None else int(vocabulary_size)
    if kind in LEARNED_KINDS and size < MIN_LEARNED_VOCAB:
        raise TokenizerError(f"A {kind} vocabulary needs at least {MIN_LEARNED_VOCAB} entries (got {size}).")
    if kind in ("sentencepiece", "bpe") and size < 300:
        size = max(size, 300)  # 256 byte-fallback pieces + specials must fit
    return _CLASSES[kind].train(texts, vocabulary_size=size, kind=kind, grow=vocabulary_size is None)


def check_vocabulary(kind: str, texts: Iterable[str], vocabulary_size: int, sample_lines: int = 20_000) -> None:
    """Refuse (TokenizerError) a SentencePiece or BPE size too small for this corpus before a run
    exists: the tokenizer trains on a sample of its lines (a second or two), which needs no more
    entries than the whole corpus, so a refusal here is certain. (The size a corpus needs is
    SentencePiece's own count of its frequent characters: not one to reimplement.)"""
    if kind not in ("sentencepiece", "bpe"):
        return
    lines = []
    for t in texts:
        lines += t.split("\n")
        if len(lines) >= sample_lines:
            break
    try:
        train_tokenizer(kind, ["\n".join(lines[:sample_lines])], vocabulary_size)
    except TokenizerError as e:
        if "too small for this corpus" in str(e):
            raise


def unknown_share(tokenizer: Tokenizer, texts: Iterable[str], limit: int = 200_000) -> float:
    """The share of `texts`' tokens (their first `limit` characters) that the tokenizer can only
    write as an unknown id: a character tokenizer's unseen characters, WordPiece's [UNK]. A model
    reading through that tokenizer sees nothing of them."""
    unknown = set(tokenizer.placeholder_ids)
    total = bad = read = 0
    for text in texts:
        ids = tokenizer.encode(text[: max(0, limit - read)])
        read += len(text)
        total += len(ids)
        bad += sum(1 for i in ids if i in unknown)
        if read >= limit:
            break
    return bad / total if total else 0.0


def load_tokenizer(folder: str | os.PathLike) -> Tokenizer:
    """A saved tokenizer folder, or a keras-hub preset folder's tokenizer (`KerasHubTokenizer`)."""
    folder = Path(folder)
    if is_keras_hub_preset(folder):
        if not (folder / "tokenizer.json").exists():
            raise TokenizerError(f"The keras-hub preset in {folder} has no tokenizer (tokenizer.json): a model "
                                 "without one cannot read text.")
        try:
            return KerasHubTokenizer(folder)
        except Exception as e:  # noqa: BLE001 - keras-hub fails in its own ways
            raise TokenizerError(f"The tokenizer of the keras-hub preset in {folder} could not be loaded: "
                                 f"{str(e).splitlines()[0][:200]}") from None
    try:
        meta = json.loads((folder / "tokenizer.json").read_text("utf-8"))
        cls = _LOADERS[meta["kind"]]
    except FileNotFoundError:
        raise TokenizerError(f"No tokenizer in {folder} (tokenizer.json is missing).") from None
    except (ValueError, KeyError) as e:
        raise TokenizerError(f"The tokenizer in {folder} is damaged: {e}") from None
    try:
        return cls._load(folder, meta)
    except Exception as e:  # noqa: BLE001 - each kind's library fails in its own way
        raise TokenizerError(f"The tokenizer in {folder} could not be loaded: {e}") from None


