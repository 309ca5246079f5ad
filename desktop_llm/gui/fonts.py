"""A font for Chinese, Japanese and Korean text where the system has none.

The bundled corpora and examples are half Chinese (唐诗三百首, 古文观止, Tatoeba's pairs), and a
Linux desktop without a CJK font draws every such character as the same empty box: the Data page,
the tokenizer's vocabulary, attention labels and translations all become unreadable. Where Qt
finds no family that writes Simplified Chinese, the app registers the bundled WenQuanYi Micro Hei
(Apache-2.0, resources/ATTRIBUTION.md); Qt then falls back to it for any glyph the chosen font
lacks. A system's own CJK fonts, where present, are left to do the job.
"""

from __future__ import annotations

_registered: list[str] | None = None


def system_has_cjk() -> bool:
    from PySide6.QtGui import QFontDatabase

    return bool(QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese))


def ensure_cjk_font() -> list[str]:
    """Register the bundled CJK font unless the system has one (once per process; needs a
    QGuiApplication). Returns the families registered ([] where the system's fonts serve)."""
    global _registered
    if _registered is not None:
        return _registered
    from PySide6.QtGui import QFontDatabase

    from desktop_llm.resources import CJK_FONT

    _registered = []
    if not system_has_cjk() and CJK_FONT.is_file():
        font_id = QFontDatabase.addApplicationFont(str(CJK_FONT))
        if font_id >= 0:
            _registered = list(QFontDatabase.applicationFontFamilies(font_id))
    return _registered
