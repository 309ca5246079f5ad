"""The Learning page (issue 28): a GPT run's probes as a timeline, a map of what it learned when
(click a token for its curve) and the loss by position, read from the run folder, no model loaded."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from desktop_llm.core import probes
from tests.core.test_probes import train_probed
from tests.gui.conftest import open_window


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return train_probed(tmp_path_factory.mktemp("ws"))[0]


class _Click:
    def __init__(self, y):
        self._pos = QPointF(0.5, y)

    def pos(self):
        return self._pos


def test_learning_page_shows_the_timeline_what_was_learned_when_and_the_context_curve(qtbot, store):
    run = store.list()[0]
    spec, recs = probes.spec(store.get(run["id"])), probes.records(store.get(run["id"]))
    with open_window(qtbot, store) as w:
        w.show_page("Learning")
        p = w.learning_page
        assert p.picker.run_id == run["id"] and not p.picker.which.isVisible()
        text = p.timeline.toPlainText()
        assert all(f"“{prompt}”" in text for prompt in spec["prompts"])
        lines = [line.strip() for line in text.splitlines()]
        assert lines.index("20") < lines.index("40") < lines.index("60")  # a row per evaluation, in order
        assert "3 evaluations probed, the last at step 60" in p.status.text()
        assert p.image.image.shape == (32, 3)  # the probe text's tokens down, evaluations across
        shown = np.asarray(p.image.image)
        assert np.allclose(shown, np.array([r["token_losses"] for r in recs]).T[p.order])
        p._on_click(_Click(2.5))  # the third row of the map: that token's curve
        assert p.shown_token == p.order[2]
        xs, ys = p.curve.getPlotItem().listDataItems()[0].getData()
        assert list(xs) == [20, 40, 60] and np.allclose(ys, [r["token_losses"][p.order[2]] for r in recs])
        assert "Learned early" in p.lists.text() and "Got worse" in p.lists.text()
        curves = p.context.getPlotItem().listDataItems()
        assert len(curves) == 3 and len(curves[0].getData()[1]) == 32
        assert p.milestones.text().startswith("Milestones")


def test_a_run_without_probes_says_so(qtbot, store):
    run = store.get(store.list()[0]["id"])
    saved = probes.records_path(run).read_bytes()
    probes.records_path(run).unlink()
    try:
        with open_window(qtbot, store) as w:
            w.show_page("Learning")
            p = w.learning_page
            assert p.status.text() == "This run has no probes yet. " + p.status.text().split("yet. ", 1)[1]
            assert p.timeline.toPlainText() == "" and p.image.image is None
    finally:
        probes.records_path(run).write_bytes(saved)


def test_the_loss_plot_marks_a_runs_milestones(qapp):
    from desktop_llm.gui.plots import MetricsPlots

    plots = MetricsPlots()
    evals = [{"type": "eval", "step": s, "val_loss": v, "val_ppl": 1.0, "sample": ""}
             for s, v in ((100, 3.4), (200, 2.5), (300, 1.8), (400, 2.0))]
    figures = {"unigram": {"loss": 3.3}, "bigram": {"loss": 2.6}, "trigram": {"loss": 1.9}}
    plots.show_history("r", "r", evals, vocabulary=65, baselines=figures)
    marks = {line.label.toPlainText(): line.value() for line in plots.milestone_lines}
    assert marks == {"beats the unigram": 200, "beats the bigram": 200, "beats the trigram": 300,
                     "validation minimum: overfitting after": 300}
    plots.show_history("other", "other", evals[:1], vocabulary=65)  # two runs compared: no marks redrawn
    plots.clear()
    assert plots.milestone_lines == []


def test_the_runs_page_writes_a_report_card(qtbot, store):
    with open_window(qtbot, store) as w:
        w.show_page("Runs")
        rp = w.runs_page
        run_id = store.list()[0]["id"]
        rp.select([run_id])
        assert rp.report_btn.isEnabled()
        page = rp.write_report(open_it=False)
        assert page == store.get(run_id).folder / "report" / "report.html" and page.exists()
        assert "Report written" in rp.message.text() and "Learning timeline" in page.read_text("utf-8")
