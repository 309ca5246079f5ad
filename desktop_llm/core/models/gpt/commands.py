"""The commands of a run that writes text: `generate`, `chat` and, for a GPT, `eval` (perplexity).

`chat` applies a chat run's template (core/chat_template.py) and stops where the model ends its
turn; with a plain GPT it feeds a "User: … / Bot: …" transcript, and says so."""

from __future__ import annotations

import math
import sys

from desktop_llm.errors import UsageError


def sampling(args):
    """The sampling settings, checked (before the model is loaded)."""
    from desktop_llm.core.generation import SamplingConfig

    cfg = SamplingConfig(max_new_tokens=args.max_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                         stop=tuple(s.encode().decode("unicode_escape") for s in args.stop or ()))
    cfg.validate()
    return cfg


def add_parser(sub, kit) -> None:
    def cmd_eval(args) -> int:
        from desktop_llm.core.evaluation import evaluate_text, evaluate_windows, split_windows

        kit.check_flags(args)
        if args.text is not None and args.file:
            raise UsageError("Give --file or --text, not both.")
        text = kit.read_text_file(args.file) if args.file else args.text  # before loading the model
        run, model, tok, ckpt = kit.load_run(args)
        if text is not None:
            ev, per_token = evaluate_text(model, tok, text)
            source = "text" if args.text is not None else args.file
        else:
            from desktop_llm.core.data import TokenData

            data = TokenData(run.data_dir)
            x, y = split_windows(data.val, model.backbone.max_sequence_length, args.max_windows)
            ev, per_token = evaluate_windows(model, x, y), None
            source = "validation split"
        result = {"run": run.id, "checkpoint_step": ckpt.step, "source": source, **ev.to_dict()}
        if args.per_token and per_token is not None:
            result["per_token"] = [{"id": i, "token": t, "loss": None if math.isnan(loss) else loss}
                                   for i, t, loss in zip(per_token.token_ids, per_token.tokens,
                                                         per_token.losses)]
        if args.json:
            kit.out(result)
        else:
            print(f"{source}: loss {ev.loss:.4f}  perplexity {ev.perplexity:.3f}  "
                  f"({ev.tokens:,} tokens, run {run.id}, checkpoint at step {ckpt.step})")
            if args.per_token and per_token is not None:
                for t, loss in zip(per_token.tokens, per_token.losses):
                    print(f"  {t!r:>14}  {'-' if math.isnan(loss) else f'{loss:.3f}'}")
        return 0


    def cmd_generate(args) -> int:
        from desktop_llm.core.generation import Generator

        cfg = sampling(args)
        if args.next_tokens is not None and args.next_tokens < 1:
            raise UsageError(f"--next-tokens must be at least 1 (got {args.next_tokens})")
        run, model, tok, _ = kit.load_run(args, kit.writers())
        gen = Generator(model, tok)
        if args.next_tokens:  # the distribution the sampler draws from, not a sample of it
            top = gen.next_tokens(args.prompt, args.next_tokens)
            if args.json:
                kit.out({"type": "next_tokens", "run": run.id, "prompt": args.prompt,
                         "tokens": [{"text": t, "p": p} for t, p in top]})
            else:
                width = max(len(repr(t)) for t, _ in top)
                for t, p in top:
                    print(f"{t!r:<{width}}  {p:7.2%}  {'█' * max(1, round(30 * p / top[0][1]))}")
                print(f"[run {run.id}: the {len(top)} likeliest next tokens after the prompt, "
                      f"{sum(p for _, p in top):.0%} of the probability]", file=sys.stderr)
            return 0
        if args.json:
            result = gen.generate(args.prompt, cfg, on_token=lambda t: kit.out(
                {"type": "token", "id": t.id, "text": t.text, "p": t.probability}))
            kit.out({"type": "done", "text": result.text, "tokens": len(result.tokens),
                     "tokens_per_sec": result.tokens_per_second, "first_token_ms": 1000 * result.first_token_seconds,
                     "run": run.id, "stopped_by": result.stopped_by})
        else:
            if sys.stderr.isatty():  # the first token waits for XLA to compile the decoding loop
                print("(compiling the decoding loop: seconds the first time, then cached on disk)", file=sys.stderr)
            sys.stdout.write(args.prompt)
            result = gen.generate(args.prompt, cfg, on_token=lambda t: (sys.stdout.write(t.text), sys.stdout.flush()))
            print(flush=True)  # the text ends with a line break, also where stdout goes to a file
            print(f"[run {run.id}: {len(result.tokens)} tokens, {result.tokens_per_second:.0f} tokens/s, first token "
                  f"after {1000 * result.first_token_seconds:.0f} ms]", file=sys.stderr)
        return 0


    def cmd_chat(args) -> int:
        from desktop_llm.core.generation import ChatSession, Generator

        cfg = sampling(args)
        run, model, tok, _ = kit.load_run(args, kit.writers())
        chat = ChatSession(Generator(model, tok), args.user_prefix, args.bot_prefix, system=args.system or "")
        if chat.templated:
            mode = "its chat template; replies end where the model ends its turn"
        else:
            mode = ("transcript mode: a plain GPT continues a 'User: … / Bot: …' text and chats only as well as "
                    "its training text allows (train a chat run on conversations for real turns)")
            if args.system:
                print("note: --system is for chat runs; a transcript has no system prompt.", file=sys.stderr)
        print(f"Chatting with run {run.id}, in {mode}. /retry: another reply to your last message. Empty line or "
              "Ctrl-D to quit.", file=sys.stderr)
        while True:
            try:
                line = input("> ")
            except EOFError:
                print()  # Ctrl-D leaves the cursor after the prompt: end the line
                break
            if not line.strip():
                if not sys.stdin.isatty():
                    print()  # nobody's Enter was echoed after the prompt
                break
            show = lambda t: (sys.stdout.write(t.text), sys.stdout.flush())  # noqa: E731 - a one-line callback
            if line.strip() == "/retry":
                if not chat.history:
                    print("[nothing to answer yet: say something first]", file=sys.stderr)
                    continue
                sys.stdout.write("  (again) ")
                chat.regenerate(cfg, on_token=show)
            else:
                sys.stdout.write("  ")
                chat.reply(line, cfg, on_token=show)
            print()
            if chat.dropped:
                print(f"[the {chat.dropped} oldest messages no longer fit in the context and were left out]",
                      file=sys.stderr)
            if chat.templated and chat.stopped_by != "end":
                print(f"[no end of turn within {cfg.max_new_tokens} tokens: the reply was cut]", file=sys.stderr)
        return 0

    ev = sub.add_parser("eval", help="perplexity on the validation split, a file or a text")
    kit.run_args(ev)
    ev.add_argument("--file", help="a text file to measure (default: the run's validation split)")
    ev.add_argument("--text", help="a text to measure")
    ev.add_argument("--per-token", action="store_true", help="also list each token's loss (--file, --text)")
    ev.add_argument("--max-windows", type=int, default=2000,
                    help="at most this many windows of the validation split (default %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_eval)

    def sampling_args(sp):
        sp.add_argument("--max-tokens", type=int, default=200, help="tokens to generate (default %(default)s)")
        sp.add_argument("--temperature", type=float, default=0.8,
                        help="sampling temperature, 0 for greedy (default %(default)s)")
        sp.add_argument("--top-k", type=int, default=0,
                        help="sample from the k likeliest tokens, 0 for all (default %(default)s)")
        sp.add_argument("--top-p", type=float, default=1.0,
                        help="nucleus sampling probability mass, 1 for off (default %(default)s)")
        sp.add_argument("--seed", type=int, help="random seed, for a repeatable text")
        sp.add_argument("--stop", action="append", help="stop sequence (repeatable; \\n allowed)")

    ge = sub.add_parser("generate", help="generate text from a prompt, streaming")
    kit.run_args(ge)
    ge.add_argument("--prompt", default="", help="the text to continue (default: none)")
    sampling_args(ge)
    ge.add_argument("--json", action="store_true", help="stream tokens as JSON lines")
    ge.add_argument("--next-tokens", type=int, metavar="K",
                    help="instead of generating: the K likeliest next tokens after the prompt, with the "
                         "model's probabilities")
    ge.set_defaults(func=cmd_generate)

    def cmd_compare(args) -> int:
        """One prompt and seed through 2-4 runs or steps, each text under its own heading."""
        import argparse
        import random

        from desktop_llm.core.generation import Generator
        from desktop_llm.core.side_by_side import parse_target

        if not 2 <= len(args.targets) <= 4:
            raise UsageError(f"Compare 2 to 4 runs or steps (got {len(args.targets)}).")
        targets = [parse_target(t) for t in args.targets]  # every one checked before any model loads
        if args.seed is None:  # one seed for every column: the models differ, not the draws
            args.seed = random.randrange(2**31)
        cfg = sampling(args)
        columns = []
        for ref, which in targets:
            run, model, tok, ckpt = kit.load_run(argparse.Namespace(**{**vars(args), "run": ref, "checkpoint": which}),
                                                 kit.writers())
            text = Generator(model, tok).generate(args.prompt, cfg).text
            columns.append({"run": run.id, "name": run.config.name, "which": which, "step": ckpt.step, "text": text})
            if not args.json:
                print(f"── {run.config.name or run.id} @ {which} (step {ckpt.step:,}) ──")
                print(args.prompt + text, flush=True)
        if args.json:
            kit.out({"prompt": args.prompt, "seed": args.seed, "columns": columns})
        else:
            print(f"[the same prompt and seed ({args.seed}) for each: the models differ, not the draws]",
                  file=sys.stderr)
        return 0

    cp = sub.add_parser("compare", help="one prompt and seed through 2-4 runs, or one run at 2-4 steps")
    cp.add_argument("targets", nargs="+", metavar="RUN[@WHICH]",
                    help="a run (id, start of one, or name), with @best (default), @latest or @STEP: a step the "
                         "run keeps a weight snapshot of")
    cp.add_argument("--prompt", default="", help="the text to continue (default: none)")
    sampling_args(cp)
    cp.add_argument("--json", action="store_true", help="print one JSON object")
    cp.set_defaults(func=cmd_compare)

    ch = sub.add_parser("chat", help="chat with a model in the terminal")
    kit.run_args(ch)
    sampling_args(ch)
    ch.add_argument("--system", help="a system prompt that leads the conversation (chat runs)")
    ch.add_argument("--user-prefix", default="User: ", help="put before your lines (default %(default)r)")
    ch.add_argument("--bot-prefix", default="Bot: ", help="put before the model's replies (default %(default)r)")
    ch.set_defaults(func=cmd_chat)
