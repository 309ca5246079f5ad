"""Commands that work on a trained run of any family that can: `attention` (every family) and the
sentence-embedding commands `similar` and `embed` (the families with an encoder). A family's own
commands (generate, fill-mask, classify, translate...) live in its folder, `core/models/<family>/`."""

from __future__ import annotations

from pathlib import Path

from desktop_llm.cli.common import CliError, load_run, out, run_args


def encoders() -> tuple[str, ...]:
    """The families whose runs have sentence embeddings."""
    from desktop_llm.core.models import families

    return tuple(f.name for f in families() if f.embeds_sentences)


def cmd_similar(args) -> int:
    from desktop_llm.core.inference.embeddings import build_index, embed

    if args.top_k < 1:
        raise CliError(f"--top-k must be at least 1 (got {args.top_k}).")
    if not args.text.strip():
        raise CliError("Give a sentence to search for: --text \"...\"")
    run, model, tok, ckpt = load_run(args, family=encoders())
    index = build_index(model, tok, run, args.pooling)
    hits = index.search(embed(model, tok, [args.text], args.pooling)[0], args.top_k)
    if args.json:
        out({"run": run.id, "checkpoint_step": ckpt.step, "query": args.text, "pooling": args.pooling,
              "searched": len(index.items), "results": hits})
        return 0
    for h in hits:
        print(f"{h['score']:.3f}  [{h['source']}]  {h['text'][:100]}")
    return 0


def cmd_embed(args) -> int:
    from desktop_llm.core.inference.embeddings import build_index, embed, write_projector

    if not args.text and not args.projector and not args.data:
        raise CliError("Give --text to embed, --projector DIR to write the run's sentences for "
                       "TensorBoard's projector, or --data FILE to measure how its vectors group held-out texts.")
    if any(not t.strip() for t in args.text):
        raise CliError("An empty --text has no meaning to embed: give some words.")
    if args.projector and Path(args.projector).exists() and not Path(args.projector).is_dir():
        raise CliError(f"{args.projector} is a file: --projector takes a folder to write vectors.tsv and "
                       "metadata.tsv in.")
    run, model, tok, ckpt = load_run(args, family=encoders())
    result: dict = {"run": run.id, "checkpoint_step": ckpt.step, "pooling": args.pooling}
    if args.text:
        vectors = embed(model, tok, args.text, args.pooling)
        result["embeddings"] = [{"text": t, "vector": [round(float(x), 6) for x in v]}
                                for t, v in zip(args.text, vectors)]
    if args.projector or args.data:
        index = build_index(model, tok, run, args.pooling, paths=args.data)
        agree, chance = index.neighbour_agreement()
        result.update({"sentences": len(index.items), "held_out": bool(args.data),
                       "nearest_same_source": agree, "by_chance": chance,
                       "tfidf_same_source": index.baseline_agreement()})
    if args.projector:
        vec, meta = write_projector(args.projector, index)
        result.update({"vectors": str(vec), "metadata": str(meta)})
    if args.json:
        out(result)
        return 0
    for e in result.get("embeddings", []):
        print(f"{e['text'][:60]!r}: {len(e['vector'])} numbers, first {e['vector'][:4]}")
    if args.projector:
        print(f"wrote {result['vectors']} and {result['metadata']} ({result['sentences']:,} sentences): load them at "
              "projector.tensorflow.org, or in TensorBoard's projector")
    if "nearest_same_source" in result:
        model, tfidf = result["nearest_same_source"], result["tfidf_same_source"]
        which = f"of {result['sentences']:,} held-out texts " if args.data else ""
        print(f"nearest neighbour {which}from the same source: {model:.0%} (by chance {result['by_chance']:.0%}; "
              f"TF-IDF character n-grams {tfidf:.0%}" + ("" if model > tfidf else ": the model's vectors do not "
                                                         "beat them yet") + ")")
    return 0


ATTENTION_SHOWN = 12  # tokens listed per head in the terminal


def cmd_attention(args) -> int:
    import numpy as np

    from desktop_llm.core.models import FAMILY_NAMES, get_family

    run, model, tok, ckpt = load_run(args, family=FAMILY_NAMES)
    kinds = get_family(run.config.family).attention_kinds
    if args.kind not in kinds:  # a translator's three; others have one
        raise CliError(f"--kind {args.kind} is for translator runs: run {run.id} ({run.config.family}) has "
                       "self-attention only (leave --kind out).")
    maps = get_family(run.config.family).attention_maps(model, tok, args.text, args.kind)
    if args.out:
        np.savez_compressed(args.out, weights=maps.weights, token_ids=np.array(maps.token_ids))
    if args.json:
        out({"tokens": maps.tokens, "token_ids": maps.token_ids, "key_tokens": maps.columns, "kind": maps.kind,
              "notes": maps.notes, "shape": list(maps.weights.shape), "weights": maps.weights.round(5).tolist()})
    else:
        L, H, T, _ = maps.weights.shape
        shown = min(T, ATTENTION_SHOWN)
        note = f"; each head below lists the first {shown} of the {T} tokens (--json or --out for all)"
        print(f"{T} tokens, {L} layers x {H} heads, {maps.kind} attention (checkpoint step {ckpt.step})"
              + (note if shown < T else ""))
        for layer in range(L):
            for head in range(H):
                w = maps.weights[layer, head]
                top = [int(np.argmax(w[i])) for i in range(shown)]
                print(f"layer {layer} head {head}: each token attends most to -> "
                      + " ".join(f"{maps.tokens[i]!r}->{maps.columns[j]!r}" for i, j in enumerate(top)))
        for note in maps.notes:
            print(note)
    return 0


def add_parser(sub) -> None:
    for name, helptext in (("similar", "the corpus' sentences closest in meaning to a text (an encoder run)"),
                           ("embed", ("sentence embeddings of texts, or of the run's sentences for TensorBoard's "
                                      "projector (an encoder run)"))):
        sp = sub.add_parser(name, help=helptext)
        run_args(sp)
        sp.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                        help="mean of the token states, or the [CLS] state (default %(default)s)")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "similar":
            sp.add_argument("--text", required=True, help="the text to search for")
            sp.add_argument("--top-k", type=int, default=10, help="how many sentences (default %(default)s)")
            sp.set_defaults(func=cmd_similar)
        else:
            sp.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
            sp.add_argument("--projector", metavar="DIR",
                            help="write vectors.tsv and metadata.tsv of the run's sentences to DIR")
            sp.add_argument("--data", metavar="FILE", action="append",
                            help=("held-out texts, read as the run's data (a labelled file for a classifier): how "
                                  "often each one's nearest neighbour among them shares its label, beside TF-IDF's "
                                  "and chance's (with --projector, these are the sentences written)"))
            sp.set_defaults(func=cmd_embed)

    at = sub.add_parser("attention", help="attention weights of each layer and head for a text")
    run_args(at)
    at.add_argument("--text", required=True, help="the text to look at")
    at.add_argument("--out", help="save the weights to an .npz file")
    at.add_argument("--kind", choices=["self", "encoder", "decoder", "cross"], default="self",
                    help="a translator's attention: encoder (source), decoder (its translation) or cross "
                         "(translation -> source); other runs have one kind (default %(default)s)")
    at.add_argument("--json", action="store_true", help="print tokens and weights as JSON")
    at.set_defaults(func=cmd_attention)
