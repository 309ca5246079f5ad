"""The Runs page's "Export model…" menu: every format offered, an untied run refused for keras-hub
at once, and a real export written on the model thread with its note shown."""

from dataclasses import replace

import pytest

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.store import RunStore
from tests.gui.conftest import wait_task

TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16)


def _run(store, corpus, name, **model):
    cfg = RunConfig(name=name, data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                    model=replace(TINY, **model), training=TrainConfig(max_steps=10))
    return store.create(cfg)


def _with_checkpoint(run, corpus):
    """An untrained checkpoint: what an export reads, without the training time."""
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.tokenizers import train_tokenizer

    tok = train_tokenizer("char", [corpus.read_text("utf-8")])
    tok.save(run.tokenizer_dir)
    model = build_model(replace(run.config.model, vocabulary_size=tok.vocabulary_size), seed=1)
    CheckpointManager(run.checkpoints_dir).save(model, None, {"step": 1}, best=True)


@pytest.fixture()
def page(qtbot, home):
    from desktop_llm.gui.pages.runs_page import RunsPage
    from desktop_llm.gui.session import Session

    p = RunsPage(Session(RunStore(home)))
    qtbot.addWidget(p)
    return p


def test_export_model_menu_offers_every_format_and_refuses_an_untied_run_at_once(page, home, shakespeare_small):
    from desktop_llm.core.export import FORMATS
    from desktop_llm.gui.model_export import export_model

    run = _run(page.session.store, shakespeare_small, "untied", tie_embeddings=False)
    page.refresh()
    assert not page.model_export_btn.isEnabled()  # nothing selected
    page.select([run.id])
    assert page.model_export_btn.isEnabled()
    assert [a.data() for a in page.model_export_btn.menu().actions()] == list(FORMATS)
    export_model(page, "keras-hub", dest=str(home / "out"))
    assert page.task is None  # refused before any work started
    assert page.message.text().startswith("Cannot export:") and "untied output layer" in page.message.text()
    assert not (home / "out").exists()


def test_export_model_writes_in_the_background_and_says_where(qtbot, page, home, shakespeare_small):
    from desktop_llm.gui.model_export import export_model

    run = _run(page.session.store, shakespeare_small, "tied")
    _with_checkpoint(run, shakespeare_small)
    page.refresh()
    page.select([run.id])
    dest = home / "exports" / "mine"
    export_model(page, "keras-hub", dest=str(dest))
    wait_task(qtbot, page, timeout=120_000)
    text = page.message.text()
    assert text.startswith(f"Exported keras-hub preset (GPT-2; generates) to {dest}"), text
    assert "Note:" not in text  # a char run carries its preprocessor: nothing it cannot do
    assert (dest / "model.weights.h5").exists() and (dest / "export.json").exists()
    assert (dest / "preprocessor.json").exists()
