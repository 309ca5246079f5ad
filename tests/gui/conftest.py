"""GUI tests drive the real main window offscreen; each gets its own workspace folder."""

import pytest

from desktop_llm.store import RunStore


@pytest.fixture()
def window(qtbot, home):
    from desktop_llm.gui.main_window import MainWindow

    w = MainWindow(RunStore(home), restore=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.train_page.shutdown()


def wait_task(qtbot, page, timeout=60_000):
    """Wait until a page's background task (scan, tokenizer, attention…) has ended and its result
    or error has been handled on the UI thread (not a sleep that races the queued signal)."""
    qtbot.waitUntil(lambda: page.task is not None and page.task.settled, timeout=timeout)


def set_tiny_model(w):
    m = w.model_page
    m.layers.setValue(2)
    m.heads.setValue(2)
    m.width.setValue(32)
    m.ffn.setValue(64)
    m.context.setValue(32)
    m.dropout.setValue(0.0)
