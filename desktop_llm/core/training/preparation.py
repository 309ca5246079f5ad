"""What a run needs before its first step, made once into its folder: the tokenizer and the
token data (a family may make its own: see core/models/)."""

from __future__ import annotations

from collections.abc import Callable

from desktop_llm.core import events as ev
from desktop_llm.core.config import RunConfig
from desktop_llm.core.data import corpus_of
from desktop_llm.core.tokenizers import Tokenizer, load_tokenizer, train_tokenizer

Emit = Callable[[dict], None]


def ensure_tokenizer(run, cfg: RunConfig, emit: Emit) -> Tokenizer:
    from desktop_llm.core.models import get_family

    family = get_family(cfg.family)  # imported: a tokenizer kind of its own is registered
    if not (run.tokenizer_dir / "tokenizer.json").exists():
        given = family.tokenizer_source(cfg) or cfg.tokenizer.path
        if given:
            emit(ev.Phase(phase="tokenizer", message="Copying the tokenizer").to_dict())
            family.own_tokenizer(load_tokenizer(given)).save(run.tokenizer_dir)
        else:
            emit(ev.Phase(phase="tokenizer", message=f"Training a {cfg.tokenizer.kind} tokenizer").to_dict())
            tok = family.train_tokenizer(cfg)
            if tok is None:
                texts = family.tokenizer_texts(cfg)
                if texts is None:
                    corpus = corpus_of(cfg)
                    corpus.require_text()
                    texts = corpus.iter_text()
                tok = train_tokenizer(cfg.tokenizer.kind, texts, cfg.tokenizer.vocabulary_size)
            family.own_tokenizer(tok).save(run.tokenizer_dir)
    return load_tokenizer(run.tokenizer_dir)
