"""`desktop-llm tokenizer train|encode`: tokenizers on their own, outside a run."""

from __future__ import annotations

import sys

from desktop_llm.cli.common import CliError, check_flags, encodings_of, out, require_corpus, store_of


def cmd_tokenizer_train(args) -> int:
    from desktop_llm.core.tokenizers import train_tokenizer

    check_flags(args)
    corpus = require_corpus(args.paths, column=args.column, encodings=encodings_of(args, args.paths))
    for s in corpus.sources:
        if not s.ok:
            print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
        elif s.unsure:
            print(f"warning: {s.path}: {s.reason}", file=sys.stderr)
    tok = train_tokenizer(args.kind, corpus.iter_text(), args.vocab_size)
    tok.save(args.out)
    print(f"{args.kind} tokenizer with {tok.vocabulary_size:,} tokens saved to {args.out}")
    return 0


def _load_tokenizer(args):
    from desktop_llm.core.loading import load_run_tokenizer as load_tokenizer

    if args.run:
        return load_tokenizer(store_of(args).resolve(args.run).tokenizer_dir)
    if args.tokenizer:
        return load_tokenizer(args.tokenizer)
    raise CliError("Give --tokenizer DIR or --run RUN.")


def cmd_tokenizer_encode(args) -> int:
    tok = _load_tokenizer(args)
    ids = tok.encode(args.text)
    if args.json:
        out({"ids": ids, "tokens": [tok.token_text(i) for i in ids], "decoded": tok.decode(ids)})
    else:
        print(" ".join(map(str, ids)))
        print(" | ".join(repr(tok.token_text(i))[1:-1] for i in ids))
        print(f"{len(ids)} tokens, {len(args.text) / max(1, len(ids)):.2f} characters per token")
    return 0


# --------------------------------------------------------------------------- model


def add_parser(sub) -> None:
    from desktop_llm.core.tokenizers import KINDS

    t = sub.add_parser("tokenizer", help="train and try tokenizers").add_subparsers(dest="action", required=True)
    tt = t.add_parser("train", help="train a tokenizer on a corpus")
    tt.add_argument("paths", nargs="+", help="text files or folders to train on")
    tt.add_argument("--kind", default="char", choices=KINDS, help="tokenizer kind (default %(default)s)")
    tt.add_argument("--vocab-size", type=int, help="vocabulary size (default: the kind's own)")
    tt.add_argument("--column", help="text column of JSONL/CSV files")
    tt.add_argument("--encoding", metavar="ENC",
                    help="read every file with this encoding, not the detected one (big5, cp1252...)")
    tt.add_argument("--out", required=True, help="folder to save the tokenizer in")
    tt.set_defaults(func=cmd_tokenizer_train)
    te = t.add_parser("encode", help="split a text into tokens")
    te.add_argument("text", help="the text to encode")
    te.add_argument("--tokenizer", metavar="DIR", help="a tokenizer folder")
    te.add_argument("--run", help="use this run's tokenizer (id, start of an id, or name)")
    te.add_argument("--json", action="store_true", help="print ids, tokens and the decoded text as JSON")
    te.set_defaults(func=cmd_tokenizer_encode)
