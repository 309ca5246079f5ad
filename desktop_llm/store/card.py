"""A run described for people: what it is and how it went, one fact a row.

`desktop-llm runs show` prints it and the Runs page shows it for the selected run, so both say
the same thing. Reads only the run folder (status, config, the tokenizer's record): no TensorFlow.
"""

from __future__ import annotations

import math
import time


def duration(seconds) -> str:
    s = round(float(seconds or 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def short_duration(seconds) -> str:
    """The compact form for a table cell or a progress bar: "45s", "1m 05s", "2h 03m"."""
    s = int(max(0, float(seconds or 0)))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def _last_eval(run) -> dict:
    return next((m for m in reversed(run.metrics()) if m.get("type") == "eval"), {})


def run_card(run, status: dict | None = None) -> list[tuple[str, str]]:
    """(label, text) rows: identity, status, device and speed, result, data, model, training."""
    from desktop_llm.core.models import get_family

    info = run.status() if status is None else status
    cfg, m, t = run.config, run.config.model, run.config.training
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["created"])) if info.get("created") else "-"
    state = f"{info.get('status', '?')} at step {info.get('step') or 0:,} of {t.max_steps:,}"
    if info.get("duration"):
        state += f" ({duration(info['duration'])} of training)"
    rows = [("run", run.id), ("folder", str(run.folder)), ("created", when), ("status", state)]
    if info.get("message"):
        rows.append(("message", info["message"]))
    if info.get("device"):
        from desktop_llm.store.speed import median_tokens_per_sec

        tps = median_tokens_per_sec(run, least=1) or info.get("tokens_per_sec")  # the median, not the last interval
        speed = f", {tps:,.0f} tokens/s (median)" if tps else ""
        where = f"{info['device']}, {info.get('policy', 'float32')}" + (f", {info['backend']}" if info.get("backend") else "")
        rows.append(("device", f"{where}{speed}"))
    family = get_family(cfg.family)
    best = info.get("best_val_loss")
    if best is not None:  # a perplexity where the loss is over tokens, not over a classifier's classes
        from desktop_llm.core.baselines import bits_per_byte

        bpb = bits_per_byte(best, (info.get("baselines") or {}).get("bytes_per_token"))
        ppl = (f" (perplexity {math.exp(min(best, 50)):,.1f}" + (f", {bpb:.2f} bits/byte" if bpb else "") + ")"
               if family.loss_over_tokens else "")
        rows.append(("best val", f"loss {best:.4f}{ppl}"))
    found = (info.get("baselines") or {}).get("figures")
    if found:  # what the model must beat, on the same split, and whether it does
        from desktop_llm.core.baselines import compared_figure, describe, verdict

        value = compared_figure(family, best, info.get("best_score"),
                                {} if family.baseline_metric == "loss" else _last_eval(run))
        said = verdict(value, found, family.baseline_metric)
        rows.append(("baselines", describe(found) + (f"; this model {said}" if said else "")))
    rows.append(("family", family.title or cfg.family))
    sources = list(cfg.data.paths) + ([f"{len(cfg.data.texts)} pasted text(s)"] if cfg.data.texts else [])
    leaked = info.get("leaked") or 0
    said = (f"{leaked:,} validation lines also occur in training (kept: lines are read in context)"
            if info.get("leaks_kept") else f"{leaked:,} validation examples left out: they repeat training ones")
    rows.append(("corpus", (", ".join(sources) or "-") + (f"; {said}" if leaked else "")
                 + (f"; validation holds out whole '{cfg.data.group_column}' groups" if cfg.data.group_column else "")))
    vocab = run.vocabulary_size(info)
    rows.append(("tokenizer", cfg.tokenizer.kind + (f", {vocab:,} tokens" if vocab else "")))
    params = f", {info['parameters'] / 1e6:.2f} M parameters" if info.get("parameters") else ""
    if t.lora_rank:  # a LoRA fine-tune trains only its factors (and any embedding of new tokens)
        trained = info.get("trainable_parameters")
        params += f" (LoRA rank {t.lora_rank}" + (f": {trained:,} trained)" if trained else ")")
    rows.append(("model", (f"{m.num_layers} layers x {m.num_heads} heads x width {m.hidden_dim}, "
                           f"context {m.sequence_length}{params}")))
    rows.append(("training", (f"batch {t.batch_size}, learning rate {t.learning_rate:g} to "
                              f"{t.min_learning_rate:g}, warm-up {t.warmup_steps}, "
                              f"weight decay {t.weight_decay:g}, clip {t.grad_clip:g}")))
    return rows
