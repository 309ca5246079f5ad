"""Training events as the lines a person reads in a terminal (`--json` prints the events themselves)."""

from __future__ import annotations

import json
import sys

from desktop_llm.store.card import duration, run_card


def eta(seconds) -> str:
    """'…' while the first compiled call is still being timed (the event's eta is None)."""
    return "…" if seconds is None else f"{seconds:.0f}s"


def run_card_text(run, info: dict) -> str:
    """`runs show` for a person: one fact a line (--json: everything)."""
    return "\n".join(f"{k:<10} {v}" for k, v in run_card(run, info)) + "\n(all of it: runs show --json)"


def _best(e: dict) -> str:
    b = e.get("best_val_loss")
    return "" if b is None else f", best val loss {b:.4f}"


def _grouped(e) -> str:
    return f" ({e.val_groups:,} of {e.groups:,} documents held out whole)" if e.groups else ""


def _leaked(e) -> str:
    return (f" ({e.leaked:,} validation example{'s' if e.leaked != 1 else ''} that repeated training ones "
            "left out)") if e.leaked else ""


def format_event(d: dict, run: str | None = None) -> str | None:
    """The line a person reads for one training event (None: nothing to show); `run` is the run's
    id where known. A phase's repeated progress updates are left out by `HumanEvents`."""
    from desktop_llm.core import events as ev

    e = ev.parse(d)
    if isinstance(e, ev.Step):
        return (f"step {e.step:>6}/{e.max_steps}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
                f"{e.tokens_per_sec:,.0f} tok/s  {e.ms_per_step:.1f} ms/step  ETA {eta(e.eta)}")
    if isinstance(e, ev.Eval):
        line = f"  eval at {e.step}: val loss {e.val_loss:.4f}"
        if e.classes is None:  # a classifier's loss is over its classes: no perplexity of text
            line += f"  perplexity {e.val_ppl:.2f}"
        if e.val_bits_per_byte is not None:
            line += f"  {e.val_bits_per_byte:.3f} bits/byte"
        if e.val_accuracy is not None:
            line += f"  accuracy {e.val_accuracy:.1%}"
        if e.val_macro_f1 is not None:
            line += f"  macro-F1 {e.val_macro_f1:.3f}"
        if e.val_bleu is not None:
            line += f"  BLEU {e.val_bleu:.1f}" + (f"  chrF {e.val_chrf:.1f}" if e.val_chrf is not None else "")
            line += f"  exact {e.val_exact_match:.1%}"
        if e.val_stops is not None:
            line += f"  replies that end {e.val_stops:.0%}"
        if e.sample:
            line += "\n  sample: " + e.sample.replace("\n", "\n          ")[:600]
        return line
    if isinstance(e, ev.Baselines):
        from desktop_llm.core.baselines import describe

        return f"[baselines] to beat, on the validation split: {describe(e.figures)}" if e.figures else None
    if isinstance(e, ev.Start):
        trains = f" ({e.trainable_parameters:,} trained: LoRA)" if e.trainable_parameters is not None else ""
        return (f"run {e.run}: {e.parameters:,} parameters{trains}, vocabulary {e.vocabulary_size}, "
                f"{e.train_tokens:,} train / {e.val_tokens:,} val tokens, on {e.device} ({e.policy}, {e.backend}"
                + (f": {e.backend_reason})" if e.backend_reason and e.backend_reason != "asked for" else ")"))
    if isinstance(e, ev.Phase):
        done = f"{100 * e.progress:.0f}%" if e.progress is not None else ""
        return f"[{e.phase or 'phase'}] " + " ".join(x for x in (e.message, done) if x)
    if isinstance(e, ev.Data) and e.classes is not None:
        counts = ", ".join(f"{c} {n:,}" for c, n in (e.counts or {}).items())
        return (f"[data] {e.examples:,} examples in {len(e.classes)} classes ({counts}): "
                f"{e.train_examples:,} train / {e.val_examples:,} validation{_grouped(e)}{_leaked(e)}")
    if isinstance(e, ev.Data) and e.supervised_tokens is not None:
        return (f"[data] {e.examples:,} conversations: {e.train_examples:,} train / {e.val_examples:,} validation; "
                f"the replies are {e.supervised_tokens:,} of {e.train_tokens:,} training tokens{_leaked(e)}")
    if isinstance(e, ev.Data) and e.examples is not None:
        return (f"[data] {e.examples:,} sentence pairs: {e.train_examples:,} train / {e.val_examples:,} "
                f"validation{_leaked(e)}")
    if isinstance(e, ev.Data):
        chars = f" from {e.characters:,} characters" if e.characters is not None else ""
        repeats = (f"; {e.leaked:,} validation line{'s' if e.leaked != 1 else ''} also in training (kept: lines are "
                   "read in context)") if e.leaked else ""
        return f"[data] {e.train_tokens or 0:,} train / {e.val_tokens or 0:,} validation tokens{chars}{repeats}"
    if isinstance(e, ev.Checkpoint):
        return None
    at_step = {ev.ResumedFrom: "resuming from the checkpoint at step", ev.Paused: "paused at step",
               ev.Resumed: "resumed at step"}
    if type(e) in at_step:
        return f"{at_step[type(e)]} {e.step}"
    if isinstance(e, ev.Stopped):
        took = f", {duration(d['elapsed'])} of training" if d.get("elapsed") is not None else ""
        return (f"stopped at step {e.step}{_best(d)}{took}; "
                f"`desktop-llm train --resume {run or d.get('run') or 'RUN'}` continues")
    if isinstance(e, ev.Completed):
        took = f" in {duration(e.elapsed)}" if e.elapsed is not None else ""
        return f"completed: {e.step} steps{took}{_best(d)}"
    if isinstance(e, ev.Exported):
        return f"saved the best model (step {e.step}) to {e.path}"
    if isinstance(e, ev.Warning):
        return f"warning: {e.message}"
    if isinstance(e, ev.Failed):
        line = f"failed: {e.message}"
        if e.suggestion:
            line += f"\n  suggestion: {e.suggestion}"
        return line
    if isinstance(e, ev.RunFolder):
        return f"run folder: {e.folder}"
    return f"[{d.get('type')}] " + (d.get("message") or json.dumps(d, ensure_ascii=False))


class HumanEvents:
    """Prints events as `format_event` lines: warnings and failures on stderr, a phase's message
    once (its later progress updates are the same message again and are not repeated)."""

    def __init__(self, run: str | None = None):
        self.run = run
        self.phase: tuple | None = None

    def __call__(self, e: dict) -> None:
        t = e.get("type")
        if t == "start":
            self.run = e.get("run") or self.run
        if t == "phase":
            same = self.phase is not None and e.get("phase") == self.phase[0]
            if same and (e.get("progress") is not None or e.get("message") == self.phase[1]):
                return  # a progress update of the phase already shown
            self.phase = (e.get("phase"), e.get("message"))
        line = format_event(e, self.run)
        if line is not None:
            print(line, flush=True, file=sys.stderr if t in ("warning", "failed") else sys.stdout)


def quiet_when_orphaned(emit):
    """The run must not fail because nobody reads its output any more (the GUI was killed and
    the pipe is closed): events are still in metrics.jsonl and status.json."""

    def safe(e: dict) -> None:
        try:
            emit(e)
        except (BrokenPipeError, OSError, ValueError):
            pass  # stdout closed (the app that read it is gone): training goes on, unseen

    return safe

