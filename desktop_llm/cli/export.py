"""`desktop-llm export RUN --format keras-hub|savedmodel|onnx|litert [--out PATH] [--checkpoint best|latest]`:
a trained run written in a format other tools load."""

from __future__ import annotations

import argparse

from desktop_llm.cli.common import NO_RUNS, CliError, newest_trained, out, quiet_keras, store_of

DESCRIPTION = """\
Write a trained run in a format that other tools load without desktop_llm
(default folder: <workspace>/exports/<run>-<format>/; an earlier export there is replaced).

  keras-hub   a keras-hub GPT-2 preset (GPT2Backbone + GPT2CausalLM): plain keras-hub loads it
              with GPT2CausalLM.from_preset(folder) and generates. Runs with an untied output
              layer are refused (GPT-2 ties it). sentencepiece and bpe runs include their
              keras-hub SentencePieceTokenizer; char, byte and wordpiece runs have no keras-hub
              tokenizer with the same ids and text: the model is exported without one.
  savedmodel  a TensorFlow SavedModel: `serve` (token ids -> logits) and `generate`
              (prompt ids, new tokens, temperature, top-k, seed -> ids) signatures.
  onnx        model.onnx, the forward pass only (token ids -> logits).
  litert      model.tflite, the forward pass only (token ids -> logits).

Only keras-hub and savedmodel carry generation: the key/value-cache generation loop does not
convert to ONNX (XlaDynamicUpdateSlice) or LiteRT (6-D StridedSlice). Every export folder also
has vocabulary.json (token text by id) and export.json (what it is and how to load it).
onnx needs: pip install "desktop_llm[onnx]".
"""


def add_parser(sub) -> None:
    from desktop_llm.core.export import FORMATS

    ex = sub.add_parser("export", help="export a run for other tools: keras-hub preset, SavedModel, ONNX, LiteRT",
                        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("run", nargs="?", help="run id, the start of one, or run name (default: the newest trained run)")
    ex.add_argument("--format", required=True, choices=FORMATS, help="what to write (see above)")
    ex.add_argument("--out", metavar="PATH", help="folder to write (default: <workspace>/exports/<run>-<format>/)")
    ex.add_argument("--checkpoint", default="best", choices=["best", "latest"], help="which checkpoint (default %(default)s)")
    ex.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ex.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from desktop_llm.core.export import check_exportable, describe, export_run

    store = store_of(args)
    run = store.resolve(args.run) if args.run else newest_trained(store)
    if run is None:
        raise CliError(NO_RUNS)
    check_exportable(run, args.format)  # refuse at once, before TensorFlow loads
    quiet_keras()
    result = export_run(run, args.format, out=args.out, checkpoint=args.checkpoint, exports_dir=store.exports_dir)
    if args.json:
        out({"path": str(result.path), "format": result.format, "run": run.id, "notes": result.notes})
    else:
        print(describe(result))
    return 0
