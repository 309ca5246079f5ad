"""Parallel text for the translator: (source, target) pairs read from TSV or JSONL, split, and
tokenized once into the run's data folder (`pairs.npz`, `val_pairs.json`).

TSV: the first two tab-separated fields of each line (further columns, such as Tatoeba's
attribution, are kept in the file and ignored here). JSONL: two fields of each object, named by
`column` (source) and `target_column`, else `source`/`target`, `src`/`tgt`, else the first two
string fields.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core.corpus import Corpus, CorpusError

PAIR_NAMES = (("source", "target"), ("src", "tgt"), ("en", "zh"), ("input", "output"))


def read_pairs(paths, source_field: str | None = None, target_field: str | None = None,
               encodings=()) -> list[tuple[str, str]]:
    from desktop_llm.core.corpus import open_text

    pairs: list[tuple[str, str]] = []
    corpus = Corpus(paths=[str(p) for p in paths], encodings=dict(encodings))
    for s in corpus.usable_sources():
        with open_text(s.path, s.encoding or "utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n").lstrip("\ufeff")
                if not line.strip():
                    continue
                if s.kind == "jsonl":
                    pair = _json_pair(line, source_field, target_field, f"{s.path}:{lineno}")
                else:
                    fields = line.split("\t")
                    if len(fields) < 2:
                        raise CorpusError(f"{s.path}:{lineno}: no tab on this line: a parallel corpus has the "
                                          "source, a tab, then the target on each line.")
                    pair = (fields[0].strip(), fields[1].strip())
                if pair and pair[0] and pair[1]:
                    pairs.append(pair)
    if len(pairs) < 2:
        raise CorpusError("No sentence pairs found: give a TSV (source, tab, target on each line) or a JSONL "
                          "with a source and a target field.")
    return pairs


def _json_pair(line: str, source_field, target_field, where: str) -> tuple[str, str] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        raise CorpusError(f"{where}: not a JSON object.") from None
    if not isinstance(obj, dict):
        return None
    if source_field or target_field:
        if source_field not in obj or target_field not in obj:
            raise CorpusError(f"{where}: no field '{source_field if source_field not in obj else target_field}' "
                              f"(fields: {', '.join(list(obj)[:12])}).")
        return _text(obj, source_field, where), _text(obj, target_field, where)
    for a, b in PAIR_NAMES:
        if a in obj and b in obj:
            return _text(obj, a, where), _text(obj, b, where)
    strings = [v for v in obj.values() if isinstance(v, str)]
    if len(strings) < 2:
        raise CorpusError(f"{where}: fewer than two text fields; name them with --column and --target-column.")
    return strings[0].strip(), strings[1].strip()


def _text(obj: dict, field: str, where: str) -> str:
    """A field's text: a string or a number; a list or an object would become its Python
    spelling ("['a', 'b']") and be learned as a sentence."""
    value = obj[field]
    if isinstance(value, (list, dict)) or value is None:
        kind = "nothing" if value is None else "a list" if isinstance(value, list) else "an object"
        raise CorpusError(f"{where}: field '{field}' holds {kind}, not a sentence.")
    return str(value).strip()


def split(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """A boolean "is validation" per pair: a random share, at least one, never all."""
    is_val = np.zeros(n, bool)
    is_val[np.random.default_rng(seed).permutation(n)[: min(n - 1, max(1, round(val_fraction * n)))]] = True
    return is_val


def special_ids(vocabulary: int) -> tuple[int, int]:
    """([BOS], [EOS]): the decoder's start and end, after the tokenizer's own ids."""
    return vocabulary, vocabulary + 1


class PairData:
    """A run's tokenized pairs: encoder and decoder arrays, the split, the validation texts."""

    FILES = ("pairs.npz", "val_pairs.json")

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        with np.load(folder / "pairs.npz") as z:
            self.arrays = {k: z[k] for k in z.files}
        self.is_val = self.arrays.pop("is_val")
        self.val_pairs: list[list[str]] = json.loads((folder / "val_pairs.json").read_text("utf-8"))
        leaks = folder / "leaked.json"  # validation pairs left out: they repeat training pairs
        self.leaked: int = json.loads(leaks.read_text("utf-8"))["leaked"] if leaks.exists() else 0
        self.train_index = np.flatnonzero(~self.is_val)
        self.val_index = np.flatnonzero(self.is_val)
        src, src_mask = self.arrays["src"], self.arrays["src_mask"]
        self.train = src[self.train_index][src_mask[self.train_index]]  # token counts, for the summary
        self.val = src[self.val_index][src_mask[self.val_index]]

    @staticmethod
    def exists(folder) -> bool:
        return all((Path(folder) / f).exists() for f in PairData.FILES)

    @staticmethod
    def prepare(pairs: list[tuple[str, str]], tok, T: int, folder, val_fraction: float, seed: int) -> dict:
        from desktop_llm.core.leakage import leaked

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        bos, eos = special_ids(tok.vocabulary_size)
        n = len(pairs)
        is_val = split(n, val_fraction, seed)
        # a validation pair that repeats a training pair (source and target) is left out
        drop = leaked([f"{s}\t{t}" for s, t in pairs], is_val)
        pairs = [p for p, d in zip(pairs, drop) if not d]
        is_val, n = is_val[~drop], n - int(drop.sum())
        n_val = int(is_val.sum())
        arrays = {k: np.zeros((n, T), np.int32) for k in ("src", "tgt_in", "tgt_out")}
        masks = {k: np.zeros((n, T), bool) for k in ("src_mask", "tgt_mask")}
        from desktop_llm.core.models.translator.tokenizer import target_encoder

        enc = tok.encode_batch if hasattr(tok, "encode_batch") else (lambda xs: [tok.encode(x) for x in xs])
        enc_target = target_encoder(tok)
        cut = 0
        for i, (s, t) in enumerate(zip(enc([p[0] for p in pairs]), map(enc_target, (p[1] for p in pairs)))):
            cut += len(s) > T or len(t) > T - 1
            s, t = s[:T], t[: T - 1]
            arrays["src"][i, : len(s)] = s
            masks["src_mask"][i, : len(s)] = True
            arrays["tgt_in"][i, : len(t) + 1] = [bos, *t]
            arrays["tgt_out"][i, : len(t) + 1] = [*t, eos]
            masks["tgt_mask"][i, : len(t) + 1] = True
        buf = io.BytesIO()
        np.savez(buf, **arrays, **masks, is_val=is_val)
        atomic.write_text(folder / "val_pairs.json",
                          json.dumps([list(p) for p, v in zip(pairs, is_val) if v], ensure_ascii=False))
        atomic.write_bytes(folder / "pairs.npz", buf.getvalue())  # last: its presence means complete
        atomic.write_json(folder / "leaked.json", {"leaked": int(drop.sum())})
        return {"examples": n, "train_examples": int(n - n_val), "val_examples": int(n_val), "cut": int(cut),
                "leaked": int(drop.sum())}

    def inputs(self, idx) -> dict:
        a = self.arrays
        return {"encoder_token_ids": a["src"][idx], "encoder_padding_mask": a["src_mask"][idx].astype(np.int32),
                "decoder_token_ids": a["tgt_in"][idx], "decoder_padding_mask": a["tgt_mask"][idx].astype(np.int32)}

    def batch(self, step: int, batch: int, seed: int):
        """(inputs, targets, weights) of training batch `step`: a pure function of (seed, step)."""
        n = len(self.train_index)
        picks = []
        while len(picks) < batch:
            epoch, offset = divmod(step * batch + len(picks), n)
            order = np.random.default_rng([seed, epoch, 13]).permutation(n)
            picks += order[offset: offset + batch - len(picks)].tolist()
        idx = self.train_index[picks]
        return self.inputs(idx), self.arrays["tgt_out"][idx], self.arrays["tgt_mask"][idx].astype(np.float32)
