"""Token data for training: the corpus tokenized once into `train.bin` / `val.bin` (flat arrays of
token ids, as in nanoGPT), then random windows drawn from them.

Batches are a pure function of (seed, step), so a resumed run sees exactly the batches it would
have seen without the interruption.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core import events as ev
from desktop_llm.core.config import ConfigError, RunConfig
from desktop_llm.core.corpus import Corpus, Splitter
from desktop_llm.core.tokenizers import Tokenizer
from desktop_llm.errors import Cancelled  # also re-exported: data.Cancelled

IN_GRAPH_MAX_TOKENS = 1 << 27  # a training split held as one tensor in the input pipeline (<= 512 MB)



@dataclass
class DataInfo:
    train_tokens: int
    val_tokens: int
    dtype: str
    characters: int
    leaked: int = 0  # validation lines (of LONG_LINE characters or more) that also occur in training

    def to_dict(self) -> dict:
        return dict(self.__dict__)


LONG_LINE = 40  # shorter lines repeat in any text ("ROMEO:", "Enter a Messenger."): not leakage


def prepare(corpus: Corpus, tokenizer: Tokenizer, folder: str | os.PathLike, val_fraction: float,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> DataInfo:
    """Tokenize the corpus into folder/train.bin and folder/val.bin (written atomically).

    Validation lines that repeat a training line are counted, not removed: a text's lines are
    read in their context, and cutting some out would make another text of the rest."""
    from desktop_llm.core.leakage import normalise

    folder = Path(folder)
    lines: dict[str, set[int]] = {"train": set(), "val": set()}  # hashes of the long lines of each split
    folder.mkdir(parents=True, exist_ok=True)
    corpus.require_text()
    dtype = np.uint16 if tokenizer.vocabulary_size <= 65535 else np.uint32
    total = max(1, corpus.total_bytes())
    splitter = Splitter(val_fraction, total)
    tmp = {k: folder / f".{k}.bin.tmp" for k in ("train", "val")}
    counts = {"train": 0, "val": 0}
    chars = 0
    pending = {"train": [], "val": []}
    pending_len = {"train": 0, "val": 0}

    files = {k: open(tmp[k], "wb") for k in tmp}  # noqa: SIM115 - closed below, on success and on failure
    try:
        def flush(k: str) -> None:
            text = "".join(pending[k])
            pending[k].clear()
            pending_len[k] = 0
            if text:
                ids = np.asarray(tokenizer.encode(text), dtype=dtype)
                ids.tofile(files[k])
                counts[k] += len(ids)

        for piece_source in corpus.iter_text():
            for piece, is_val in splitter.split(piece_source):
                k = "val" if is_val else "train"
                other = "train" if is_val else "val"
                if pending[other]:
                    flush(other)
                pending[k].append(piece)
                pending_len[k] += len(piece)
                lines[k].update(hash(normalise(x)) for x in piece.split("\n") if len(x) >= LONG_LINE)
                chars += len(piece)
                if pending_len[k] >= (1 << 20):
                    flush(k)
            if cancelled and cancelled():
                raise Cancelled("Cancelled: the corpus was not tokenized.")
            if progress:
                progress(min(chars, total), total)
        flush("train")
        flush("val")
        for f in files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        for k, path in tmp.items():
            os.replace(path, folder / f"{k}.bin")
    except BaseException:
        for k, f in files.items():
            f.close()
            tmp[k].unlink(missing_ok=True)
        raise
    info = DataInfo(counts["train"], counts["val"], np.dtype(dtype).name, chars,
                    leaked=len(lines["val"] & lines["train"]))
    atomic.write_json(folder / "data.json", info.to_dict())
    return info


class TokenData:
    """Memory-mapped train/val token arrays and the batch sampler."""

    FILES = ("data.json", "train.bin", "val.bin")
    leaks_kept = True  # repeated validation lines are counted, not removed (see `prepare`)

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        meta = json.loads((folder / "data.json").read_text("utf-8"))
        self.info = DataInfo(**meta)
        dtype = np.dtype(self.info.dtype)
        self.train = self._map(folder / "train.bin", dtype)
        self.val = self._map(folder / "val.bin", dtype)
        self.leaked = self.info.leaked  # (counted, kept: see `prepare`)

    @staticmethod
    def _map(path: Path, dtype) -> np.ndarray:
        if path.stat().st_size == 0:
            return np.zeros((0,), dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r")

    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        folder = Path(folder)
        return all((folder / n).exists() for n in TokenData.FILES)

    def check(self, sequence_length: int) -> None:
        """Refuse a context longer than the data allows, before anything trains."""
        need = sequence_length + 2
        if len(self.train) < need:
            raise ConfigError(
                f"The training split has {len(self.train)} tokens, too few for a context of "
                f"{sequence_length}: use a shorter context (at most {max(1, len(self.train) - 2)}) "
                f"or a bigger corpus."
            )
        if len(self.val) < need:
            raise ConfigError(
                f"The validation split has {len(self.val)} tokens, too few for a context of "
                f"{sequence_length}: raise the validation fraction, shorten the context "
                f"(at most {max(1, len(self.val) - 2)}), or use a bigger corpus."
            )

    def train_batch(self, step: int, batch_size: int, sequence_length: int, seed: int):
        """Random windows for `step`: (inputs, targets), each (batch, time) int32."""
        starts = self.train_starts(step, batch_size, sequence_length, seed)
        idx = starts[:, None] + np.arange(sequence_length + 1)[None, :]
        w = np.asarray(self.train[idx], dtype=np.int32)
        return w[:, :-1], w[:, 1:]

    def val_batches(self, n_batches: int, batch_size: int, sequence_length: int):
        """A fixed set of validation windows, evenly spread over the split: (inputs, targets)."""
        n = n_batches * batch_size
        hi = len(self.val) - sequence_length - 1
        starts = np.linspace(0, hi, num=n).astype(np.int64)
        idx = starts[:, None] + np.arange(sequence_length + 1)[None, :]
        w = np.asarray(self.val[idx], dtype=np.int32)
        return w[:, :-1], w[:, 1:]

    def train_starts(self, step: int, batch_size: int, sequence_length: int, seed: int) -> np.ndarray:
        """Where `step`'s windows start in the training split: a pure function of (seed, step)."""
        rng = np.random.default_rng([seed, step])
        return rng.integers(0, len(self.train) - sequence_length - 1, size=batch_size)


def corpus_of(cfg: RunConfig) -> Corpus:
    """The corpus a run's config names (its files, texts, column and chosen encodings)."""
    return Corpus(paths=list(cfg.data.paths), texts=list(cfg.data.texts), column=cfg.data.column,
                  encodings=dict(cfg.data.encodings))


def ensure_data(run, cfg: RunConfig, tok: Tokenizer, emit: Callable[[dict], None]) -> TokenData:
    """The run's token windows, made once into its data folder (a family's default data)."""
    if not TokenData.exists(run.data_dir):
        emit(ev.Phase(phase="data", message="Tokenizing the corpus").to_dict())
        corpus = corpus_of(cfg)
        last = [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] > 0.5:
                last[0] = now
                emit(ev.Phase(phase="data", progress=done / max(1, total), message="Tokenizing the corpus").to_dict())

        info = prepare(corpus, tok, run.data_dir, cfg.data.val_fraction, progress=progress)
        bad = [s for s in corpus.sources if not s.ok or s.unsure]  # unsure: read, but say so
        for s in bad:
            emit(ev.Warning(message=f"{s.path}: {s.reason}").to_dict())
        emit(ev.Data(**info.to_dict()).to_dict())
    return TokenData(run.data_dir)
