"""`desktop-llm corpus stats`: what is in a corpus before anything is trained on it."""

from __future__ import annotations

import sys

from desktop_llm.cli.common import encodings_of, out


def readings(paths, column, encodings, val_fraction=0.1, label_column=None, group_column=None):
    """(family, what it would learn from these files, its first example in marked parts) for each
    family that reads them as more than plain text (the Data page's lines)."""
    from desktop_llm.core.models import families

    found = []
    for fam in families():
        text = fam.describe_data(paths, column, tuple(encodings.items()), val_fraction, label_column, group_column)
        if text:
            found.append((fam.name.replace("_", "-"), text, fam.example_parts(paths, tuple(encodings.items()))))
    return found


def cmd_corpus_stats(args) -> int:
    from desktop_llm.core.corpus import Corpus

    corpus = Corpus(paths=args.paths, column=args.column, encodings=encodings_of(args, args.paths))
    st = corpus.stats(args.val_fraction)
    if args.json:
        out(st.to_dict())
        return 0 if corpus.usable_sources() else 1
    for s in corpus.sources:
        mark = ("unsure" if s.unsure else "ok") if s.ok else s.status
        enc = (s.encoding or "-") + (f" ({s.confidence:.0%})" if s.encoding and s.confidence < 1 else "")
        print(f"  [{mark:6}] {s.path}  {s.size_bytes:,} bytes  {enc}  {s.reason}")
    if not corpus.usable_sources():  # the sources' lines say why; a table of zeros would say nothing
        print("error: no readable text in these sources", file=sys.stderr)
        return 1
    print(f"documents:            {st.documents:,}")
    print(f"characters:           {st.characters:,}")
    print(f"lines:                {st.lines:,}")
    print(f"distinct characters:  {st.distinct_characters:,} ({st.distinct_cjk:,} CJK; {st.cjk_characters:,} CJK characters in all)")
    print(f"UTF-8 bytes:          {st.bytes_utf8:,}")
    print("estimated tokens:     " + ", ".join(f"{k} {v:,}" for k, v in st.estimated_tokens.items()))
    print(f"train / validation:   {st.train_characters:,} / {st.validation_characters:,} characters")
    for name, text, parts in readings(args.paths, args.column, corpus.encodings, args.val_fraction,
                                      args.label_column, args.group_column):
        print(f"as {name} data:".ljust(22) + text)
        if parts:  # the model learns to write the marked parts only
            show = "".join(f"\033[1;32m{t}\033[0m" if learned and sys.stdout.isatty() else f"⟪{t}⟫" if learned else t
                           for t, learned in parts)
            print(" " * 22 + show.replace("\n", " ⏎ ")[:400])
            print(" " * 22 + ("(green" if sys.stdout.isatty() else "(⟪…⟫") + ": what the model learns to write; "
                  "the rest it only reads)")
    unsure = sum(1 for s in corpus.sources if s.ok and s.unsure)
    if unsure:
        print(f"unsure encodings:     {unsure:,} source{'s' if unsure != 1 else ''} (check them; "
              "--encoding ENC reads every file with ENC)")
    return 0


# --------------------------------------------------------------------------- tokenizer


def add_parser(sub) -> None:
    c = sub.add_parser("corpus", help="inspect a corpus").add_subparsers(dest="action", required=True)
    cs = c.add_parser("stats", help="documents, characters, encodings and split of a corpus")
    cs.add_argument("paths", nargs="+", help="text files or folders")
    cs.add_argument("--column", help="text column of JSONL/CSV files")
    cs.add_argument("--encoding", metavar="ENC",
                    help="read every file with this encoding, not the detected one (big5, cp1252...)")
    cs.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of the text held out for validation (default %(default)s)")
    cs.add_argument("--label-column", metavar="COLUMN",
                    help="classifier: the label column of CSV/JSONL files (default: found by name)")
    cs.add_argument("--group-column", metavar="COLUMN",
                    help="classifier: the column naming each text's document, held out whole by validation")
    cs.add_argument("--json", action="store_true", help="print one JSON object")
    cs.set_defaults(func=cmd_corpus_stats)
