"""The Learning page (issue 28): a GPT run's probes as a timeline, a map of what it learned when
(click a token for its curve) and the loss by position, read from the run folder, no model loaded."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from desktop_llm.core import probes
from tests.gui.conftest import open_window, train_tiny


@pytest.fixture()
def store(probed):
    return probed[0]


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


def test_your_own_prompts_replace_the_timelines_on_the_kept_snapshots(qtbot, store):
    run = store.get(store.list()[0]["id"])
    try:
        with open_window(qtbot, store) as w:
            w.show_page("Learning")
            p = w.learning_page
            p.edit_prompts(["First Citizen", ""])  # an empty line is no prompt
            assert probes.prompts(run, p.spec) == ["First Citizen"]
            qtbot.waitUntil(lambda: (run.id, ("First Citizen",)) in p.replayed, timeout=120_000)
            text = p.timeline.toPlainText()
            lines = [line.strip() for line in text.splitlines()]
            assert "“First Citizen”" in text and lines.index("20") < lines.index("40") < lines.index("60")
            assert "kept weight snapshots" in p.prompts_note.text()
            p.edit_prompts(["x" * 201])  # one line says why; nothing changes
            assert "200 characters at most" in p.prompts_note.text() and probes.prompts(run, p.spec) == ["First Citizen"]
            p.edit_prompts([])  # back to the probe's own
            assert all(f"“{prompt}”" in p.timeline.toPlainText() for prompt in p.spec["prompts"])
    finally:
        probes.prompts_path(run).unlink(missing_ok=True)


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


def test_the_head_atlas_shows_each_heads_role_steps_through_training_and_opens_a_head(qtbot, store):
    from desktop_llm.core import heads

    run = store.get(store.list()[0]["id"])
    recs = probes.records(run)
    with open_window(qtbot, store) as w:
        w.show_page("Learning")
        atlas = w.learning_page.atlas
        w.learning_page.tabs.setCurrentWidget(atlas)
        assert atlas.grid.rowCount() == 1 and atlas.grid.columnCount() == 2  # 1 layer x 2 heads
        assert atlas.slider.maximum() == 2 and "step 60" in atlas.step_label.text()  # the newest first
        roles = heads.roles(recs[-1]["heads"])
        assert atlas.grid.item(0, 1).text().startswith(heads.LABELS[roles[0][1]])
        atlas.slider.setValue(0)
        assert "step 20" in atlas.step_label.text() and atlas.marker.value() == 20
        assert atlas.grid.item(0, 0).text().startswith(heads.LABELS[heads.roles(recs[0]["heads"])[0][0]])
        curves = atlas.curves.getPlotItem().listDataItems()
        assert len(curves) == 3 and list(curves[0].getData()[0]) == [20, 40, 60]
        assert np.allclose(curves[0].getData()[1], heads.curves(recs)["induction"])
        atlas.play.setChecked(True)  # Play steps through the evaluations, one per tick
        atlas._advance()
        assert atlas.slider.value() == 1 and atlas.play.text() == "Pause"
        atlas._advance()
        atlas._advance()  # past the last: it stops by itself
        assert not atlas.play.isChecked() and atlas.play.text() == "Play"
        atlas.slider.setValue(1)  # the heads at step 40
        atlas.grid.cellClicked.emit(0, 1)  # a click opens the head on the Attention page, at that step
        page = w.attention_page
        assert w.stack.currentWidget() is page and page.layer.value() == 0 and page.head.value() == 1
        assert page.picker.checkpoint == "40"  # the model at step 40: its weight snapshot
        qtbot.waitUntil(lambda: page.maps is not None, timeout=60_000)
        assert page.maps.num_heads == 2 and page.head.value() == 1 and "checkpoint at step 40" in page.status.text()
        page.picker.choose_point("best")
        assert page.text.toPlainText()[:8] in "".join(page.maps.tokens)  # the probe's own text


def test_the_health_tab_draws_each_layers_change_and_gradient_and_says_what_is_off(qtbot, store):
    from desktop_llm.core import health

    run = store.get(store.list()[0]["id"])
    recs = probes.records(run)
    with open_window(qtbot, store) as w:
        w.show_page("Learning")
        view = w.learning_page.health
        assert not view.change.getPlotItem().listDataItems()  # drawn when its tab is shown, not at each poll
        w.learning_page.tabs.setCurrentWidget(view)
        lines = view.change.getPlotItem().listDataItems()
        assert [c.name() for c in lines] == ["embeddings", "block 0", "final norm"]
        steps, _, values = health.series(recs, "change_per_step")
        xs, ys = lines[1].getData()
        assert list(xs) == steps[1:] and np.allclose(ys, np.log10(values[1:, 1]))  # log axis; from the 2nd
        assert len(view.dormant.getPlotItem().listDataItems()) == len(view.logit.getPlotItem().listDataItems()) == 1
        steps, _, grads = health.series(recs, "grad_norm")
        xs, ys = view.grad.getPlotItem().listDataItems()[1].getData()  # from the first evaluation
        assert list(xs) == steps and np.allclose(ys, np.log10(grads[:, 1]))
        found = health.flags(recs)
        assert view.flags.text().startswith("<b>Looks off:</b>" if found else "Nothing looks off")


def test_the_embeddings_tab_maps_the_snapshots_and_names_a_tokens_neighbours(qtbot, store):
    from desktop_llm.core import snapshots

    run = store.get(store.list()[0]["id"])
    with open_window(qtbot, store) as w:
        w.show_page("Learning")
        view = w.learning_page.embeddings
        w.learning_page.tabs.setCurrentWidget(view)
        qtbot.waitUntil(lambda: view.space is not None, timeout=60_000)
        assert view.space["steps"] == snapshots.steps(run) == [20, 40, 60]
        assert view.slider.maximum() == 2 and "step 60" in view.step_label.text()
        assert len(view.points.data) == view.space["coords"].shape[1] and view.labels
        view.slider.setValue(0)
        assert "step 20" in view.step_label.text()
        assert np.allclose([p["x"] for p in view.points.data], view.space["coords"][0][:, 0])
        view.show_neighbours(5)
        assert view.neighbours.text().count("step ") == 3 and "Nearest to" in view.neighbours.text()
        assert "3 kept" in view.status.text() and "200 MB budget" in view.status.text()
        assert len(view.curves.getPlotItem().listDataItems()) == 2
        assert view.pos_image.image.shape == (32, 32)


def test_a_translator_run_shows_its_translations_over_training_and_only_the_views_it_has(qtbot, tmp_path):
    """A family whose loss is not per token of a text (a translator's: per target token of a pair)
    and whose blocks the probe does not read (keras-hub's BART): the timeline of its translations
    and its health, without the token map, the in-context curve, the head atlas or empty plots."""
    from desktop_llm.resources import parallel_example

    store, run = train_tiny(tmp_path, "translator", parallel_example(), 300, 16, 10)
    recs = probes.records(run)
    with open_window(qtbot, store) as w:
        w.show_page("Learning")
        p = w.learning_page
        shown = [p.tabs.tabText(i) for i in range(p.tabs.count()) if p.tabs.isTabVisible(i)]
        assert shown == ["Timeline", "Health", "Embeddings"]
        text = p.timeline.toPlainText()
        assert all(f"“{source}”" in text for source in probes.spec(run)["prompts"])
        assert "".join(recs[-1]["continuations"][0]["tokens"]) in text
        assert p.prompts_note.text() == "The probe's prompts: validation sources."
        assert "translations" in p.status.text()
        p.tabs.setCurrentWidget(p.health)
        assert not p.health.right.isVisible() and "feed-forward" not in p.health.flags.text()
        assert recs[-1]["health"]["groups"][:3] == ["embeddings", "encoder 0", "decoder 0"]


_WINDOW_ALONE = r"""
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_llm.gui.main_window import MainWindow
from desktop_llm.store import RunStore
w = MainWindow(RunStore(sys.argv[1]), restore=False)
w.show()
w.show_page("Learning")
p = w.learning_page
p.edit_prompts(["First Citizen"])


def wait(done):
    while not done():
        app.processEvents()
        time.sleep(0.01)


wait(lambda: p.replay_task is None)  # done (or failed) clears it
w.show_page("Attention")
w.attention_page.compute()
wait(lambda: w.attention_page.task.settled)
w.show_page("Generate")
w.generate_page.generate()
wait(lambda: w.generate_page.task.settled)
w.show_page("Evaluate")
w.evaluate_page.evaluate()
wait(lambda: w.evaluate_page.task.settled)
print(json.dumps({"modules": sorted(m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules),
                  "timeline": p.timeline.toPlainText(), "note": p.prompts_note.text(),
                  "attention": w.attention_page.maps is not None, "generated": w.generate_page.output.toPlainText(),
                  "evaluated": w.evaluate_page.result is not None and w.evaluate_page.result.tokens,
                  "error": w.evaluate_page.status.text(), "memory": (w._update_memory(), w.memory_label.text())[1]}))
w.close()
"""


def test_the_windows_model_work_runs_in_the_model_worker_and_loads_no_keras_backend_in_the_window(store, tmp_path):
    """"The window never blocks" (issue 28): a backend's shared libraries load holding the GIL, a
    freeze no thread hides, so the window's replays, attention maps, generation and evaluation run
    in `desktop-llm worker`, and the window's own process never imports a backend."""
    import json
    import os
    import subprocess
    import sys

    run = store.get(store.list()[0]["id"])
    try:
        out = subprocess.run([sys.executable, "-c", _WINDOW_ALONE, str(store.home)], check=False, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        assert seen["modules"] == []
        assert "“First Citizen”" in seen["timeline"] and "kept weight snapshots" in seen["note"]
        lines = [line.strip() for line in seen["timeline"].splitlines()]
        assert lines.index("20") < lines.index("40") < lines.index("60")  # every evaluation, by its snapshot
        assert seen["attention"] and len(seen["generated"]) > 0, seen
        assert seen["evaluated"] > 0, seen  # the validation split's tokens scored
        assert " · models " in seen["memory"]  # the status bar counts the worker's memory beside the window's
    finally:
        probes.prompts_path(run).unlink(missing_ok=True)
