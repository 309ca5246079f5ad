"""Chinese text is drawn with real glyphs on any machine: the bundled CJK font stands in where the
system has none (a bare Linux desktop drew every character of the Chinese examples as one box)."""

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from desktop_llm.gui.fonts import ensure_cjk_font, system_has_cjk


def drawn(text: str) -> QImage:
    label = QLabel(text)
    label.resize(80, 40)
    image = QImage(80, 40, QImage.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    label.render(image)
    return image


def test_chinese_characters_are_drawn_as_themselves(qapp):
    registered = ensure_cjk_font()
    # the system's own CJK font, or else the bundled one, is there for Qt to fall back to
    assert system_has_cjk()
    assert registered in ([], ["WenQuanYi Micro Hei", "WenQuanYi Micro Hei Mono"])
    # two different characters look different (a missing glyph is the same box for both)
    assert drawn("床前明月光") != drawn("疑是地上霜")
    assert drawn("床") != drawn("前")
    assert ensure_cjk_font() == registered  # once per process
