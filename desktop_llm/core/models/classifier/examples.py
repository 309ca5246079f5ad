"""Labelled examples for the classifier: read them, split them by class, tokenize them once.

Three layouts, as users keep labelled text:
- a CSV / TSV / JSONL file with a text column and a label column;
- a folder of folders, one per class, each file in it one example (as IMDB's aclImdb);
- text files, one per class (a folder of them, or the files themselves): each blank-line separated
  block is one example (the bundled corpora: poem / prose / drama).

The run's data folder keeps the result (`examples.npz`, `classes.json`, `val_texts.json`), so a
resumed run sees the same split and the Classify page can list misclassified texts.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core.corpus import Corpus, CorpusError, record_columns

LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment")
TEXT_NAMES = ("text", "sentence", "review", "content", "body")
_BLANK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in _BLANK.split(text) if b.strip()]


def _records(paths: list[str], text_column, label_column, encodings) -> list[Example]:
    """Examples from CSV / TSV / JSONL files with a label column."""
    out: list[Example] = []
    corpus = Corpus(paths=paths, encodings=dict(encodings))
    for s in corpus.usable_sources():
        cols = record_columns(s, scalars=True)  # labels: {"label": 0} as well as {"label": "spam"}
        label = label_column or next((c for c in cols if c.lower() in LABEL_NAMES), None)
        if label is None or label not in cols:
            every = record_columns(s, any_value=True)
            named = label_column or next((c for c in every if c.lower() in LABEL_NAMES), None)
            if named in every:  # there, but its values are lists or objects
                raise CorpusError(f"{s.path}: the label of a record is a list or an object ('{named}'); a "
                                  "classifier needs one label per text (a string or a whole number).")
            raise CorpusError(f"{s.path}: no label column" + (f" '{label_column}'" if label_column else "")
                              + f" (columns: {', '.join(cols[:12]) or 'none'}). Choose one with --label-column.")
        text = text_column or next((c for c in cols if c.lower() in TEXT_NAMES), None) or next(
            (c for c in cols if c != label), None)
        if text is None or text not in cols or text == label:
            raise CorpusError(f"{s.path}: no text column" + (f" '{text_column}'" if text_column else "")
                              + f" (columns: {', '.join(cols[:12])}). Choose one with --column.")
        for row in _rows(s):
            t, y = row.get(text), row.get(label)
            if isinstance(y, (list, dict)):  # its Python text would become a class of its own
                raise CorpusError(f"{s.path}: the label of a record is a {type(y).__name__} ({json.dumps(y)[:60]}); "
                                  "a classifier needs one label per text (a string or a whole number).")
            if isinstance(t, str) and t.strip() and y is not None and str(y).strip():
                out.append(Example(t.strip(), str(y).strip(), s.path))
    return out


def _rows(source):
    import csv

    from desktop_llm.core.corpus import open_text

    if source.kind == "jsonl":
        with open_text(source.path, source.encoding or "utf-8") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    yield obj
    else:
        csv.field_size_limit(1 << 30)
        with open_text(source.path, source.encoding or "utf-8", newline="") as f:
            yield from csv.DictReader(f, delimiter="\t" if source.kind == "tsv" else ",")


def _documents(path: str, encodings) -> list[str]:
    """Each readable document under `path` (a file, or every file of a folder) as one string."""
    corpus = Corpus(paths=[path], encodings=dict(encodings))
    return ["".join(chunks) for _, chunks in corpus.iter_documents()]


def read_examples(paths, text_column: str | None = None, label_column: str | None = None,
                  encodings=(), training: bool = True) -> list[Example]:
    """Every labelled example under `paths` (see the module docstring for the layouts). Data to
    train on needs two classes of two examples; a test set (`training=False`) only some examples."""
    examples: list[Example] = []
    plain: list[str] = []  # plain text files, one class each
    for p in map(str, paths):
        path = Path(os.path.expanduser(p))
        if not path.exists():
            raise CorpusError(f"{p}: no such file or folder.")
        if path.is_dir():
            subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
            if subdirs:  # a folder of folders: the folder's name is the class, a file an example
                for d in subdirs:
                    examples += [Example(t.strip(), d.name, str(d)) for t in _documents(str(d), encodings)
                                 if t.strip()]
            else:
                plain += [str(f) for f in sorted(path.iterdir())
                          if f.is_file() and not f.name.startswith((".", "_")) and f.suffix.lower() in
                          ("", ".txt", ".text", ".md")]
                examples += _records([str(f) for f in sorted(path.iterdir()) if f.suffix.lower() in
                                      (".csv", ".tsv", ".jsonl", ".ndjson")], text_column, label_column,
                                     encodings)
        elif path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
            examples += _records([str(path)], text_column, label_column, encodings)
        else:
            plain.append(str(path))
    if len(plain) == 1 and not examples and training:
        raise CorpusError(f"{plain[0]} is one plain text file: that is one class. Give a CSV / JSONL with a "
                          "label column, a folder with one subfolder per class, or one text file per class.")
    for f in plain:
        examples += [Example(b, Path(f).stem, f) for doc in _documents(f, encodings) for b in _blocks(doc)]
    if training:
        check_classes(examples)
    elif not examples:
        raise CorpusError("No labelled examples found.")
    return examples


def check_classes(examples: list[Example]) -> None:
    counts = class_counts(examples)
    if not counts:
        raise CorpusError("No labelled examples found.")
    if len(counts) < 2:
        raise CorpusError(f"Only one class ('{next(iter(counts))}'): a classifier needs at least two.")
    few = [c for c, n in counts.items() if n < 2]
    if few:
        raise CorpusError(f"Class '{few[0]}' has 1 example; each class needs at least 2 (one to train on, "
                          "one to validate with).")


def class_counts(examples: list[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.label] = counts.get(e.label, 0) + 1
    return dict(sorted(counts.items()))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """A boolean "is validation" per example: the same share of every class (at least one each,
    never all of one), chosen by `seed`."""
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = min(len(idx) - 1, max(1, round(val_fraction * len(idx))))
        is_val[rng.permutation(idx)[:n]] = True
    return is_val


def special_ids(vocabulary: int) -> tuple[int, int]:
    """([CLS], [SEP]): after the tokenizer's ids and [MASK], as the masked-LM family lays them out."""
    return vocabulary + 1, vocabulary + 2


def encode(tok, texts: list[str], T: int, specials: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """([CLS] text [SEP] padded to T, real-token mask, how many texts were cut to fit). Without
    `specials` (a GPT base, which never saw them) the text alone."""
    cls, sep = special_ids(tok.vocabulary_size)
    room = T - 2 if specials else T
    ids = np.zeros((len(texts), T), np.int32)
    mask = np.zeros((len(texts), T), bool)
    cut = 0
    many = tok.encode_batch(texts) if hasattr(tok, "encode_batch") else [tok.encode(t) for t in texts]
    for i, row in enumerate(many):
        if len(row) > room:
            cut += 1
        row = [cls, *row[:room], sep] if specials else list(row[:room]) or [0]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    return ids, mask, cut


class LabelledData:
    """A run's tokenized examples: train / validation arrays and the class names."""

    FILES = ("examples.npz", "classes.json", "val_texts.json")

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        with np.load(folder / "examples.npz") as z:
            self.token_ids, self.mask, self.labels, self.is_val = (z["token_ids"], z["mask"], z["labels"],
                                                                   z["is_val"])
        meta = json.loads((folder / "classes.json").read_text("utf-8"))
        self.classes: list[str] = meta["classes"]
        self.cut: int = meta.get("cut", 0)
        self.leaked: int = meta.get("leaked", 0)  # validation texts left out: they repeat training texts
        self.specials: bool = meta.get("specials", True)
        self.val_texts: list[str] = json.loads((folder / "val_texts.json").read_text("utf-8"))
        self.train_index = np.flatnonzero(~self.is_val)
        self.val_index = np.flatnonzero(self.is_val)
        self.by_class = [self.train_index[self.labels[self.train_index] == c] for c in range(len(self.classes))]
        counts = np.array([len(b) for b in self.by_class], np.float64)
        self.prior = counts / max(1.0, counts.sum())  # the classes' shares in training (report.predict_proba)
        # token streams, for the trainer's summary ("train tokens") and nothing else
        self.train = self.token_ids[self.train_index][self.mask[self.train_index]]
        self.val = self.token_ids[self.val_index][self.mask[self.val_index]]

    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        return all((Path(folder) / f).exists() for f in LabelledData.FILES)

    @staticmethod
    def prepare(examples: list[Example], tok, T: int, folder: str | os.PathLike, val_fraction: float,
                seed: int, specials: bool = True) -> dict:
        """Tokenize and split `examples` into `folder`; returns a summary for the run's events.
        Validation texts that repeat a training text (core/leakage.py) are left out."""
        from desktop_llm.core.leakage import leaked

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        classes = sorted({e.label for e in examples})
        labels = np.array([classes.index(e.label) for e in examples], np.int32)
        is_val = stratified_split(labels, val_fraction, seed)
        drop = leaked([e.text for e in examples], is_val)
        if drop.any():
            examples = [e for e, d in zip(examples, drop) if not d]
            labels, is_val = labels[~drop], is_val[~drop]
        token_ids, mask, cut = encode(tok, [e.text for e in examples], T, specials)
        import io

        buf = io.BytesIO()
        np.savez(buf, token_ids=token_ids, mask=mask, labels=labels, is_val=is_val)
        atomic.write_text(folder / "val_texts.json",
                          json.dumps([e.text for e, v in zip(examples, is_val) if v], ensure_ascii=False))
        counts = {c: int((labels == i).sum()) for i, c in enumerate(classes)}
        atomic.write_json(folder / "classes.json", {"classes": classes, "counts": counts, "cut": cut,
                                                    "specials": specials, "leaked": int(drop.sum())})
        atomic.write_bytes(folder / "examples.npz", buf.getvalue())  # last: its presence means complete
        return {"examples": len(examples), "classes": classes, "counts": counts, "train_examples":
                int((~is_val).sum()), "val_examples": int(is_val.sum()), "cut": cut, "leaked": int(drop.sum())}

    def batch(self, step: int, batch: int, seed: int) -> tuple[dict, np.ndarray]:
        """Training batch `step`, a pure function of (seed, step): each example's class drawn
        uniformly, then an example of that class. Balanced batches: with the bundled poem / prose /
        drama task (72% drama) plain sampling sat for 500 steps on the majority's prior before
        telling poem from prose; balanced, the minority classes carry as much of the gradient."""
        rng = np.random.default_rng([seed, step, 11])
        classes = rng.integers(0, len(self.by_class), size=batch)
        idx = np.array([self.by_class[c][rng.integers(0, len(self.by_class[c]))] for c in classes])
        return self.inputs(idx), self.labels[idx]

    def inputs(self, idx) -> dict:
        ids = self.token_ids[idx]
        return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": self.mask[idx]}
