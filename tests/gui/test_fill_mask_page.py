"""The Generate page becomes a fill-mask box for a masked-LM run (issue 11), for real."""

from dataclasses import replace

from PySide6.QtCore import Qt

from desktop_llm.gui.families.masked_lm import FillMaskPanel
from desktop_llm.store import RunStore
from tests.core.test_robustness import _config
from tests.gui.conftest import wait_task


def test_generate_page_fills_masks_for_a_masked_lm_run(qtbot, home, shakespeare_small):
    from desktop_llm.core.training import train_run
    from desktop_llm.gui.main_window import MainWindow

    store = RunStore(home)
    gpt = store.create(_config(shakespeare_small, steps=20, eval_interval=20))
    assert train_run(gpt, store=store)["status"] == "completed"
    cfg = _config(shakespeare_small, steps=40, eval_interval=20, batch_size=16)
    mlm = store.create(replace(cfg, name="mlm", family="masked_lm"))
    assert train_run(mlm, store=store)["status"] == "completed"

    w = MainWindow(store, restore=False)
    qtbot.addWidget(w)
    w.show()
    try:
        w.show_page("Generate")
        g = w.generate_page
        assert g.picker.run_id == mlm.id  # the newest run
        panel = g.panel(FillMaskPanel)
        fill = g.tabs.indexOf(panel)
        assert g.tabs.currentIndex() == fill and g.tabs.isTabVisible(fill) and not g.tabs.isTabVisible(0)
        assert not g.left_pane.isVisible() and not g.generate_btn.isVisible()
        assert g.header.title.text() == "Fill mask"
        panel.text.setText("To be or [MASK]ot")  # the tiny model reads 16 tokens
        panel.top_k.setValue(5)
        qtbot.mouseClick(panel.fill_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert panel.result is not None, panel.status.text()
        assert panel.table.rowCount() == 5
        probs = [c["p"] for c in panel.result[0]["candidates"]]
        assert probs == sorted(probs, reverse=True) and panel.table.item(0, 2).text().endswith("%")
        panel.text.setText("no mask at all")
        qtbot.mouseClick(panel.fill_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert "[MASK]" in panel.status.text() and panel.table.rowCount() == 0

        # Back to the GPT run: prompt and chat again.
        g.picker.runs.setCurrentIndex(g.picker.runs.findData(gpt.id))
        assert g.tabs.currentIndex() == 0 and not g.tabs.isTabVisible(g.tabs.indexOf(panel)) and g.left_pane.isVisible()
        assert g.header.title.text() == "Generate"
    finally:
        w.train_page.shutdown()


def test_the_train_page_starts_a_run_of_the_chosen_family(window, qtbot, shakespeare_small):
    w = window
    w.data_page.add_paths([str(shakespeare_small)])
    wait_task(qtbot, w.data_page)
    w.tokenizer_page.train()
    wait_task(qtbot, w.tokenizer_page)
    t = w.train_page
    t.family.setCurrentIndex(t.family.findData("masked_lm"))
    assert t.run_config().family == "masked_lm"
    assert t.settings()["family"] == "masked_lm"
    t.family.setCurrentIndex(0)
    t.apply_settings({"family": "masked_lm"})
    assert t.family.currentData() == "masked_lm"


def test_the_train_page_sets_the_precision(window):
    t = window.train_page
    assert t.run_config().training.mixed_precision == "auto"
    t.precision.setCurrentIndex(t.precision.findData("float16"))
    assert t.run_config().training.mixed_precision == "float16"
    saved = t.settings()
    t.precision.setCurrentIndex(0)
    t.apply_settings(saved)
    assert t.precision.currentData() == "float16"


def test_the_window_fits_the_config_by_the_clis_rule(window):
    from desktop_llm.core.config import TrainConfig

    t = window.train_page
    t.steps.setValue(50)
    t.warmup.setValue(100)
    t.eval_every.setValue(250)
    tr = t.run_config().training
    assert (tr.warmup_steps, tr.eval_interval) == (TrainConfig(max_steps=50, warmup_steps=100).fitted().warmup_steps, 50)
    assert tr.warmup_steps == 5


def test_the_learning_page_maps_an_encoders_sentences_over_training(qtbot, home, shakespeare_small, tmp_path):
    """Issue 28, view 5 for encoders: the sentence embeddings at each weight snapshot, coloured by
    source, and how often a sentence's nearest neighbour shares its source, against TF-IDF."""
    import numpy as np

    from desktop_llm.core.config import DataConfig
    from desktop_llm.core.training import train_run
    from desktop_llm.gui.main_window import MainWindow
    from tests.conftest import TANGSHI

    poems = tmp_path / "poems.txt"
    poems.write_text(TANGSHI.read_text("utf-8")[:20_000], encoding="utf-8")
    store = RunStore(home)
    cfg = _config(shakespeare_small, steps=40, eval_interval=20, batch_size=16)
    mlm = store.create(replace(cfg, name="mlm2", family="masked_lm",
                               data=DataConfig(paths=(str(shakespeare_small), str(poems)))))
    assert train_run(mlm, store=store)["status"] == "completed"
    w = MainWindow(store, restore=False)
    qtbot.addWidget(w)
    w.show()
    try:
        w.show_page("Learning")
        p = w.learning_page
        view = p.sentences
        assert p.tabs.isTabVisible(p.tabs.indexOf(view))
        p.tabs.setCurrentWidget(view)
        qtbot.waitUntil(lambda: view.space is not None, timeout=180_000)
        s = view.space
        assert s["steps"] == [20, 40] and s["coords"].shape == (2, len(s["texts"]), 2)
        assert sorted(set(s["sources"])) == ["poems.txt", "shakespeare_small.txt"]
        assert 0 < s["chance"] < 1 and 0 <= s["baseline"] <= 1 and all(0 <= a <= 1 for a in s["agreement"])
        assert "sources" in view.status.text() and "TF-IDF" in view.status.text()
        names = [c.name() for c in view.curves.getPlotItem().listDataItems()]
        assert names == ["the model's vectors", "TF-IDF character n-grams", "chance"]
        assert len(view.points) == 2 and sum(len(pt.data) for pt in view.points) == len(s["texts"])
        view.show_sentence(0)
        assert s["texts"][0][:20] in view.picked.text() or s["texts"][0][:5] in view.picked.text()
        # the final map is the final vectors' own principal plane: an earlier one is turned onto it
        assert np.isfinite(s["coords"]).all()
    finally:
        w.close()
