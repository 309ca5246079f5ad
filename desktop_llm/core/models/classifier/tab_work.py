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
    from desktop_llm.core.models.classifier.report import report

    return report(model, LabelledData(run.data_dir))
