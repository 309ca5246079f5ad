"""What the window's Fill mask tab asks of a masked LM, run in the model worker
(core/worker_jobs.with_model)."""

from __future__ import annotations


def fill(model, tok, run, text: str, top_k: int = 10, emit=None) -> list[dict]:
    from desktop_llm.core.models.masked_lm.fill_mask import fill_mask

    return fill_mask(model, tok, text, top_k=top_k)
