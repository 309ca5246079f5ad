"""Every page fits a 1366x768 screen (and so 1280x800) in every state a user reaches: the window's
minimum size is the largest page's (a QStackedWidget asks all of them), so one tall page pushed the
plots, the status bar and the Start button off every page's bottom edge (issue 26, item 4)."""

import json
import math

import pytest

from desktop_llm.core.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, preset

# 768 px less a title bar (about 30) and a taskbar (about 40): what a 1366x768 screen leaves a window.
HEIGHT = 698
WIDTH = 1280


def _run(store, name, vocabulary=65):
    cfg = RunConfig(name=name, data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char"),
                    model=preset("tiny"), training=TrainConfig(max_steps=20))
    run = store.create(cfg)
    run.metrics_path.write_text("".join(json.dumps(e) + "\n" for e in (
        {"type": "step", "step": 10, "loss": 3.9, "lr": 1e-3, "tokens_per_sec": 1000.0},
        {"type": "eval", "step": 10, "val_loss": 3.5, "val_ppl": 33.1, "sample": "a"},
        {"type": "step", "step": 20, "loss": 2.0, "lr": 1e-4, "tokens_per_sec": 1000.0})))
    run.write_status(status="completed", step=20, best_val_loss=2.0, vocabulary_size=vocabulary,
                     device="CPU (2 cores)", tokens_per_sec=1000.0,
                     baselines={"figures": {"unigram": {"loss": 3.3, "bits_per_byte": 4.8},
                                            "trigram": {"loss": 1.9, "bits_per_byte": 2.8}}, "bytes_per_token": 1.0})
    store.sync(run)
    return run


def _fits(window, qapp, what):
    for _ in range(3):  # layouts settle over a few passes of the event loop
        qapp.processEvents()
    hint = window.minimumSizeHint()
    assert hint.height() <= HEIGHT, f"{what}: the window needs {hint.height()} px of height"
    assert hint.width() <= WIDTH, f"{what}: the window needs {hint.width()} px of width"


def test_every_page_fits_with_each_family_chosen(window, qapp):
    tp = window.train_page
    for page in ("Data", "Tokenizer", "Model", "Runs", "Attention", "Generate", "Evaluate"):
        window.show_page(page)
        _fits(window, qapp, page)
    window.show_page("Train")
    for i in range(tp.family.count()):
        tp.family.setCurrentIndex(i)
        _fits(window, qapp, f"Train page, {tp.family.currentData()}")


def test_the_runs_page_fits_with_runs_selected(window, qapp):
    store = window.session.store
    ids = [_run(store, n).id for n in ("first", "second", "third")]
    window.session.runs_changed.emit()
    window.show_page("Runs")
    rp = window.runs_page
    rp.select(ids[:1])  # one: its card shows below the table
    _fits(window, qapp, "Runs page, one run selected")
    assert rp.details_area.isVisible() and "device" in rp.details.text()
    rp.select(ids)
    _fits(window, qapp, "Runs page, three runs selected")
    # several: the settings that differ between them, in the same space (here: none but names)
    assert rp.details_area.isVisible() and rp.details.text() == "These runs have the same settings (besides their names)."
    rp.refresh()  # the folders changed (a run training): all three stay selected, not the last one
    assert sorted(rp.selected_ids()) == sorted(ids)


def test_empty_plots_say_what_to_do_and_a_run_shows_the_uniform_guess(window, qapp):
    store = window.session.store
    run = _run(store, "only", vocabulary=65)
    window.session.runs_changed.emit()
    window.show_page("Runs")
    rp = window.runs_page
    qapp.processEvents()
    assert rp.plots.empty.isVisible() and "Select a run" in rp.plots.empty.text()
    assert not rp.plots.loss.isVisible()  # no bare 0-1 axes
    rp.select([run.id])
    qapp.processEvents()
    assert rp.plots.loss.isVisible() and not rp.plots.empty.isVisible()
    line = rp.plots.uniform
    assert line.isVisible() and line.value() == pytest.approx(math.log(65))
    assert "ln 65 = 4.17 nats, 6.02 bits" in line.label.toPlainText()
    # the baselines it must beat, dotted, and the card's verdict (best 2.0: beats unigram, not trigram)
    lines = {ln.label.toPlainText(): ln.value() for _, ln in rp.plots.baseline_lines}
    assert lines == {"unigram 3.30": pytest.approx(3.3), "trigram 1.90": pytest.approx(1.9)}
    assert "this model beats unigram; not yet trigram" in rp.details.text()
    rp.select([])
    qapp.processEvents()
    assert rp.plots.empty.isVisible() and not line.isVisible()


def test_the_bits_axis_reads_the_loss_in_bits():
    from desktop_llm.gui.plots import BitsAxis

    axis = BitsAxis("right")
    ticks = axis.tickValues(0.0, 2 * math.log(2) * 4, 200)  # 0 to 8 bits
    labels = []
    for spacing, positions in ticks:  # major, then minor ticks
        labels += (texts := axis.tickStrings(positions, 1.0, spacing))
        # each tick sits where its number of bits is in nats, and reads as bits
        for pos, text in zip(positions, texts):
            assert float(text) * math.log(2) == pytest.approx(pos)
    assert "8" in labels
