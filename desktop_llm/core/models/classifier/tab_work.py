"""What the window's Classify tab asks of a classifier, run in the model worker
(core/worker_jobs.with_model)."""

from __future__ import annotations


def classify_texts(model, tok, run, texts: list[str], emit=None) -> list[dict]:
    from desktop_llm.core.models.classifier.examples import LabelledData
    from desktop_llm.core.models.classifier.report import classify

    data = LabelledData(run.data_dir)
    return classify(model, tok, data.classes, texts, run.config.model.sequence_length, data.specials)


def validation_report(model, tok, run, emit=None) -> dict:
    from desktop_llm.core.models.classifier.examples import LabelledData
    from desktop_llm.core.models.classifier.held_out import beats, verdict, with_baselines
    from desktop_llm.core.models.classifier.report import report

    data = LabelledData(run.data_dir)
    rep = with_baselines(report(model, data), data, tok)
    return {**rep, "verdict": verdict(rep), "beats": beats(rep)}


def file_report(model, tok, run, path: str, emit=None) -> dict:
    """The report on a held-out labelled file (`classify --data`), read as training read its data."""
    from desktop_llm.core.models.classifier.examples import LabelledData, read_examples
    from desktop_llm.core.models.classifier.held_out import beats, held_out_report, repeats, verdict

    d = run.config.data
    examples = read_examples([path], d.column, d.label_column, d.encodings, training=False)
    rep = held_out_report(model, tok, LabelledData(run.data_dir), examples, run.config.model.sequence_length)
    left = rep["repeats_left_out"]
    return {**rep, "verdict": verdict(rep), "beats": beats(rep), "path": path, "left_out": f"Left out: {repeats(left)}." if left else ""}
