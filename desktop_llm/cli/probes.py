"""`desktop-llm probes RUN`: what the model learned, and when (core/probes.py): the learning
timeline of its fixed prompts, the milestones on its validation curve, which of the probe text's
tokens it learned when, the loss by position in the context, the head atlas (each attention
head's role at the last evaluation, and the best induction score over training), and the
training's health per layer with what looks off."""

from __future__ import annotations

from desktop_llm.cli.common import CliError, out, resolve_run


def cmd_probes(args) -> int:
    from desktop_llm.core import probes
    from desktop_llm.core.models import get_family
    from desktop_llm.core.tokenizers import TokenizerError

    run = resolve_run(args)
    spec, recs = probes.spec(run), probes.records(run)
    if spec is None or not recs:
        raise CliError(f"Run {run.id} has no probes: they are taken at each evaluation of a GPT or masked-LM run trained by "
                       "this version.")
    if args.prompt is not None or args.reset_prompts:
        try:
            probes.set_prompts(run, [] if args.reset_prompts else args.prompt)
        except probes.ProbeError as e:
            raise CliError(str(e)) from None
    wanted = probes.prompts(run, spec)
    timeline = probes.same_prompts(recs, spec, wanted)
    if len(timeline) < len(recs):  # prompts that earlier evaluations did not run: run them on the snapshots
        try:
            replayed = {r["step"]: r for r in probes.replay(run, wanted, get_family(run.config.family).prober)}
        except probes.ProbeError as e:
            import sys

            print(f"note: {e}", file=sys.stderr)  # stdout may be --json's one object
            replayed = {}
        timeline = [v for _, v in sorted({**replayed, **{r["step"]: r for r in timeline}}.items())]
    evals = [m for m in run.metrics() if m.get("type") == "eval"]
    found = probes.milestones(evals, run.status().get("baselines"), recs)
    steps, losses = probes.loss_matrix(recs)
    when = probes.learned_when(steps, losses)
    from desktop_llm.core import heads

    last_heads = next((r for r in reversed(recs) if r.get("heads")), None)
    roles = heads.roles(last_heads["heads"]) if last_heads else []
    from desktop_llm.core import health

    flagged = health.flags(recs)
    sentences = None
    if args.sentences:  # an encoder's sentence embeddings over training (the Learning page's Sentences tab)
        if not get_family(run.config.family).embeds_sentences:
            raise CliError(f"--sentences maps an encoder's sentence embeddings; run {run.id} is a "
                           f"{run.config.family} run.")
        from desktop_llm.core.embedding_space import sentence_space

        try:
            space = sentence_space(run)
        except probes.ProbeError as e:
            raise CliError(str(e)) from None
        sentences = {k: space[k] for k in ("steps", "agreement", "chance", "baseline", "drift")}
        sentences["sources"] = sorted(set(space["sources"]))
        sentences["count"] = len(space["texts"])
    if args.json:
        out({"run": run.id, "spec": spec, "records": recs, "prompts": wanted, "timeline": timeline,
             "milestones": [{"step": s, "what": w} for s, w in found],
             **when, "head_roles": roles, "head_curves": heads.curves(recs),
             "health_flags": [{"step": s, "what": w} for s, w in flagged],
             **({"sentences": sentences} if sentences is not None else {})})
        return 0
    print(f"run {run.id}: {len(recs)} evaluations probed")
    print(f"learning timeline ({get_family(run.config.family).timeline_cells} of "
          + ("your prompts" if wanted != spec["prompts"] else "the probe's prompts") + "):")
    for i, prompt in enumerate(wanted):
        print(f"  “{probes.shortened(prompt, 72)}”")
        for r in timeline:
            if i < len(r["continuations"]):
                text = "".join(r["continuations"][i]["tokens"]).replace("\n", "⏎")
                print(f"    step {r['step']:>6}: {text}")
    if found:
        print("milestones: " + "; ".join(f"step {s}: {w}" for s, w in found))
    if steps:
        learned = [s for s in when["learned_at"] if s is not None]
        by = ", ".join(f"{sum(1 for s in learned if s <= step)} by step {step}" for step in steps[:: max(1, len(steps) // 4)])
        print(f"the probe text's {losses.shape[1]} tokens, learned (loss below {probes.LEARNED:g} nats and staying "
              f"there): {by}; never: {when['learned_at'].count(None)}; got worse: {sum(when['got_worse'])}")
        ids = spec["window"][1:]
        try:
            from desktop_llm.core.loading import load_run_tokenizer

            text = load_run_tokenizer(run.tokenizer_dir).token_text
        except (TokenizerError, OSError):  # a tokenizer that no longer loads: the tokens by id
            def text(i):
                return f"id {i}"
        late = sorted((s, j) for j, s in enumerate(when["learned_at"]) if s is not None)[-5:]
        if late:
            print("  learned last: " + ", ".join(f"{text(ids[j])!r} (step {s})" for s, j in late))
    last = next((r["position_loss"] for r in reversed(recs) if r.get("position_loss")), None)
    if last:
        T = len(last)
        parts = [(0, max(1, T // 8)), (T // 8, T // 2), (T // 2, T)]
        print("in-context learning, mean loss by position at the last evaluation: " + ", ".join(
            f"positions {a + 1}-{b}: {sum(last[a:b]) / max(1, b - a):.2f}" for a, b in parts if b > a))
    if last_heads:
        print_atlas(last_heads, roles, heads.curves(recs))
    last_health = next((r for r in reversed(recs) if r.get("health")), None)
    if last_health:
        h = last_health["health"]
        change = h.get("change_per_step") or [None] * len(h["groups"])
        print(f"training health at step {last_health['step']} (net change per step; about "
              f"{health.RULE_OF_THUMB:g} is usual): " + ", ".join(
                  f"{g} {c:.1e}" if c is not None else f"{g} –" for g, c in zip(h["groups"], change)))
        if h.get("grad_peak"):  # kept by the training step: the interval's mean, and its largest at its step
            print("  gradient norm (mean since the evaluation before; the largest, at its step): " + ", ".join(
                f"{g} {m:.3g} ({p:.3g} at {s})" for g, m, p, s in zip(h["groups"], h["grad_norm"], h["grad_peak"],
                                                                     h["grad_peak_step"])))
        elif h.get("grad_norm"):  # the probe's own backward pass (several devices)
            print("  gradient norm (on the probe's windows): " + ", ".join(
                f"{g} {m:.3g}" for g, m in zip(h["groups"], h["grad_norm"])))
        if h.get("dormant"):  # a model whose blocks the probe reads (not a translator's BART)
            print("  dormant feed-forward units: " + ", ".join(f"block {i} {d:.0%}" for i, d in enumerate(h["dormant"]))
                  + "; largest attention logit: " + ", ".join(f"block {i} {v:.1f}" for i, v in enumerate(h["max_logit"])))
        print("  " + ("; ".join(f"step {s}: {w}" for s, w in flagged) if flagged else "nothing looks off"))
    if sentences is not None:
        print(f"sentences: {sentences['count']} from {len(sentences['sources'])} source(s); the share whose nearest "
              f"neighbour shares its source (TF-IDF {sentences['baseline']:.0%}, chance {sentences['chance']:.0%}): "
              + ", ".join(f"step {s} {a:.0%}" for s, a in zip(sentences["steps"], sentences["agreement"]))
              if sentences["steps"] else "sentences: no weight snapshots to embed them with")
    return 0


def print_atlas(rec: dict, roles: list[list[str]], curves: dict) -> None:
    from desktop_llm.core import heads

    print(f"head atlas at step {rec['step']} (layer x head: its role, and its score for that role):")
    for layer, row in enumerate(roles):
        cells = []
        for h, role in enumerate(row):
            name = role if role in heads.SCORES else ("entropy" if role == "broad" else None)
            score = heads.matrix(rec["heads"], name)[layer, h] if name else None
            cells.append(f"{heads.LABELS[role]}" + (f" {score:.2f}" if score is not None else ""))
        print(f"  layer {layer}: " + " | ".join(cells))
    if curves["steps"]:
        picks = sorted({0, len(curves["steps"]) // 2, len(curves["steps"]) - 1})
        print("best induction score: " + ", ".join(f"{curves['induction'][i]:.2f} at step {curves['steps'][i]}"
                                                 for i in picks)
              + f" (induction heads count as formed from {heads.INDUCTION_FORMED})")


def add_parser(sub) -> None:
    p = sub.add_parser("probes", help="what a GPT run learned, and when: its learning timeline and probes")
    p.add_argument("run", nargs="?", help="run id, the start of one, or run name (default: the newest)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="the timeline's own prompt (repeat for several): kept for the run's later evaluations, and "
                        "run now on its weight snapshots of the steps before")
    p.add_argument("--reset-prompts", action="store_true", help="back to the probe's own prompts")
    p.add_argument("--sentences", action="store_true",
                   help="an encoder run: its sentence embeddings at each weight snapshot, and how often a sentence's "
                        "nearest neighbour shares its source (against TF-IDF and chance)")
    p.set_defaults(func=cmd_probes)
