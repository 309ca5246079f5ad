"""The families in the window (issue 11): the Train page's classifier options; the Generate
page's Classify (with its validation report), Similar sentences and Translate tabs, driven for real."""

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop_llm.gui.families.classifier import ClassifyPanel
from desktop_llm.gui.families.masked_lm import FillMaskPanel
from desktop_llm.gui.families.similar import SimilarPanel
from desktop_llm.gui.families.translator import TranslatePanel
from desktop_llm.resources import labelled_example
from desktop_llm.store import RunStore
from tests.core.test_robustness import _config
from tests.gui.conftest import open_window, train_tiny, wait_task


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A masked-LM run and a classifier trained from scratch on the bundled poem/prose/drama task."""
    from desktop_llm.core.training import train_run

    store = RunStore(tmp_path_factory.mktemp("workspace"))
    cfg = _config(labelled_example(), steps=60, eval_interval=30, batch_size=12)
    mlm = store.create(replace(cfg, name="encoder", family="masked_lm"))
    assert train_run(mlm, store=store)["status"] == "completed"
    cls = store.create(replace(cfg, name="genre", family="classifier",
                               training=replace(cfg.training, learning_rate=1e-3)))
    assert train_run(cls, store=store)["status"] == "completed"
    return store, mlm, cls


def test_classify_tab_and_validation_report(qtbot, trained):
    store, mlm, cls = trained
    with open_window(qtbot, store) as w:
        w.show_page("Generate")
        g = w.generate_page
        assert g.picker.run_id == cls.id
        panel = g.panel(ClassifyPanel)
        tab = g.tabs.indexOf(panel)
        assert g.tabs.currentIndex() == tab and g.tabs.isTabVisible(tab) and not g.tabs.isTabVisible(0)
        assert not g.tabs.isTabVisible(g.tabs.indexOf(g.panel(FillMaskPanel))) and not g.left_pane.isVisible()
        assert g.header.title.text() == "Classify"
        panel.text.setPlainText("ROMEO:\nBut, soft! what light through yonder window breaks?")
        qtbot.mouseClick(panel.classify_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert panel.result is not None, panel.status.text()
        assert panel.probs.rowCount() == 3
        assert sum(panel.result["probabilities"].values()) == pytest.approx(1, abs=1e-6)
        assert panel.status.text().startswith(panel.result["label"])

        lines = ["ROMEO: But, soft!", "床前明月光，疑是地上霜。", "", "It was the best of times."]
        panel.text.setPlainText("\n".join(lines))
        panel.per_line.setChecked(True)  # three typed lines are three texts, as `classify --file` reads them
        qtbot.mouseClick(panel.classify_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert [r["text"] for r in panel.results] == [t for t in lines if t]
        assert panel.probs.rowCount() == 3 and panel.probs.item(1, 2).text() == lines[1]
        assert [panel.probs.item(i, 0).text() for i in range(3)] == [r["label"] for r in panel.results]
        assert panel.status.text().startswith("3 lines classified")
        panel.per_line.setChecked(False)

        qtbot.mouseClick(panel.report_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        rep = panel.report
        assert rep is not None, panel.status.text()
        confusion = np.array(rep["confusion"])
        assert confusion.shape == (3, 3) and len(panel.confusion.counts) == 9
        assert [t.toPlainText() for t in panel.confusion.counts] == [str(v) for v in confusion.ravel()]
        assert panel.per_class.rowCount() == 3 and panel.per_class.item(1, 0).text() == "poem"
        assert panel.wrong.rowCount() == len(rep["misclassified"])
        assert "accuracy" in panel.figures.text() and "macro-F1" in panel.figures.text()
        nb = rep["baselines"]["naive Bayes"]["macro_f1"]  # beside the baselines, on the same texts
        assert f"naive Bayes: macro-F1 {nb:.3f}" in panel.figures.text() and rep["verdict"] in panel.figures.toolTip()
        assert ("does not beat" in panel.status.text()) != rep["beats"]

        import csv  # a held-out file: the validation texts, plus one training text (left out and counted)
        import json

        from desktop_llm.core.models.classifier.examples import read_examples

        val = set(json.loads((cls.data_dir / "val_texts.json").read_text("utf-8")))
        examples = read_examples([labelled_example()])
        test = cls.data_dir.parent / "held-out.csv"
        with test.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([("text", "label"), *((e.text, e.label) for e in examples if e.text in val),
                                     min(((e.text, e.label) for e in examples if e.text not in val), key=lambda x: len(x[0]))])
        panel.evaluate_file(str(test))
        wait_task(qtbot, panel)
        held = panel.report
        assert held["path"] == str(test) and held["repeats_left_out"] == 1
        assert (held["accuracy"], held["macro_f1"]) == pytest.approx((rep["accuracy"], rep["macro_f1"]))
        assert "texts of held-out.csv" in panel.figures.text() and "Left out: 1 text that repeats a training text." in panel.status.text()
        assert panel.file_btn.isEnabled()

        panel.text.setPlainText("   ")  # nothing to classify: one line, nothing lost
        qtbot.mouseClick(panel.classify_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert "Type a text" in panel.status.text() and panel.classify_btn.isEnabled()

        from desktop_llm.gui.pages.runs_page import COLUMNS

        rp = w.runs_page  # the Runs table says each run's family; a classifier has no text perplexity
        cells = {rp.table.item(r, 0).data(Qt.UserRole): [rp.table.item(r, c).text() for c in range(len(COLUMNS))]
                 for r in range(rp.table.rowCount())}
        assert cells[cls.id][COLUMNS.index("Family")] == "classifier" and cells[cls.id][COLUMNS.index("Perplexity")] == "–"
        assert cells[mlm.id][COLUMNS.index("Family")] == "masked_lm" and cells[mlm.id][COLUMNS.index("Perplexity")] != "–"

        g.picker.runs.setCurrentIndex(g.picker.runs.findData(mlm.id))  # a masked LM: fill mask instead
        assert g.tabs.currentIndex() == g.tabs.indexOf(g.panel(FillMaskPanel))
        assert not g.tabs.isTabVisible(g.tabs.indexOf(g.panel(ClassifyPanel)))

        w.show_page("Attention")  # an encoder's maps: bidirectional, [CLS] first for a classifier
        a = w.attention_page
        a.picker.runs.setCurrentIndex(a.picker.runs.findData(cls.id))
        assert not a.kind.isVisible() and "[CLS]" in a.explain.text()
        a.text.setPlainText("床前明月光")
        qtbot.mouseClick(a.go, Qt.LeftButton)
        wait_task(qtbot, a)
        assert a.maps is not None and a.maps.kind == "bidirectional", a.status.text()
        assert a.maps.tokens[0] == "[CLS]" and a.maps.tokens[-1] == "[SEP]"


def test_train_page_fine_tunes_a_classifier_from_a_chosen_run(qtbot, trained, tmp_path):
    store, mlm, _ = trained
    with open_window(qtbot, store) as w:
        w.show_page("Train")
        t = w.train_page
        assert not t.options["classifier"].isVisible()
        t.family.setCurrentIndex(t.family.findData("classifier"))
        assert t.options["classifier"].isVisible() and t.steps.value() == 300
        bases = [t.options["classifier"].base.itemData(i) for i in range(t.options["classifier"].base.count())]
        assert bases[0] == "" and str(mlm.folder) in bases  # a classifier is not offered as a base
        assert len(bases) == 2
        t.options["classifier"].base.setCurrentIndex(bases.index(str(mlm.folder)))
        assert t.lr.value() == 3e-4  # a fine-tune's gentler rate
        t.options["classifier"].freeze.setValue(20)
        assert t.options["classifier"].pooling.currentData() == "mean"  # the default: the mean of the tokens
        t.options["classifier"].pooling.setCurrentIndex(t.options["classifier"].pooling.findData("cls"))
        w.data_page.add_paths([str(labelled_example())])
        wait_task(qtbot, w.data_page)
        cfg = t.run_config()
        assert cfg.family == "classifier" and cfg.base_run == str(mlm.folder.resolve())
        assert cfg.model.hidden_dim == mlm.config.model.hidden_dim and cfg.training.freeze_steps == 20
        assert cfg.tokenizer == mlm.config.tokenizer and cfg.pooling == "cls"

        (tmp_path / "one.txt").write_text("one class only\n\nstill one\n")  # bad labels: one line
        t.session.paths = [str(tmp_path / "one.txt")]
        before = len(store.list())
        t.start()
        assert "one plain text file" in t.status.text() and len(store.list()) == before


def test_similar_sentences_tab_searches_projects_and_exports(qtbot, trained):
    store, mlm, cls = trained
    with open_window(qtbot, store) as w:
        w.show_page("Generate")
        g = w.generate_page
        g.picker.runs.setCurrentIndex(g.picker.runs.findData(mlm.id))
        fill, similar, classify = (g.tabs.indexOf(g.panel(c)) for c in (FillMaskPanel, SimilarPanel, ClassifyPanel))
        assert g.tabs.isTabVisible(fill) and g.tabs.isTabVisible(similar) and not g.tabs.isTabVisible(0)
        g.tabs.setCurrentIndex(similar)
        panel = g.panel(SimilarPanel)
        panel.query.setText("举头望明月，低头思故乡。")
        panel.top_k.setValue(5)
        qtbot.mouseClick(panel.search_btn, Qt.LeftButton)
        wait_task(qtbot, panel, timeout=180_000)
        assert panel.hits is not None, panel.status.text()
        assert panel.table.rowCount() == 5
        scores = [h["score"] for h in panel.hits]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1.0001 for s in scores)
        drawn = list(panel.scatter_plot.getPlotItem().listDataItems())
        assert sum(len(i.xData) for i in drawn) == len(panel.index.items)  # every sentence, by source
        assert {i.name() for i in drawn} == {"poem.txt", "prose.txt", "drama.txt"}
        qtbot.mouseClick(panel.export_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        vectors, meta = panel.exported
        assert vectors.exists() and len(meta.read_text("utf-8").splitlines()) == len(panel.index.items) + 1
        assert "projector" in panel.status.text()
        g.picker.runs.setCurrentIndex(g.picker.runs.findData(cls.id))  # a classifier: Classify and Similar
        fill, similar, classify = (g.tabs.indexOf(g.panel(c)) for c in (FillMaskPanel, SimilarPanel, ClassifyPanel))
        assert g.tabs.isTabVisible(classify) and g.tabs.isTabVisible(similar) and not g.tabs.isTabVisible(fill)
        assert classify < similar and g.tabs.currentIndex() == classify  # its own tab first


def test_translate_tab_streams_a_translation(qtbot, tmp_path):
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
    from desktop_llm.core.training import train_run
    from desktop_llm.resources import parallel_example

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(parallel_example().read_text("utf-8").splitlines(keepends=True)[:300]), "utf-8")
    store = RunStore(tmp_path / "ws")
    run = store.create(RunConfig(name="en-zh", family="translator", data=DataConfig(paths=(str(pairs),)),
                                 tokenizer=TokenizerConfig(kind="char", separate=True),  # one per side
                                 model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                                                   sequence_length=16),
                                 training=TrainConfig(max_steps=20, batch_size=16, eval_interval=20, eval_batches=1,
                                                      log_interval=10, warmup_steps=2, sample_tokens=0)))
    assert train_run(run, store=store)["status"] == "completed"
    with open_window(qtbot, store) as w:
        w.show_page("Generate")
        g = w.generate_page
        panel = g.panel(TranslatePanel)
        assert g.tabs.currentIndex() == g.tabs.indexOf(panel) and g.header.title.text() == "Translate"
        assert not g.tabs.isTabVisible(0)
        assert not g.tabs.isTabVisible(g.tabs.indexOf(g.panel(SimilarPanel)))  # no embeddings from an encoder-decoder
        panel.source.setPlainText("I quit.")
        qtbot.mouseClick(panel.translate_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert panel.result is not None, panel.status.text()
        assert panel.output.toPlainText() == panel.result
        panel.source.setPlainText("  ")
        qtbot.mouseClick(panel.translate_btn, Qt.LeftButton)
        wait_task(qtbot, panel)
        assert "Type a sentence" in panel.status.text() and panel.translate_btn.isEnabled()
        w.show_page("Train")
        t = w.train_page
        assert not t.options["translator"].separate.isVisible()
        t.family.setCurrentIndex(t.family.findData("translator"))
        assert t.run_config().tokenizer.path is None  # learns both sides of the pairs in the run
        assert t.options["translator"].separate.isVisible() and not t.run_config().tokenizer.separate
        t.options["translator"].separate.setChecked(True)
        assert t.run_config().tokenizer.separate

        w.show_page("Attention")  # cross-attention: the translation's tokens over the source's
        a = w.attention_page
        assert a.kind.isVisible() and a.kind.currentData() == "cross"
        a.text.setPlainText("I quit.")
        qtbot.mouseClick(a.go, Qt.LeftButton)
        wait_task(qtbot, a)
        assert a.maps is not None and a.maps.kind == "cross", a.status.text()
        assert a.single.columns == list("I quit.") and a.single.tokens[0] == "[BOS]"
        assert a.single.weights.shape == (len(a.maps.tokens), 7) and "translation:" in a.status.text()


def test_evaluate_page_shows_a_familys_own_figures(qtbot, trained):
    store, mlm, cls = trained
    with open_window(qtbot, store) as w:
        w.show_page("Evaluate")
        e = w.evaluate_page
        e.picker.runs.setCurrentIndex(e.picker.runs.findData(cls.id))
        note = e.family_note.text()
        assert e.family_note.isVisible() and not e.go.isEnabled()
        assert "macro-F1" in note and "accuracy" in note and "Classify tab" in note
        e.picker.runs.setCurrentIndex(e.picker.runs.findData(mlm.id))
        assert "masked-token accuracy" in e.family_note.text()


def test_runs_page_compares_runs_of_one_family(qtbot, trained):
    store, mlm, cls = trained
    with open_window(qtbot, store) as w:
        w.show_page("Runs")
        r = w.runs_page
        r.select([mlm.id, cls.id])
        r.show_selected()
        assert len(r.plots.series) == 1 and "left out" in r.message.text()
        r.select([cls.id])
        r.show_selected()
        assert len(r.plots.series) == 1 and r.message.text() == ""


def test_every_family_has_its_window_file_and_the_pages_are_built_from_the_registry(qtbot, tmp_path):
    """gui/families/<family>.py for each family of the registry: its Train-page choice, its Generate
    tabs (FamilyPanel subclasses with a main action) and its texts; the Train page's menu and the
    Generate page's tabs come from them, so no page names a family."""
    from desktop_llm.core.models import families
    from desktop_llm.gui.families import family_ui
    from desktop_llm.gui.families.panel import FamilyPanel

    for family in families():
        ui = family_ui(family.name)
        assert ui.CHOICE and len(ui.HEADER) == 2 and ui.ATTENTION_NOTE, family.name
        assert family.writes_text or ui.EVALUATE_ELSEWHERE, family.name
        assert family.writes_text or ui.TABS, family.name  # a family that does not write shows something
        for cls in ui.TABS:
            assert issubclass(cls, FamilyPanel) and cls.TITLE and callable(cls.primary), cls
    with open_window(qtbot, RunStore(tmp_path / "ws")) as w:
        t, g = w.train_page, w.generate_page
        assert [t.family.itemData(i) for i in range(t.family.count())] == [f.name for f in families()]
        titles = [g.tabs.tabText(i) for i in range(g.tabs.count())]
        panels = {cls for f in families() for cls in family_ui(f.name).TABS}
        assert sorted(titles[2:]) == sorted(cls.TITLE for cls in panels)  # each panel once


def test_a_run_started_in_the_window_is_named_after_its_corpus(qtbot, tmp_path):
    """Every run trained in the window used to be named "run" (so `generate run` soon meant several);
    it is named as on the command line: the corpus' first file."""
    from desktop_llm.cli import build_parser
    from desktop_llm.cli.train import run_config
    from desktop_llm.resources import sample_corpus

    corpus = str(sample_corpus("tinyshakespeare.txt"))
    with open_window(qtbot, RunStore(tmp_path / "ws")) as w:
        w.session.set_corpus([corpus], None, 0.1)
        assert w.train_page.run_config().name == "tinyshakespeare"
        w.train_page.name.setText("mine")
        assert w.train_page.run_config().name == "mine"
    assert run_config(build_parser().parse_args(["train", corpus])).name == "tinyshakespeare"


def test_chat_tab_applies_a_chat_runs_template_with_a_system_prompt_and_regenerates(qtbot, tmp_path):
    """Issue 29: a chat run's Chat tab offers a system prompt, writes the conversation with the
    template, says how the reply ended and how much of the conversation still fits, and
    regenerates the last reply in place."""
    from desktop_llm.resources import chat_example

    store, run = train_tiny(tmp_path, "chat", chat_example(), 200, 32, 20)
    with open_window(qtbot, store) as w:
        w.show_page("Generate")
        g = w.generate_page
        assert g.picker.run_id == run.id and g.tabs.isTabVisible(1) and g.header.title.text() == "Chat"
        g.tabs.setCurrentIndex(1)
        assert g.system_input.isVisible() and "fine-tuned on conversations" in g.chat_view.placeholderText()
        assert not g.regenerate_btn.isEnabled()
        g.system_input.setText("Answer briefly.")
        g.max_tokens.setValue(12)
        g.chat_input.setText("Translate into Chinese: Hi.")
        qtbot.keyClick(g.chat_input, Qt.Key_Return)
        wait_task(qtbot, g)
        assert g.chat.templated and g.chat.system == "Answer briefly." and len(g.chat.history) == 2, g.status.text()
        assert g.status.text().startswith("1 turn in the conversation")
        assert ("cut at the token limit" in g.status.text()) == (g.chat.stopped_by == "length")
        for _ in range(3):  # a 32-token context holds about one exchange: the oldest are left out, and said
            g.chat_input.setText("Translate into Chinese: It is a long sentence.")
            qtbot.keyClick(g.chat_input, Qt.Key_Return)
            wait_task(qtbot, g)
        assert g.chat.dropped > 0 and "oldest messages no longer fit" in g.status.text()
        assert g.regenerate_btn.isEnabled()
        g.seed.setValue(3)
        qtbot.mouseClick(g.regenerate_btn, Qt.LeftButton)
        wait_task(qtbot, g)
        assert len(g.chat.history) == 8 and g.chat.history[-1][0] == "assistant"
        assert g.chat_view.toPlainText().count("Model") == 4  # the old reply was replaced, not added


def test_train_page_starts_a_gpt_or_a_chat_run_from_a_trained_gpt_run(qtbot, tmp_path):
    """Issue 29: "Start from" on the Train page, for the GPT (continued pretraining) and the chat
    family (fine-tuning on conversations); a chat run from scratch learns its tokenizer in the run."""
    from desktop_llm.core.training import train_run
    from desktop_llm.resources import sample_corpus

    store = RunStore(tmp_path / "ws")
    base = store.create(replace(_config(sample_corpus(), steps=10, eval_interval=10), name="base"))
    assert train_run(base, store=store)["status"] == "completed"
    with open_window(qtbot, store) as w:
        w.show_page("Train")
        t = w.train_page
        for family in ("gpt", "chat"):
            t.family.setCurrentIndex(t.family.findData(family))
            options = t.options[family]
            assert options.isVisible() and options.base.count() == 3  # scratch, the trained GPT run, a preset…
            options.base.setCurrentIndex(1)
            cfg = t.run_config()
            assert cfg.family == family and cfg.base_run == str(base.folder.resolve())
            assert cfg.model == base.config.model and cfg.tokenizer == base.config.tokenizer
            assert t.lr.value() == pytest.approx(3e-4)  # gentler than from scratch
            assert options.lora.isEnabled() and cfg.training.lora_rank == 0
            options.lora.setValue(8)
            assert t.run_config().training.lora_rank == 8
            options.lora.setValue(0)
            options.base.setCurrentIndex(0)
            assert not options.lora.isEnabled()
            assert not t.run_config().base_run and t.lr.value() == pytest.approx(1e-3)
        cfg = t.run_config()
        assert cfg.family == "chat" and cfg.tokenizer.path is None  # learned from the conversations, in the run
        t.family.setCurrentIndex(t.family.findData("masked_lm"))  # continues a masked-LM run only: none here
        assert t.options["masked_lm"].isVisible() and t.options["masked_lm"].base.count() == 1


def test_start_from_offers_a_keras_hub_preset_folder(qtbot, tmp_path, monkeypatch):
    """The GPT's "Start from" takes a keras-hub preset folder chosen on disk; a folder that is no
    preset is refused in the status line and the choice goes back to scratch."""
    from PySide6.QtWidgets import QFileDialog

    from tests.core.test_continue import _gpt2_preset

    preset = tmp_path / "gpt2-tiny"
    _gpt2_preset(preset)
    with open_window(qtbot, RunStore(tmp_path / "ws")) as w:
        w.show_page("Train")
        t = w.train_page
        t.family.setCurrentIndex(t.family.findData("gpt"))
        options = t.options["gpt"]
        picked = iter([str(tmp_path), str(preset)])  # first a folder that is no preset, then the preset
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: next(picked))
        options.base.setCurrentIndex(options.base.count() - 1)  # "a keras-hub preset folder…"
        assert options.base.currentIndex() == 0 and "is not a keras-hub preset folder" in t.status.text()
        options.base.setCurrentIndex(options.base.count() - 1)
        assert options.base_folder() == str(preset) and options.base.currentText() == f"preset: {preset}"
        cfg = t.run_config()
        assert cfg.base_family == "keras-hub preset" and cfg.model.hidden_dim == 32 and cfg.tokenizer.kind == "keras-hub"
        assert t.lr.value() == pytest.approx(3e-4)
