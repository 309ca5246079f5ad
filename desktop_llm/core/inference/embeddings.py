"""Sentence embeddings from an encoder run (a masked LM, or a classifier fine-tuned on one):
keras-hub's `BertTextEmbedder` on the run's encoder (mean or [CLS] pooling, L2-normalised), an
index of the corpus' sentences to search by cosine similarity, a 2-D projection (PCA) to look
at, and the TSV files TensorBoard's projector reads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core.config import ConfigError

POOLINGS = ("mean", "cls")
MAX_SENTENCES = 3000  # an index the window searches at once; a sample of larger corpora
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*")


def embedder(model, pooling: str = "mean"):
    """A `BertTextEmbedder` sharing the run model's encoder (no copy of the weights)."""
    import keras_hub

    if pooling not in POOLINGS:
        raise ConfigError(f"Pooling is one of {', '.join(POOLINGS)} (got '{pooling}').")
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, keras_hub.models.BertBackbone):
        raise ConfigError("Sentence embeddings come from an encoder: a masked_lm run, or a classifier "
                          "fine-tuned on one (a GPT reads one way only).")
    return keras_hub.models.BertTextEmbedder(backbone, preprocessor=None, pooling_mode=pooling)


def embed(model, tok, texts: list[str], pooling: str = "mean", batch: int = 64, emb=None) -> np.ndarray:
    """(len(texts), width) float32 unit vectors. `emb`: an `embedder` made before, whose compiled
    prediction is reused (the model's weights may have changed in place)."""
    from desktop_llm.core.models.classifier.examples import encode

    emb = emb if emb is not None else embedder(model, pooling)
    T = model.backbone.max_sequence_length
    out = []
    for s in range(0, len(texts), batch):
        ids, mask, _ = encode(tok, texts[s: s + batch], T)
        out.append(np.asarray(emb.predict_on_batch({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                                                    "padding_mask": mask}), np.float32))
    return np.concatenate(out) if out else np.zeros((0, model.backbone.hidden_dim), np.float32)


@dataclass
class Sentence:
    text: str
    source: str  # the file it came from, or the class of a labelled example


def sentences(run, limit: int = MAX_SENTENCES, seed: int = 0, paths: list[str] | None = None) -> list[Sentence]:
    """The run's texts to search: a classifier's labelled examples (labelled by class), else the
    corpus split into sentences (labelled by file); a fixed sample of `limit` when there are more.
    `paths`: other files read the same way (a held-out set, which the model never trained on)."""
    import dataclasses

    cfg = run.config
    if paths is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, paths=[str(p) for p in paths]))
    out: list[Sentence] = []
    from desktop_llm.core.models import get_family

    labelled = get_family(cfg.family).labelled_texts(cfg, training=paths is None)
    if labelled is not None:
        out = [Sentence(text, label) for text, label in labelled]
    else:
        from desktop_llm.core.data import corpus_of

        corpus = corpus_of(cfg)
        for source, chunks in corpus.iter_documents():
            name = Path(source.path).name
            for line in "".join(chunks).splitlines():
                out += [Sentence(s.strip(), name) for s in _SENTENCE_END.split(line) if len(s.strip()) > 3]
    if not out:
        raise ConfigError(f"Run {run.id} has no text to search (its corpus is gone or empty).")
    if len(out) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(out), size=limit, replace=False))
        out = [out[i] for i in keep]
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Index:
    """Sentences' vectors, searched by cosine similarity.

    The vectors are centred on the corpus' mean before the cosine: a small encoder's sentence
    vectors all point much the same way (measured: every cosine 0.998 on the bundled corpora),
    and what tells sentences apart is what remains (Mu & Viswanath, "All-but-the-Top", 2018)."""

    def __init__(self, items: list[Sentence], vectors: np.ndarray):
        self.items = items
        self.mean = vectors.mean(0) if len(vectors) else 0.0
        self.vectors = _unit(vectors - self.mean)

    def search(self, query_vector: np.ndarray, k: int = 10) -> list[dict]:
        scores = self.vectors @ _unit(query_vector - self.mean)
        best = np.argsort(-scores)[: max(1, k)]
        return [{"text": self.items[i].text, "source": self.items[i].source, "score": float(scores[i])}
                for i in best]

    def neighbour_agreement(self, vectors: np.ndarray | None = None) -> tuple[float, float]:
        """(share of sentences whose nearest other sentence has the same source, that share by
        chance): how much the embedding (or other `vectors` of the same sentences) groups
        sentences by where they come from."""
        vectors = self.vectors if vectors is None else vectors
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        nearest = sims.argmax(1)
        sources = np.array([s.source for s in self.items])
        same = float((sources[nearest] == sources).mean())
        _, counts = np.unique(sources, return_counts=True)
        p = counts / counts.sum()
        return same, float((p * p).sum())

    def baseline_agreement(self) -> float:
        """The same share with TF-IDF character n-gram vectors (core/baselines.py): what the
        model's vectors must beat."""
        from desktop_llm.core.baselines import tfidf_vectors

        return self.neighbour_agreement(tfidf_vectors([s.text for s in self.items]))[0]


def build_index(model, tok, run, pooling: str = "mean", limit: int = MAX_SENTENCES,
                paths: list[str] | None = None) -> Index:
    items = sentences(run, limit, paths=paths)
    return Index(items, embed(model, tok, [s.text for s in items], pooling))


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components (NumPy's SVD: two axes of a few thousand points need
    nothing more)."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), np.float32)
    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def write_projector(folder: str | os.PathLike, index: Index) -> tuple[Path, Path]:
    """vectors.tsv and metadata.tsv (with a header: text, source) for projector.tensorflow.org or
    TensorBoard's projector; written atomically."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file: --projector takes a folder to write vectors.tsv and metadata.tsv in.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot write {folder} ({e.strerror or e}): choose another folder.") from None
    vectors = "".join("\t".join(f"{x:.6g}" for x in v) + "\n" for v in index.vectors)

    def clean(s: str) -> str:
        return " ".join(s.split())[:500]

    meta = "text\tsource\n" + "".join(f"{clean(s.text)}\t{clean(s.source)}\n" for s in index.items)
    atomic.write_text(folder / "vectors.tsv", vectors)
    atomic.write_text(folder / "metadata.tsv", meta)
    return folder / "vectors.tsv", folder / "metadata.tsv"
