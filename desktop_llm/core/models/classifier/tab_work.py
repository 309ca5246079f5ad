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
    from desktop_llm.core.models.classifier.held_out import judged, with_baselines
    from desktop_llm.core.models.classifier.report import report

    data = LabelledData(run.data_dir)
    return judged(with_baselines(report(model, data), data, tok))


def file_report(model, tok, run, path: str, emit=None) -> dict:
    """The report on a held-out labelled file (`classify --data`)."""
    from desktop_llm.core.models.classifier import held_out

    rep = held_out.judged(held_out.file_report(model, tok, run, path))
    left = rep["repeats_left_out"]
    return {**rep, "path": path, "left_out": f"Left out: {held_out.repeats(left)}." if left else ""}
