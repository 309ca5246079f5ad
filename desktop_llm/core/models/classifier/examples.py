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
    group: str | None = None  # its document, from the group column: validation holds out whole groups


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in _BLANK.split(text) if b.strip()]


def _records(paths: list[str], text_column, label_column, encodings, group_column=None) -> list[Example]:
    """Examples from CSV / TSV / JSONL files with a label column (and, asked for, a group column;
    a text with no group is a group of its own)."""
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
                              + f" (columns: {', '.join(cols[:12]) or 'none'}). Choose one with --label-column (the Train page's Label column).")
        text = text_column or next((c for c in cols if c.lower() in TEXT_NAMES), None) or next(
            (c for c in cols if c != label), None)
        if text is None or text not in cols or text == label:
            raise CorpusError(f"{s.path}: no text column" + (f" '{text_column}'" if text_column else "")
                              + f" (columns: {', '.join(cols[:12])}). Choose one with --column.")
        if group_column and group_column not in cols:
            raise CorpusError(f"{s.path}: no group column '{group_column}' (columns: {', '.join(cols[:12])}). "
                              "Choose one with --group-column (Keep together on the Train page), or leave it out to split "
                              "text by text.")
        for n, row in enumerate(_rows(s)):
            t, y = row.get(text), row.get(label)
            if isinstance(y, (list, dict)):  # its Python text would become a class of its own
                raise CorpusError(f"{s.path}: the label of a record is a {type(y).__name__} ({json.dumps(y)[:60]}); "
                                  "a classifier needs one label per text (a string or a whole number).")
            if isinstance(t, str) and t.strip() and y is not None and str(y).strip():
                g = row.get(group_column) if group_column else None
                g = str(g).strip() if g is not None else ""
                out.append(Example(t.strip(), str(y).strip(), s.path,
                                   (g or f"{s.path}:{n + 1}") if group_column else None))
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
                  encodings=(), training: bool = True, group_column: str | None = None) -> list[Example]:
    """Every labelled example under `paths` (see the module docstring for the layouts). Data to
    train on needs two classes of two examples; a test set (`training=False`) only some examples.
    `group_column` names each record's document; only CSV / TSV / JSONL files have one."""
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
                                     encodings, group_column)
        elif path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
            examples += _records([str(path)], text_column, label_column, encodings, group_column)
        else:
            plain.append(str(path))
    if group_column and (plain or any(e.group is None for e in examples)):
        raise CorpusError(f"A group column ('{group_column}') is read from CSV / TSV / JSONL files only; these "
                          "data have texts without one. Leave --group-column (Keep together) out to split text by text.")
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


def grouped_split(labels: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """A boolean "is validation" per example that holds out whole groups (documents): about
    `val_fraction` of each class's examples, one group of each class always left to train on.
    Splitting paragraph by paragraph puts other paragraphs of a validation text's document in
    training, whose names and topics give its label away: on 古文观止 by author, validation
    macro-F1 read 0.7-0.95 while whole unseen articles scored 0.41-0.46 (benchmarks/README.md). A
    class whose texts are all one group is only trained on. Hand-written: scikit-learn's
    StratifiedGroupKFold makes folds, not a fraction, and would enter the installer for this alone."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        of_class = labels == c
        mine = sorted(set(groups[of_class].tolist()))
        rng.shuffle(mine)
        for g in mine[:-1]:  # the last one stays in training
            if is_val[of_class].sum() >= val_fraction * of_class.sum():
                break
            members = groups == g
            # a group holding other classes too must not take their last training texts
            if all((~is_val & (labels == o) & ~members).any() for o in np.unique(labels[members])):
                is_val |= members
    return is_val


def validation_split(examples: list[Example], labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, dict]:
    """(is validation, what the split did): by group where the examples have groups, else text by
    text. With groups: how many there are, how many were held out, and the classes left
    unvalidated (one group each)."""
    if not examples or examples[0].group is None:
        return stratified_split(labels, val_fraction, seed), {}
    groups = np.array([e.group for e in examples], object)
    is_val = grouped_split(labels, groups, val_fraction, seed)
    if not is_val.any():
        raise CorpusError("Every class's texts come from one group: no whole group can be held out for "
                          "validation. Give more documents per class, or leave the group column out.")
    validated = {e.label for e, v in zip(examples, is_val) if v}
    return is_val, {"groups": len(set(groups.tolist())), "val_groups": len(set(groups[is_val].tolist())),
                    "unvalidated": sorted({e.label for e in examples} - validated)}


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
        is_val, grouped = validation_split(examples, labels, val_fraction, seed)
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
        split = {k: grouped[k] for k in ("groups", "val_groups") if k in grouped}
        atomic.write_json(folder / "classes.json", {"classes": classes, "counts": counts, "cut": cut,
                                                    "specials": specials, "leaked": int(drop.sum()), **split})
        atomic.write_bytes(folder / "examples.npz", buf.getvalue())  # last: its presence means complete
        return {"examples": len(examples), "classes": classes, "counts": counts, "train_examples":
                int((~is_val).sum()), "val_examples": int(is_val.sum()), "cut": cut, "leaked": int(drop.sum()),
                **grouped}

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
