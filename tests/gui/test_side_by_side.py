"""Side by side on the Generate page (issue 28): one prompt and seed through a run at several
points of its training, streamed in columns."""

import pytest

from tests.gui.conftest import open_window, wait_task


@pytest.fixture()
def store(probed):
    return probed[0]


def test_columns_show_one_run_at_several_steps_with_one_seed(qtbot, store):
    from desktop_llm.core.generation import Generator, SamplingConfig
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.gui.families.side_by_side import SideBySidePanel

    run = store.get(store.list()[0]["id"])
    with open_window(qtbot, store) as w:
        w.show_page("Generate")
        page = w.generate_page
        panel = page.panel(SideBySidePanel)
        page.tabs.setCurrentWidget(panel)
        assert page.tabs.isTabVisible(page.tabs.indexOf(panel)) and not page.left_pane.isVisible()
        first = panel.columns[0]
        points = [first.which.itemData(i) for i in range(first.which.count())]
        assert points == ["best", "latest", "20", "40", "60"]  # its checkpoints, then its snapshots
        assert [c.which.currentData() for c in panel.columns[:3]] == ["20", "40", "best"]  # how it learned
        assert [c.isVisibleTo(panel) for c in panel.columns] == [True, True, True, False]
        panel.count.setValue(2)
        panel.prompt.setText("ROMEO:")
        panel.max_tokens.setValue(12)
        panel.seed.setValue(7)
        panel.primary()
        wait_task(qtbot, panel)
        assert "Seed 7 in every column; the models at steps 20, 40" in panel.status.text()
        model, tok, _ = load_for_inference(run, "20")
        alone = Generator(model, tok).generate("ROMEO:", SamplingConfig(max_new_tokens=12, temperature=0.8, seed=7))
        assert first.output.toPlainText() == "ROMEO:" + alone.text  # the prompt, then what step 20 wrote
        assert panel.columns[1].output.toPlainText().startswith("ROMEO:")
        page.tabs.setCurrentIndex(0)
        assert page.left_pane.isVisible()  # the prompt tab's sampling box comes back
