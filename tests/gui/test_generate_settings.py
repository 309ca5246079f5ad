"""The Generate page checks its sampling settings with the engine's own rules before starting."""

from desktop_llm.core.generation import SamplingConfig
from desktop_llm.gui.pages.generate_page import GeneratePage
from desktop_llm.gui.session import Session
from desktop_llm.store import RunStore


def test_bad_settings_show_the_message_and_start_nothing(qtbot, home, monkeypatch):
    page = GeneratePage(Session(RunStore(home)))
    qtbot.addWidget(page)
    monkeypatch.setattr(page, "_check_run", lambda: True)  # as if a trained run were picked
    monkeypatch.setattr(page, "sampling", lambda: SamplingConfig(top_p=0.0))

    page.generate()
    assert page.task is None and page.generate_btn.isEnabled()
    assert "Top-p must be more than 0" in page.status.text()
    assert page.status.property("role") == "error"

    page.chat_input.setText("hello")
    page.send_chat()
    assert page.task is None and page.chat_input.text() == "hello"  # the message is kept to send again
    assert "Top-p must be more than 0" in page.status.text()

    monkeypatch.setattr(page, "sampling", lambda: SamplingConfig(top_k=100_000))  # beyond any vocabulary: fine
    assert page._checked_sampling() is not None
