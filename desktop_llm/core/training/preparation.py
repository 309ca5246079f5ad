"""What a run needs before its first step, made once into its folder: the tokenizer and the
token data (a family may make its own: see core/models/)."""

from __future__ import annotations

import time
from collections.abc import Callable

from desktop_llm.core import events as ev
from desktop_llm.core.config import RunConfig
from desktop_llm.core.corpus import Corpus
from desktop_llm.core.data import TokenData, prepare
from desktop_llm.core.tokenizers import Tokenizer, load_tokenizer, train_tokenizer

Emit = Callable[[dict], None]


def ensure_tokenizer(run, cfg: RunConfig, emit: Emit) -> Tokenizer:
    from desktop_llm.core.models import get_family

    if not (run.tokenizer_dir / "tokenizer.json").exists():
        given = get_family(cfg.family).tokenizer_source(cfg) or cfg.tokenizer.path
        if given:
            emit(ev.Phase(phase="tokenizer", message="Copying the tokenizer").to_dict())
            src = load_tokenizer(given)
            src.save(run.tokenizer_dir)
        else:
            emit(ev.Phase(phase="tokenizer", message=f"Training a {cfg.tokenizer.kind} tokenizer").to_dict())
            family = get_family(cfg.family)
            tok = family.train_tokenizer(cfg)
            if tok is None:
                texts = family.tokenizer_texts(cfg)
                if texts is None:
                    corpus = corpus_of(cfg)
                    corpus.require_text()
                    texts = corpus.iter_text()
                tok = train_tokenizer(cfg.tokenizer.kind, texts, cfg.tokenizer.vocabulary_size)
            tok.save(run.tokenizer_dir)
    return load_tokenizer(run.tokenizer_dir)


def corpus_of(cfg: RunConfig) -> Corpus:
    return Corpus(paths=list(cfg.data.paths), texts=list(cfg.data.texts), column=cfg.data.column,
                  encodings=dict(cfg.data.encodings))


def ensure_data(run, cfg: RunConfig, tok: Tokenizer, emit: Emit) -> TokenData:
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
