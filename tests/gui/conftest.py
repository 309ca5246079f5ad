"""GUI tests drive the real main window offscreen; each gets its own workspace folder."""

import contextlib

import pytest

from desktop_llm.store import RunStore


@pytest.fixture(scope="session", autouse=True)
def _garbage_collected_on_the_ui_thread(qapp):
    """As in the application (desktop_llm.app): cycles holding Qt objects are freed by the UI
    thread only, never by a worker that happens to allocate (a deadlock, see app.py)."""
    import gc

    from desktop_llm.app import collect_garbage_on_the_ui_thread

    collector = collect_garbage_on_the_ui_thread()
    yield
    collector.timer.stop()
    gc.enable()


@pytest.fixture(autouse=True)
def _collect_after_each_test():
    """Each test's dead windows freed at its end, on the UI thread."""
    import gc

    yield
    gc.collect()


@contextlib.contextmanager
def open_window(qtbot, store):
    """The main window on `store`, shown; its trainer shut down however the test ends."""
    from desktop_llm.gui.main_window import MainWindow

    w = MainWindow(store, restore=False)
    qtbot.addWidget(w)
    w.show()
    try:
        yield w
    finally:
        w.train_page.shutdown()


@pytest.fixture()
def window(qtbot, home):
    with open_window(qtbot, RunStore(home)) as w:
        yield w


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


def train_tiny(folder, family: str, example, lines: int, sequence_length: int, eval_interval: int):
    """(store, run): a tiny run of `family` (1 layer, width 32, 20 steps, character tokens) on the
    first `lines` lines of a bundled example file, trained in this process."""
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
    from desktop_llm.core.training import train_run

    data = folder / f"{family}{example.suffix}"
    data.write_text("".join(example.read_text("utf-8").splitlines(keepends=True)[:lines]), "utf-8")
    store = RunStore(folder / "ws")
    run = store.create(RunConfig(name=family, family=family, data=DataConfig(paths=(str(data),)),
                                 tokenizer=TokenizerConfig(kind="char"),
                                 model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                                                   sequence_length=sequence_length),
                                 training=TrainConfig(max_steps=20, batch_size=8, eval_interval=eval_interval,
                                                      eval_batches=1, log_interval=10, warmup_steps=2, sample_tokens=0)))
    assert train_run(run, store=store)["status"] == "completed"
    return store, run
