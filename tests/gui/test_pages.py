"""Pages one at a time on real widgets: bad input gets a message, state survives a restart, the
engine stays free of Qt, and the window opens before TensorFlow is imported."""

import html
import json
import re
import subprocess
import sys
import textwrap

from PySide6.QtCore import Qt

from desktop_llm.core.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, preset
from desktop_llm.store import RunStore
from tests.conftest import TANGSHI
from tests.gui.conftest import wait_task


def _run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_engine_and_store_import_no_qt():
    out = _run_python("""
        import sys
        import desktop_llm.cli, desktop_llm.store
        from desktop_llm.core import (atomic, checkpoints, config, corpus, data, evaluation, events, generation,
                                      inspection, loading, tokenizers, training)
        from desktop_llm.core.models.backbones import gpt
        from desktop_llm.core.models import families
        families()  # every family, and its commands
        desktop_llm.cli.build_parser()
        from desktop_llm.core.inference import embeddings
        print(sorted(m for m in sys.modules if m.startswith(("PySide6", "pyqtgraph", "shiboken"))))
    """)
    assert out.strip() == "[]"


def test_window_shows_before_tensorflow_is_imported(tmp_path):
    out = _run_python(f"""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from desktop_llm.gui.main_window import MainWindow
        from desktop_llm.store import RunStore
        w = MainWindow(RunStore({str(tmp_path)!r}))
        w.show()
        app.processEvents()
        print("tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    assert out.split() == ["False", "False"]


def test_data_page_reports_bad_files_and_loads_the_rest(window, qtbot, tmp_path):
    folder = tmp_path / "mixed corpus é"
    folder.mkdir()
    (folder / "good.txt").write_text("To be, or not to be: that is the question.\n" * 50, encoding="utf-8")
    (folder / "chinese-gb18030.txt").write_bytes("床前明月光，疑是地上霜。举头望明月，低头思故乡。\n".encode("gb18030") * 20)
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    (folder / "empty.txt").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    window.data_page.add_paths([str(folder)])
    wait_task(qtbot, window.data_page)
    m = window.data_page.table.model()
    rows = {m.index(r, 0).data(): (m.index(r, 2).data(), m.index(r, 3).data(), m.index(r, 4).data())
            for r in range(m.rowCount())}
    assert rows["good.txt"][1] == "✓ ok"
    assert rows["chinese-gb18030.txt"][0] == "gb18030" and rows["chinese-gb18030.txt"][1] == "✓ ok"
    assert rows["image.png"][1] == "✗ skipped" and "PNG" in rows["image.png"][2]
    assert rows["empty.txt"][1] == "○ empty"
    assert window.data_page.stat_labels["documents"].text() == "2"
    assert "2 usable sources, 2 skipped" in window.data_page.message.text()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written to the corpus


def test_data_page_shows_a_labelled_files_classes_and_a_pair_files_pairs(window, qtbot, tmp_path):
    """A labelled CSV read "Lines 0", a character split of "540 / 0", and no classes; after
    Clear, the old preview stayed."""
    dp = window.data_page
    csv = tmp_path / "reviews.csv"
    rows = [("great film", "pos")] * 12 + [("dull and long", "neg")] * 6 + [("so-so", "mixed")] * 3
    csv.write_text("text,label\n" + "".join(f"{t} {i},{lab}\n" for i, (t, lab) in enumerate(rows)), "utf-8")
    dp.add_paths([str(csv)])
    wait_task(qtbot, dp)
    text = dp.readings.text()
    assert "21 labelled texts in 3 classes (pos 12 · neg 6 · mixed 3)" in text, text
    assert "train / validation 18 / 3 texts" in text  # stratified: one of each class held out
    assert "sentence pairs" not in text
    assert dp.stat_labels["lines"].text() == "one per text"
    assert "great film" in dp.preview.toPlainText()
    dp.clear()  # no files: nothing to scan, all is reset at once
    assert dp.preview.toPlainText() == "" and dp.readings.text() == ""
    assert dp.stat_labels["documents"].text() == "–"
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{n} apples\t{n} 个苹果\n" for n in range(30)), "utf-8")
    dp.add_paths([str(tsv)])
    wait_task(qtbot, dp)
    assert "30 sentence pairs, such as “0 apples” → “0 个苹果”" in dp.readings.text()
    # read as conversations: the reply, in colour, is what a chat model learns to write
    assert "30 conversations" in dp.readings.text() and "what the model learns to write" in dp.readings.text()
    assert "font-weight:600'>0 个苹果&lt;|end|&gt;</span>" in dp.readings.text()


def test_the_data_page_reads_labelled_files_with_the_train_pages_label_and_group_columns(window, qtbot, tmp_path):
    """The Data page read a CSV's classes by its own guess of the label column and split it text by
    text, whatever the Train page's Label column and Keep together said: a user saw classes and a
    split the run would not use."""
    dp, tp = window.data_page, window.train_page
    tp.family.setCurrentIndex(tp.family.findData("classifier"))
    options = tp.options["classifier"]
    csv = tmp_path / "shelf.csv"
    rows = [(f"line {i} of book {i // 4}", "poem" if i < 24 else "prose", f"b{i // 4}") for i in range(40)]
    csv.write_text("text,kind,book\n" + "".join(f"{t},{k},{b}\n" for t, k, b in rows), "utf-8")
    dp.add_paths([str(csv)])
    wait_task(qtbot, dp)
    assert "labelled texts" not in dp.readings.text()  # no column named label, class, category...: plain text

    options.label_column.setText("kind")
    options.label_column.editingFinished.emit()
    wait_task(qtbot, dp)
    text = dp.readings.text()
    assert "40 labelled texts in 2 classes (poem 24 · prose 16)" in text, text
    assert "held out whole" not in text

    options.group_column.setText("book")
    options.group_column.editingFinished.emit()
    wait_task(qtbot, dp)
    text = html.unescape(dp.readings.text())
    held = re.search(r"train / validation (\d+) / (\d+) texts, (\d+) of 10 'book' groups held out whole", text)
    assert held, text
    assert int(held[1]) + int(held[2]) == 40 and int(held[2]) == 4 * int(held[3])  # whole books of 4 lines

    options.group_column.setText("shelf")  # a column the file lacks: said on the page, not a blank
    options.group_column.editingFinished.emit()
    wait_task(qtbot, dp)
    assert "no group column 'shelf' (columns: text, kind, book)" in html.unescape(dp.readings.text())
    assert tp.run_config().data.group_column == "shelf"  # the same column the run would use


def test_training_needs_a_tokenizer_and_a_valid_model(window, qtbot, shakespeare_small):
    window.data_page.add_paths([str(shakespeare_small)])
    wait_task(qtbot, window.data_page)
    t = window.train_page
    qtbot.mouseClick(t.start_btn, Qt.LeftButton)
    assert "tokenizer" in t.status.text().lower()
    assert t.status.property("role") == "error"
    assert window.session.store.list() == []  # no run was created
    assert not t.training


def test_chinese_corpus_sentencepiece_tokens_are_shown(window, qtbot):
    window.data_page.add_paths([str(TANGSHI)])
    wait_task(qtbot, window.data_page)
    tp = window.tokenizer_page
    # Left at its default size, BPE grows to hold the corpus's characters (as the CLI does) ...
    tp.kind.setCurrentIndex(tp.kind.findData("bpe"))
    assert tp.vocab_is_default and tp.vocab.value() == 2000
    tp.train()
    wait_task(qtbot, tp, timeout=120_000)
    tok = window.session.tokenizer
    assert tok is not None and tok.kind == "bpe" and tok.vocabulary_size > 2000, tp.status.text()
    assert tp.vocab.value() == tok.vocabulary_size and tp.vocab_is_default
    # ... and a size the user sets is kept: too small, it is refused with the size that fits.
    tp.vocab.setValue(2000)
    tp.train()
    wait_task(qtbot, tp, timeout=120_000)
    assert tp.status.property("role") == "error" and "Use at least" in tp.status.text(), tp.status.text()
    tp.kind.setCurrentIndex(tp.kind.findData("sentencepiece"))
    tp.vocab.setValue(3000)
    tp.train()
    wait_task(qtbot, tp, timeout=120_000)
    tok = window.session.tokenizer
    assert tok is not None and tok.kind == "sentencepiece", tp.status.text()
    text = "床前明月光，疑是地上霜。"
    tp.input.setPlainText(text)
    assert "".join(tok.token_text(i) for i in tok.encode(text)) == text
    assert len(tp.tokens_view.tips) == len(tok.encode(text))
    assert "characters per token" in tp.ratio.text()
    assert window.session.model_config.vocabulary_size == tok.vocabulary_size


def test_window_state_and_workspace_are_remembered(qtbot, home, shakespeare_small):
    from desktop_llm.gui.main_window import MainWindow

    store = RunStore(home)
    w = MainWindow(store)
    qtbot.addWidget(w)
    w.data_page.add_paths([str(shakespeare_small)])
    wait_task(qtbot, w.data_page)
    w.tokenizer_page.train()
    wait_task(qtbot, w.tokenizer_page)
    w.show_page("Model")
    w.close()

    w2 = MainWindow(RunStore(home))
    qtbot.addWidget(w2)
    assert w2.current_page == "Model"
    assert w2.session.paths == [str(shakespeare_small)]
    wait_task(qtbot, w2.tokenizer_page)
    assert w2.session.tokenizer is not None
    assert w2.session.tokenizer.vocabulary_size == w.session.tokenizer.vocabulary_size


def test_the_first_corpus_opens_once_and_never_replaces_the_users(qtbot, home, shakespeare_small, tmp_path):
    """`make run` opened the sample over the user's corpus at every launch."""
    from desktop_llm.app import open_window

    mine = tmp_path / "mine.txt"
    mine.write_text("My own corpus, not the sample.\n" * 40, encoding="utf-8")

    def launch():
        w = open_window(RunStore(home), first_corpus=[str(shakespeare_small)])
        qtbot.addWidget(w)
        if w.data_page.task is not None:
            wait_task(qtbot, w.data_page)
        return w

    w = launch()  # first launch: the sample
    assert w.session.paths == [str(shakespeare_small)]
    w.data_page.clear()
    w.data_page.add_paths([str(mine)])
    wait_task(qtbot, w.data_page)
    w.close()
    w = launch()  # then what the user chose
    assert w.session.paths == [str(mine)]
    w.data_page.clear()
    w.close()
    w = launch()  # even nothing
    assert w.session.paths == []
    w.close()


def test_runs_page_overlays_several_runs(window, home):
    store = window.session.store
    ids = []
    for n, final, lr in (("first", 2.0, 1e-3), ("second", 1.5, 3e-4)):
        cfg = RunConfig(name=n, data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char"),
                        model=preset("tiny"), training=TrainConfig(max_steps=20, learning_rate=lr))
        run = store.create(cfg)
        lines = [{"type": "step", "step": s, "loss": 3.0 - s * (3.0 - final) / 20, "lr": 1e-3,
                  "tokens_per_sec": 1000.0} for s in (10, 20)]
        lines.append({"type": "eval", "step": 20, "val_loss": final, "val_ppl": 2.718 ** final})
        run.metrics_path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        run.write_status(status="completed", step=20, best_val_loss=final, device="CPU (2 cores)",
                         policy="float32", tokens_per_sec=1000.0, parameters=812_345, vocabulary_size=65)
        store.sync(run)
        ids.append(run.id)
    window.session.runs_changed.emit()
    rp = window.runs_page
    assert rp.table.rowCount() == 2
    rp.select(ids)
    assert set(rp.plots.series) == set(ids)
    assert all(rp.plots.point_count(i) == 2 for i in ids)
    assert not rp.resume_btn.isEnabled()  # completed runs are not resumed
    from desktop_llm.gui.pages.runs_page import COLUMNS

    perplexities = {rp.table.item(r, 0).text(): rp.table.item(r, COLUMNS.index("Perplexity")).text() for r in range(2)}
    assert perplexities == {"first": "7.39", "second": "4.48"}
    assert {rp.table.item(r, COLUMNS.index("Family")).text() for r in range(2)} == {"gpt"}
    # two runs: the settings that differ, side by side (issue 28's config diff), and nothing else
    diff = rp.details.text()
    assert rp.details_area.isVisibleTo(rp) and "settings that differ" in diff
    assert "training.learning_rate" in diff and "0.001" in diff and "0.0003" in diff
    assert "model.num_layers" not in diff and "first" in diff and "second" in diff
    rp.select(ids[:1])
    shown = rp.details.text()  # what `runs show` says, less what the table shows
    for fact in ("CPU (2 cores), float32, 1,000 tokens/s", "char, 65 tokens", "0.81 M parameters", "x.txt"):
        assert fact in shown, shown


def test_dark_and_light_themes(qapp, monkeypatch):
    from desktop_llm.gui.plots import MetricsPlots
    from desktop_llm.gui.theme import apply_theme, is_dark

    def plot_lightness(plots):
        return plots.loss.backgroundBrush().color().lightness(), \
            plots.loss.getPlotItem().getAxis("left").textPen().color().lightness()

    try:
        monkeypatch.setenv("DESKTOP_LLM_THEME", "dark")
        apply_theme(qapp)
        assert is_dark(qapp)
        assert qapp.palette().color(qapp.palette().ColorRole.Window).lightness() < 80
        pal = qapp.palette()
        disabled = pal.color(pal.ColorGroup.Disabled, pal.ColorRole.ButtonText).lightness()
        assert pal.color(pal.ColorGroup.Active, pal.ColorRole.ButtonText).lightness() - disabled > 60
        plots = MetricsPlots()  # made while dark, then the system turns light: the plot follows
        background, text = plot_lightness(plots)
        assert background < 80 and text > 150
        monkeypatch.setenv("DESKTOP_LLM_THEME", "light")
        apply_theme(qapp)
        assert not is_dark(qapp)
        assert qapp.palette().color(qapp.palette().ColorRole.Window).lightness() > 180
        background, text = plot_lightness(plots)
        assert background > 240 and text < 100
        plots.deleteLater()
    finally:
        monkeypatch.delenv("DESKTOP_LLM_THEME")
        apply_theme(qapp)


def test_model_page_predicts_step_time_from_this_machines_runs(window):
    from desktop_llm.store.speed import machine_speed

    mp = window.model_page
    assert mp.figures["time"].text() == "measured after your first run"
    store = window.session.store
    cfg = RunConfig(name="measured", data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char", vocabulary_size=65),
                    model=preset("small"), training=TrainConfig(max_steps=100, batch_size=12))
    run = store.create(cfg)
    run.metrics_path.write_text("".join(json.dumps({"type": "step", "step": s, "loss": 2.0, "lr": 1e-3,
                                                    "tokens_per_sec": 10_000.0}) + "\n" for s in range(10, 110, 10)))
    run.write_status(status="completed", step=100)
    store.sync(run)
    window.session.runs_changed.emit()
    speed = machine_speed(store)
    assert speed is not None and speed.runs == 1
    # the same model at the same batch: 12 x 64 tokens at 10k tokens/s is 76.8 ms
    assert abs(speed.ms_per_step(preset("small").__class__(**{**preset("small").__dict__, "vocabulary_size": 65}), 12)
               - 76.8) < 0.5
    assert "ms" in mp.figures["time"].text() and "GFLOP/s measured here" in mp.figures["time"].text()


def test_drop_files_on_the_data_page_and_cancel_a_tokenizer(window, qtbot, shakespeare_small):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    page = window.data_page
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(shakespeare_small))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    page.dropEvent(event)
    wait_task(qtbot, page)
    assert window.session.paths == [str(shakespeare_small)]

    window.show_page("Tokenizer")
    tp = window.tokenizer_page
    tp.kind.setCurrentIndex(tp.kind.findData("wordpiece"))
    tp.train()
    assert tp.cancel_btn.isVisible()
    qtbot.mouseClick(tp.cancel_btn, Qt.LeftButton)
    assert tp.train_btn.isEnabled() and "Cancelled" in tp.status.text()
    qtbot.waitUntil(lambda: tp.task.settled, timeout=60_000)
    assert window.session.tokenizer is None  # nothing from the cancelled training was kept


def test_a_failing_trainer_reports_its_message_in_the_window(window, qtbot, shakespeare_small, tmp_path):
    from dataclasses import replace

    copy = tmp_path / "corpus.txt"
    copy.write_text(shakespeare_small.read_text("utf-8")[:50_000], encoding="utf-8")
    window.data_page.add_paths([str(copy)])
    wait_task(qtbot, window.data_page)
    window.tokenizer_page.train()
    wait_task(qtbot, window.tokenizer_page)
    t = window.train_page
    cfg = t.run_config()
    copy.unlink()  # the corpus disappears between setting up the run and its start
    run = window.session.store.create(replace(cfg, data=replace(cfg.data, paths=(str(copy),))))
    t.launch(run.id, fresh=True)
    qtbot.waitUntil(lambda: not t.training, timeout=120_000)
    assert t.status.property("role") == "error"
    assert "not found" in t.status.text(), t.status.text()
    assert run.status()["status"] == "failed"
    assert t.start_btn.isEnabled()  # the window is usable: another run can start


def test_data_page_lists_a_folder_of_many_files(window, qtbot, tmp_path):
    """20,000 files become 20,000 rows of a model (drawn on demand), not 100,000 widget items."""
    import os

    root = tmp_path / "many"
    for d in range(20):
        sub = root / f"{d:02d}"
        sub.mkdir(parents=True)
        for i in range(1000):
            fd = os.open(sub / f"{i:04d}.txt", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"tiny file\n")
            os.close(fd)
    window.data_page.add_paths([str(root)])
    wait_task(qtbot, window.data_page, timeout=300_000)
    m = window.data_page.table.model()
    assert m.rowCount() == 20_000
    assert m.index(19_999, 0).data() == "0999.txt" and m.index(19_999, 3).data() == "✓ ok"
    assert window.data_page.stat_labels["documents"].text() == "20,000"
    window.data_page.table.scrollToBottom()
    window.data_page.table.selectRow(19_999)
    assert "tiny file" in window.data_page.preview.toPlainText()


def test_runs_page_imports_a_zip_and_shows_a_refusal(window, qtbot, tmp_path, monkeypatch):
    import zipfile

    from PySide6.QtWidgets import QFileDialog

    other = RunStore(tmp_path / "elsewhere")
    cfg = RunConfig(name="shared", data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char"),
                    model=preset("tiny"), training=TrainConfig(max_steps=20, warmup_steps=2))
    run = other.create(cfg)
    from desktop_llm.store.sharing import export_zip

    good = export_zip(other, run.id, tmp_path / "good.zip")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(f"{run.id}/../../evil", b"x")
    rp = window.runs_page
    chosen = [str(evil)]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (chosen[0], "Zip archive (*.zip)"))
    qtbot.mouseClick(rp.import_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: rp.task is not None and rp.task.settled, timeout=60_000)
    assert rp.message.text().startswith("Import refused:") and "outside" in rp.message.text()
    assert rp.message.property("role") == "error"
    assert rp.table.rowCount() == 0 and rp.import_btn.isEnabled()
    chosen[0] = str(good)
    qtbot.mouseClick(rp.import_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: rp.task.settled, timeout=60_000)
    assert rp.table.rowCount() == 1 and rp.table.item(0, 0).text() == "shared"
    assert rp.selected_ids() == [run.id]
    assert rp.message.text() == f"Imported as run {run.id}." and rp.message.property("role") == "hint"
