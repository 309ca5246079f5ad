"""`desktop-llm fill-mask`: a masked-LM run's top guesses for each [MASK] in a text."""

from __future__ import annotations

from desktop_llm.errors import UsageError


def add_parser(sub, kit) -> None:
    def cmd_fill_mask(args) -> int:
        from desktop_llm.core.models.masked_lm.fill_mask import check_masked, fill_mask

        if args.top_k < 1:
            raise UsageError(f"--top-k must be at least 1 (got {args.top_k}).")
        check_masked(args.text)  # refused before the model loads (that takes seconds)
        run, model, tok, ckpt = kit.load_run(args, family="masked_lm")
        masks = fill_mask(model, tok, args.text, top_k=args.top_k)
        if args.json:
            kit.out({"run": run.id, "checkpoint_step": ckpt.step, "text": args.text, "masks": masks})
            return 0
        for i, m in enumerate(masks, 1):
            print(f"[MASK] {i}: " + "  ".join(f"{c['token']!r} {c['p']:.1%}" for c in m["candidates"]))
        return 0

    fm = sub.add_parser("fill-mask", help="a masked-LM run's top guesses for each [MASK] in a text")
    kit.run_args(fm)
    fm.add_argument("--text", required=True, help='the text, with [MASK] where a token is hidden, e.g. "To be or [MASK]"')
    fm.add_argument("--top-k", type=int, default=10, help="candidates per mask (default %(default)s)")
    fm.add_argument("--json", action="store_true", help="print one JSON object")
    fm.set_defaults(func=cmd_fill_mask)
