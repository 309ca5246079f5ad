"""What the window's Translate tab asks of a translator, run in the model worker
(core/worker_jobs.with_model)."""

from __future__ import annotations


def translate(model, tok, run, text: str, emit=None) -> tuple[str, str | None]:
    """(the greedy translation of `text`, each piece emitted as it comes; a note where the source
    was longer than the context)."""
    from desktop_llm.core.models.translator.decode import Translator

    translator = Translator(model, tok, run.config.model.sequence_length)
    return translator.stream(text, emit), translator.cut_note(text)
