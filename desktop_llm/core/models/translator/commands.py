"""`desktop-llm translate`: a translator run's translation of a text, streamed."""

from __future__ import annotations

import sys

from desktop_llm.errors import UsageError


def add_parser(sub, kit) -> None:
    def cmd_translate(args) -> int:
        from desktop_llm.core.models.translator.decode import Translator

        if not args.text.strip():
            raise UsageError("Give a sentence to translate: --text \"...\"")
        run, model, tok, ckpt = kit.load_run(args, family="translator")
        translator = Translator(model, tok, run.config.model.sequence_length)
        note = translator.cut_note(args.text)
        if args.json:
            if note:
                kit.out({"type": "warning", "message": note})
            text = translator.stream(args.text, lambda piece: kit.out({"type": "piece", "text": piece}))
            kit.out({"type": "done", "run": run.id, "checkpoint_step": ckpt.step, "source": args.text,
                     "translation": text, "cut": bool(note)})
        else:
            if note:
                print(f"note: {note}", file=sys.stderr)
            translator.stream(args.text, lambda piece: print(piece, end="", flush=True))
            print()
        return 0

    tl = sub.add_parser("translate", help="a translator run's translation of a text, streamed")
    kit.run_args(tl)
    tl.add_argument("--text", required=True, help="the text to translate")
    tl.add_argument("--json", action="store_true", help="stream pieces as JSON lines, then the whole")
    tl.set_defaults(func=cmd_translate)
