"""The Data page's encodings (issue 14, part 6): an unsure source shows its status, confidence and
reason; Encoding… (button or context menu) lists the detected encoding first, previews each choice,
and the choice is read at once, kept in the session and the run config, and remembered in gui.ini."""

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMenu

from desktop_llm.core.config import RunConfig
from desktop_llm.core.data import corpus_of
from desktop_llm.store import RunStore
from tests.core.test_encodings import BIG5_TEXT, SHORT_JAPANESE
from tests.gui.conftest import wait_task


def _corpus(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "legacy"
    folder.mkdir()
    (folder / "big5.txt").write_bytes(BIG5_TEXT.encode("big5"))
    short = folder / "short.txt"
    short.write_bytes(SHORT_JAPANESE.encode("shift_jis"))  # too short to be sure: read as Korean
    return folder, short


def _row(page, name: str) -> int:
    return next(i for i, s in enumerate(page.sources) if Path(s.path).name == name)


def _cells(page, row: int) -> list[str]:
    m = page.table.model()
    return [m.index(row, c).data() for c in range(m.columnCount())]


def test_an_unsure_source_is_shown_and_its_encoding_can_be_chosen(window, qtbot, tmp_path):
    page = window.data_page
    folder, short = _corpus(tmp_path)
    page.add_paths([str(folder)])
    wait_task(qtbot, page)

    big5 = _cells(page, _row(page, "big5.txt"))
    assert big5[2] == "big5" and big5[3] == "✓ ok"  # sure: no percentage
    row = _row(page, "short.txt")
    _name, _size, encoding, status, details = _cells(page, row)
    assert status == "⚠ unsure" and encoding.startswith("cp949 · ") and encoding.endswith("%")
    assert "unsure" in details and "Shift-JIS" in details
    assert "1 with an unsure encoding" in page.message.text()
    # the unsure file is the one selected, with the reason above its (wrong) preview
    assert page.table.selectionModel().selectedRows()[0].row() == row
    assert page.encoding_note.isVisible() and "Shift-JIS" in page.encoding_note.text()
    assert page.preview.toPlainText() != SHORT_JAPANESE
    assert page.encoding_btn.isEnabled()

    seen = {}

    def choose():
        dlg = QApplication.activeModalWidget()
        seen["first"] = dlg.combo.itemText(0)
        seen["listed"] = [dlg.combo.itemData(i) for i in range(dlg.combo.count())]
        dlg.select("shift_jis")
        seen["preview"] = dlg.preview.toPlainText()
        dlg.buttons.button(QDialogButtonBox.Ok).click()

    QTimer.singleShot(0, choose)
    page.encoding_btn.click()  # the dialog runs modally until choose() accepts it
    assert seen["first"].startswith("cp949 — ") and "detected" in seen["first"]  # the detected one first
    assert {"utf-8", "utf-16", "gb18030", "big5", "shift_jis", "euc-kr", "cp1252", "latin-1"} <= set(seen["listed"])
    assert seen["preview"] == SHORT_JAPANESE  # the dialog shows what the choice reads
    wait_task(qtbot, page)

    row = _row(page, "short.txt")
    assert _cells(page, row)[2:4] == ["shift_jis (chosen)", "✓ ok"]
    assert page.table.selectionModel().selectedRows()[0].row() == row  # still the file chosen for
    assert page.preview.toPlainText().rstrip("\n") == SHORT_JAPANESE
    assert not page.encoding_note.isVisible()
    assert "unsure" not in page.message.text()
    assert window.session.encodings == {str(short): "shift_jis"}
    assert window.session.corpus_key[2] == ((str(short), "shift_jis"),)  # a tokenizer trained before is stale

    # the run config records the choice, and the trainer's corpus reads the file with it
    cfg = RunConfig.from_dict(RunConfig.to_dict(window.train_page.run_config()))
    assert cfg.data.encodings == ((str(short), "shift_jis"),)
    assert SHORT_JAPANESE in "".join(corpus_of(cfg).iter_text())

    # the context menu takes the choice back
    rect = page.table.visualRect(page.table.model().index(row, 0))
    page._context_menu(rect.center())
    menu = [m for m in page.findChildren(QMenu) if m.isVisible()][-1]
    labels = [a.text() for a in menu.actions()]
    assert labels == ["Encoding…", "Detect the encoding again"]
    menu.actions()[1].trigger()
    menu.close()
    wait_task(qtbot, page)
    assert _cells(page, _row(page, "short.txt"))[3] == "⚠ unsure"
    assert window.session.encodings == {}


def test_a_chosen_encoding_is_remembered_after_a_restart(qtbot, home, tmp_path):
    from desktop_llm.gui.main_window import MainWindow

    folder, short = _corpus(tmp_path)
    w = MainWindow(RunStore(home))
    qtbot.addWidget(w)
    w.data_page.add_paths([str(folder)])
    wait_task(qtbot, w.data_page)
    w.data_page.set_encoding([str(short)], "shift_jis")
    wait_task(qtbot, w.data_page)
    w.close()

    w2 = MainWindow(RunStore(home))
    qtbot.addWidget(w2)
    wait_task(qtbot, w2.data_page)
    assert w2.session.encodings == {str(short): "shift_jis"}
    s = w2.data_page.sources[_row(w2.data_page, "short.txt")]
    assert (s.encoding, s.chosen, s.unsure) == ("shift_jis", True, False)
    w2.close()
