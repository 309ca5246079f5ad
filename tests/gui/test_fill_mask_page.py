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
