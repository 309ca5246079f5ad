"""`desktop-llm classify`: a classifier run's class probabilities for texts, or its validation report."""

from __future__ import annotations

import json

from desktop_llm.errors import UsageError


def add_parser(sub, kit) -> None:
    def cmd_classify(args) -> int:
        from desktop_llm.core.models.classifier.examples import LabelledData
        from desktop_llm.core.models.classifier.held_out import file_report, judged, repeats, with_baselines
        from desktop_llm.core.models.classifier.report import classify, report

        texts = list(args.texts)
        if args.file:  # read as a corpus is (its encoding detected; a binary file refused), a text a line
            texts += [line for line in kit.read_text_file(args.file).splitlines() if line.strip()]
        args.report = args.report or bool(args.data)
        if not texts and not args.report:
            raise UsageError("Give texts to classify, --file, --report, or --data.")
        run, model, tok, ckpt = kit.load_run(args, family="classifier")
        data = LabelledData(run.data_dir)
        out: dict = {"run": run.id, "checkpoint_step": ckpt.step, "classes": data.classes}
        if texts:
            out["results"] = classify(model, tok, data.classes, texts, run.config.model.sequence_length, data.specials)
        if args.data:
            out["report"] = judged(file_report(model, tok, run, args.data))
        elif args.report:
            out["report"] = judged(with_baselines(report(model, data), data, tok))
        if args.json:
            kit.out(out)
            return 0
        for r in out.get("results", []):
            probs = "  ".join(f"{c} {p:.0%}" for c, p in list(r["probabilities"].items())[:5])
            print(f"{r['label']}\t{probs}\t{r['text'][:80]}" + ("  (cut to the context)" if r["cut"] else ""))
        if args.report:
            rep = out["report"]
            width = max(len(c) for c in data.classes)
            where = (f"held-out texts of {args.data}" + (f"; left out: {repeats(rep['repeats_left_out'])}"
                                                          if rep["repeats_left_out"] else "")) if args.data else "validation texts"
            print(f"accuracy {rep['accuracy']:.1%}   macro-F1 {rep['macro_f1']:.3f}   "
                  f"({sum(pc['support'] for pc in rep['per_class'])} {where})")
            for name, fig in rep["baselines"].items():
                print(f"  {name}: accuracy {fig['accuracy']:.1%}   macro-F1 {fig['macro_f1']:.3f}")
            print(f"  the model {rep['verdict']}")
            print(f"{'class':<{width}}  precision  recall  f1     support")
            for c, pc in zip(data.classes, rep["per_class"]):
                print(f"{c:<{width}}  {pc['precision']:9.1%}  {pc['recall']:6.1%}  {pc['f1']:.3f}  {pc['support']}")
            print("confusion (rows: true, columns: predicted): " + json.dumps(rep["confusion"]))
            for m in rep["misclassified"][:10]:
                print(f"wrong: {m['true']} read as {m['predicted']} ({m['p']:.0%}): {m['text'][:70]!r}")
        return 0

    cl = sub.add_parser("classify", help="a classifier run's class probabilities for texts, or its report")
    kit.run_args(cl)
    cl.add_argument("--text", action="append", dest="texts", default=[],
                    help="a text to classify (repeatable)")
    cl.add_argument("--file", help="classify each line of this file")
    cl.add_argument("--report", action="store_true",
                    help="accuracy, macro-F1, confusion matrix, per-class precision/recall and the "
                         "misclassified texts of the validation split")
    cl.add_argument("--data", metavar="FILE",
                    help="the report on this labelled file or folder (a held-out test set, read as training "
                         "reads data) instead of the validation split, beside the majority class and naive "
                         "Bayes fitted on the run's training split")
    cl.add_argument("--json", action="store_true", help="print JSON")
    cl.set_defaults(func=cmd_classify)
