"""Generate and chat: a prompt box and a chat view that stream tokens as the model produces them,
with the usual sampling controls and a Stop button. Generation runs off the UI thread; tokens
are buffered and painted at ~20 Hz so a fast model never floods the event loop."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_llm.core.config import DEFAULT_FAMILY
from desktop_llm.core.generation import SamplingConfig
from desktop_llm.gui.widgets import RunPicker, TokenView, header, label, set_role, visible_token
from desktop_llm.gui.workers import in_worker

TRANSCRIPT_MODE = ("Transcript mode: this run learned plain text, so it continues a “User: … / Bot: …” transcript and "
                   "chats only as well as its training text allows. A chat run (the Train page's Chat family, "
                   "fine-tuned on conversations) answers in turn and ends its replies itself.")
TEMPLATE_MODE = ("A chat with a model fine-tuned on conversations: your messages are written with its chat template, "
                 "and each reply ends where the model ends its turn.")


def prob_color(p: float) -> QColor:
    """Background tint for a generated token by its surprise (-log2 p): confident tokens stay
    plain, a 1-in-64 pick gets the strongest tint (TokenView lays it over the view's background
    and picks black or white text by contrast)."""
    bits = -math.log2(max(p, 1e-9))
    return QColor(242, 142, 43, round(255 * 0.65 * min(1.0, bits / 6.0)))


@dataclass
class Conversation:
    """A chat as the page keeps it: the model worker, which keeps the model, answers each turn
    from this history (core/worker_jobs.chat_reply) and sends back how the reply ended."""
    history: list = field(default_factory=list)  # (role, text): "user" and "assistant" in turn
    system: str = ""
    templated: bool = False  # a chat model's template (else a User:/Bot: transcript)
    stopped_by: str = ""
    dropped: int = 0  # the oldest messages the last prompt left out


class GeneratePage(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.task = None
        self.chat: Conversation | None = None  # the conversation, per run/checkpoint
        self._chat_key = None
        self._pending: list = []  # GeneratedToken buffered until the next paint
        self.tokens_out = 0
        self._target = "output"

        self.picker = RunPicker(session)
        self.picker.changed.connect(self._reset_chat)
        self.family = None  # set by _adapt_to_family, which then shows the family's tabs

        # sampling controls
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.1)
        defaults = SamplingConfig()  # the command line's defaults too (core.generation)
        self.temperature.setValue(defaults.temperature)
        self.temperature.setToolTip("0 is greedy (always the most likely token); higher is more varied")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100_000)
        self.top_k.setSpecialValueText("off")
        self.top_k.setToolTip("Sample only among the k most likely tokens (0: off)")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(defaults.top_p)
        self.top_p.setToolTip("Nucleus sampling: the smallest set of tokens whose probability reaches p (1: off)")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 100_000)
        self.max_tokens.setValue(defaults.max_new_tokens)
        self.max_tokens.setToolTip("Most tokens to generate")
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setValue(-1)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("A fixed seed repeats the same text; 'random' differs each time")
        self.stop_seq = QLineEdit()
        self.stop_seq.setPlaceholderText(r"e.g. \n\n  (comma-separated)")
        self.stop_seq.setToolTip(r"Stop when one of these appears. Use \n for a new line.")
        self.color = QCheckBox("Tint the unlikely tokens")
        self.color.setToolTip("The less likely a token was, the warmer its background; "
                              "hover a token for its probability")
        self.color.setChecked(True)
        box = QGroupBox("Sampling")
        self.sampling_box = box
        form = QFormLayout(box)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        form.addRow("Stop at", self.stop_seq)
        form.addRow(self.color)

        # prompt tab
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Type the beginning of a text…")
        self.prompt.setPlainText("ROMEO:")
        self.prompt.setMaximumHeight(110)
        self.output = TokenView()
        self.output.setPlaceholderText("The model's text streams here.")
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setProperty("role", "primary")
        self.generate_btn.setShortcut("Ctrl+Return")
        self.generate_btn.setToolTip("Generate (Ctrl+Enter)")
        self.generate_btn.clicked.connect(self.generate)
        self.next_btn = QPushButton("Next token?")
        self.next_btn.setToolTip("The model's 10 likeliest next tokens after the prompt, with their "
                                 "probabilities (before temperature, top-k or top-p reshape them)")
        self.next_btn.clicked.connect(self.show_next_tokens)
        self.next_tokens: list[tuple[str, float]] = []
        complete = QWidget()
        cl = QVBoxLayout(complete)
        cl.addWidget(self.prompt)
        cl.addWidget(self.output, 1)

        # chat tab
        self.chat_view = TokenView()
        self.chat_view.setPlaceholderText(TRANSCRIPT_MODE)
        self.system_input = QLineEdit()  # a chat run's system prompt (a transcript has none)
        self.system_input.setPlaceholderText("System prompt (optional): how the model should answer, e.g. "
                                             "“Answer in one short sentence.”")
        self.system_input.setToolTip("Leads the conversation, written with the chat template's <|system|> "
                                     "token. The next message uses it.")
        self.system_row = QWidget()  # shown for a chat run (_adapt_to_family)
        srl = QHBoxLayout(self.system_row)
        srl.setContentsMargins(0, 0, 0, 0)
        srl.addWidget(label("System prompt", None))
        srl.addWidget(self.system_input, 1)
        self.system_row.setVisible(False)
        self.chat_input = QLineEdit()
        self.chat_input.setPlaceholderText("Say something and press Enter")
        self.chat_input.returnPressed.connect(self.send_chat)
        self.send_btn = QPushButton("Send")
        self.send_btn.clicked.connect(self.send_chat)
        self.regenerate_btn = QPushButton("Regenerate")
        self.regenerate_btn.setToolTip("Another reply to your last message, in place of the last one")
        self.regenerate_btn.clicked.connect(self.regenerate_reply)
        self.regenerate_btn.setEnabled(False)
        self.clear_chat_btn = QPushButton("New chat")
        self.clear_chat_btn.clicked.connect(self._reset_chat)
        chat = QWidget()
        chl = QVBoxLayout(chat)
        chl.addWidget(self.system_row)
        chl.addWidget(self.chat_view, 1)
        row = QHBoxLayout()
        row.addWidget(self.chat_input, 1)
        row.addWidget(self.send_btn)
        row.addWidget(self.regenerate_btn)
        row.addWidget(self.clear_chat_btn)
        chl.addLayout(row)

        self.tabs = QTabWidget()
        self.tabs.addTab(complete, "Complete a prompt")
        self.tabs.addTab(chat, "Chat")
        # Each family's own tabs (gui/families/<family>.py), one instance of a panel that several
        # families share (an encoder's Similar sentences); shown for the runs of those families.
        from desktop_llm.core.models import families
        from desktop_llm.gui.families import family_ui

        self.panels: dict[type, QWidget] = {}
        for family in families():
            for cls in family_ui(family.name).TABS:
                if cls not in self.panels:
                    self.panels[cls] = cls(session, lambda: (self.picker.run_id, self.picker.checkpoint))
                    self.tabs.setTabVisible(self.tabs.addTab(self.panels[cls], cls.TITLE), False)
        self.picker.changed.connect(self._adapt_to_family)

        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setShortcut("Esc")
        self.stop_btn.setToolTip("Stop generating (Esc)")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop)
        self.status = label("", "hint")
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_btn)
        buttons.addWidget(self.next_btn)
        buttons.addWidget(self.stop_btn)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(box)
        ll.addLayout(buttons)
        ll.addWidget(self.status)
        ll.addStretch(1)
        split = QSplitter()
        split.addWidget(left)
        self.left_pane = left
        split.addWidget(self.tabs)
        split.setSizes([300, 800])
        # Each tab has its own status line (shown in the one label while the tab is open), and
        # the Generate button belongs to the prompt tab: the chat has its own Send.
        self._tab = 0
        self._statuses = dict.fromkeys(range(self.tabs.count()), ("", "hint"))
        self.tabs.currentChanged.connect(self._on_tab)

        lay = QVBoxLayout(self)
        self.header = header(*family_ui(DEFAULT_FAMILY).HEADER)
        lay.addWidget(self.header)
        lay.addWidget(self.picker)
        lay.addWidget(split, 1)

        self._paint_timer = QTimer(self)
        self._paint_timer.setInterval(50)
        self._paint_timer.timeout.connect(self._paint)
        self._adapt_to_family()  # the run chosen while the page was being built

    # ------------------------------------------------------------------ settings
    def sampling(self):
        from desktop_llm.core.generation import SamplingConfig

        stops = tuple(s.encode().decode("unicode_escape") for s in self.stop_seq.text().split(",") if s.strip())
        return SamplingConfig(max_new_tokens=self.max_tokens.value(), temperature=round(self.temperature.value(), 3),
                              top_k=self.top_k.value(), top_p=round(self.top_p.value(), 3),
                              seed=None if self.seed.value() < 0 else self.seed.value(), stop=stops)

    def _checked_sampling(self):
        """The settings, checked by the same rules as the command line's; a bad one is shown in
        the status line and nothing starts (None)."""
        from desktop_llm.core.generation import SamplingError

        try:
            cfg = self.sampling()
            cfg.validate()
        except SamplingError as e:
            self._say(str(e), "error")
            return None
        return cfg

    @property
    def busy(self) -> bool:
        return bool(self.task and self.task.running)

    # ------------------------------------------------------------------ prompt completion
    def generate(self) -> None:
        if self.tabs.currentIndex() == 1:
            self.send_chat()
            return
        if self.busy or not self._check_run():
            return
        cfg = self._checked_sampling()
        if cfg is None:
            return
        prompt = self.prompt.toPlainText()
        self.output.reset(f"<b style='white-space:pre-wrap'>{html.escape(prompt).replace(chr(10), '<br>')}</b>")
        self._begin("generate", self._on_generated, "output", prompt=prompt, cfg=cfg)

    def _on_generated(self, result) -> None:
        self._paint()
        why = {"length": "max tokens reached", "cancelled": "stopped"}.get(result.stopped_by, result.stopped_by.replace("stop:", "stop sequence "))
        self._end(f"{len(result.tokens)} tokens in {result.seconds:.2f} s · {result.tokens_per_second:,.0f} tokens/s · "
                  f"first token after {1000 * result.first_token_seconds:.0f} ms · {why}")

    def show_next_tokens(self) -> None:
        """What the model believes comes next: a learner's view of the distribution it samples from."""
        if self.tabs.currentIndex() != 0:
            self.tabs.setCurrentIndex(0)
        if self.busy or not self._check_run():
            return
        prompt = self.prompt.toPlainText()
        self.output.reset(f"<b style='white-space:pre-wrap'>{html.escape(prompt).replace(chr(10), '<br>')}</b>")
        self._begin("next_tokens", self._on_next_tokens, "output", prompt=prompt, k=10)

    def _on_next_tokens(self, top: list[tuple[str, float]]) -> None:
        self.next_tokens = top
        most = max((p for _, p in top), default=1.0) or 1.0  # bars relative to the likeliest token
        rows = "".join(
            f"<tr><td style='padding-right:14px'><code>{html.escape(visible_token(t))}</code></td>"
            f"<td align='right' style='padding-right:10px'>{p:.1%}</td>"
            f"<td><span style='color:{prob_color(p).name()}'>{'█' * max(1, round(30 * p / most))}</span></td></tr>"
            for t, p in top)
        self.output.append_html(f"<br><br>Next token, as the model sees it:<table>{rows}</table>")
        self._end(f"The {len(top)} likeliest next tokens ({sum(p for _, p in top):.0%} of the probability); "
                  "Generate samples from this distribution.")

    # ------------------------------------------------------------------ chat
    def send_chat(self) -> None:
        message = self.chat_input.text().strip()
        if not message or self.busy or not self._check_run():
            return
        cfg = self._checked_sampling()
        if cfg is None:
            return
        self.tabs.setCurrentIndex(1)
        run_id, which = self.picker.run_id, self.picker.checkpoint
        key = (run_id, which)
        if self._chat_key != key:
            self._reset_chat()
            self._chat_key = key

        if self.chat is None:
            self.chat = Conversation()
        self.chat.system = self.system_input.text().strip()
        self.chat_input.clear()
        self.chat_view.append_html(("<br><br>" if self.chat_view.tips or self.chat.history else "")
                                   + f"<b>You</b><br>{html.escape(message)}<br><br><b>Model</b><br>")
        self._begin_reply(cfg, message)

    def regenerate_reply(self) -> None:
        """The last reply again, sampled anew (the conversation is redrawn without the old one)."""
        if self.busy or self.chat is None or not self.chat.history:
            return
        cfg = self._checked_sampling()
        if cfg is None:
            return
        chat = self.chat
        kept = chat.history[:-1] if chat.history[-1][0] == "assistant" else chat.history
        self.chat_view.reset()
        for i, (role, text) in enumerate(kept):
            self.chat_view.append_html(("<br><br>" if i else "") + f"<b>{'You' if role == 'user' else 'Model'}</b><br>"
                                       + html.escape(text).replace("\n", "<br>"))
        self.chat_view.append_html("<br><br><b>Model</b><br>")
        chat.system = self.system_input.text().strip()
        self._begin_reply(cfg, None)

    def _begin_reply(self, cfg, message: str | None) -> None:
        """One reply (`message` None: the last reply again) from the model worker, which keeps the
        model; the conversation stays here and travels with each request."""
        self._begin("chat_reply", self._on_replied, "conversation", history=list(self.chat.history),
                    system=self.chat.system, cfg=cfg, message=message)

    def _on_replied(self, reply: dict) -> None:
        self._paint()
        chat = self.chat
        chat.history, chat.templated = reply["history"], reply["templated"]
        chat.stopped_by, chat.dropped = reply["stopped_by"], reply["dropped"]
        turns = len(chat.history) // 2
        notes = [f"{turns} turn{'' if turns == 1 else 's'} in the conversation"]
        if chat.templated and chat.stopped_by == "length":
            notes.append("the reply was cut at the token limit before the model ended its turn")
        if chat.dropped:
            notes.append(f"the {chat.dropped} oldest messages no longer fit in the model's context and were left out")
        self._end("; ".join(notes))

    def panel(self, cls) -> QWidget:
        """The page's panel of that class (gui/families/), e.g. `page.panel(ClassifyPanel)`."""
        return self.panels[cls]

    def _adapt_to_family(self) -> None:
        """Prompt and chat for a run that writes text; the family's own tabs otherwise (fill mask,
        classify, translate...), under its header (the sampling box belongs to generation only)."""
        from desktop_llm.core.models import get_family
        from desktop_llm.gui.families import family_ui

        run_id = self.picker.run_id
        try:
            run = self.session.store.get(run_id) if run_id else None
            family = run.config.family if run else DEFAULT_FAMILY
        except Exception:  # noqa: BLE001 - a run folder that vanished: the picker refreshes soon
            run, family = None, DEFAULT_FAMILY
        ui = family_ui(family)
        if family != self.family:
            self.family = family
            writes = get_family(family).writes_text
            for place, cls in enumerate(ui.TABS, start=2):  # the family's tabs in its own order
                self.tabs.tabBar().moveTab(self.tabs.indexOf(self.panels[cls]), place)
            own = [self.tabs.indexOf(self.panels[cls]) for cls in ui.TABS]
            for i in range(self.tabs.count()):
                self.tabs.setTabVisible(i, i in own or (writes and i < 2))
            self.tabs.setCurrentIndex(0 if writes or not own else own[0])
            self.left_pane.setVisible(writes)  # sampling settings belong to generation
            templated = get_family(family).chat_template
            self.system_row.setVisible(templated)  # a transcript has no system prompt
            self.chat_view.setPlaceholderText(TEMPLATE_MODE if templated else TRANSCRIPT_MODE)
            self.generate_btn.setVisible(writes and self.tabs.currentIndex() == 0)
            self.next_btn.setVisible(self.generate_btn.isVisibleTo(self))
            self._show_header()
        if run is not None and ui.TABS:
            sample = get_family(family).sample_text(run.config)  # its own language, not Shakespeare
            for cls in ui.TABS:
                self.panels[cls].adopt_example(sample)

    def _show_header(self) -> None:
        """The open tab's title and line: a family panel's own, else the family's."""
        from desktop_llm.gui.families import family_ui
        from desktop_llm.gui.families.panel import FamilyPanel

        panel = self.tabs.currentWidget()
        if isinstance(panel, FamilyPanel) and panel.DESCRIPTION:
            self.header.show_text(panel.TITLE, panel.DESCRIPTION)
        else:
            self.header.show_text(*family_ui(self.family).HEADER)

    def _reset_chat(self) -> None:
        self.chat, self._chat_key = None, None
        self.chat_view.reset()
        self.regenerate_btn.setEnabled(False)

    # ------------------------------------------------------------------ streaming plumbing
    def _begin(self, job: str, on_done, target: str, **kwargs) -> None:
        """`job` of core/worker_jobs.py on the chosen run, in the model worker; its tokens stream in."""
        self._target = target
        self._pending.clear()
        self.tokens_out = 0
        self.generate_btn.setEnabled(False)
        self.next_btn.setEnabled(False)
        self.send_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        tab = self._target_tab
        self._paint_timer.start()
        self.task = in_worker(self, self.session, f"desktop_llm.core.worker_jobs:{job}",
                              lambda msg: self._say(msg, tab=tab), on_done, self._on_error,
                              lambda _f, msg: msg and self._say(msg, tab=tab), self._on_token,
                              run_id=self.picker.run_id, which=self.picker.checkpoint, **kwargs)

    @property
    def _target_tab(self) -> int:
        return 0 if self._target == "output" else 1

    def _say(self, text: str, role: str = "hint", tab: int | None = None) -> None:
        """Set a tab's status line: shown now if that tab is open, else when it is opened."""
        tab = self._tab if tab is None else tab
        self._statuses[tab] = (text, role)
        if tab == self._tab:
            set_role(self.status, role)
            self.status.setText(text)

    def _on_tab(self, index: int) -> None:
        self._statuses[self._tab] = (self.status.text(), self.status.property("role") or "hint")
        self._tab = index
        if hasattr(self, "left_pane") and self.family:  # the sampling box: the prompt's and the chat's
            from desktop_llm.core.models import get_family

            self.left_pane.setVisible(get_family(self.family).writes_text and index < 2)
        self.generate_btn.setVisible(index == 0 and self.left_pane.isVisibleTo(self))
        self.next_btn.setVisible(self.generate_btn.isVisibleTo(self))
        if hasattr(self, "header"):  # (tabs are added before the header exists)
            self._show_header()
        text, role = self._statuses.get(index, ("", "hint"))
        set_role(self.status, role)
        self.status.setText(text)

    def _on_token(self, token) -> None:
        self._pending.append(token)

    def _paint(self) -> None:
        if not self._pending:
            return
        tokens, self._pending[:] = list(self._pending), []
        colour = self.color.isChecked()
        view = self.output if self._target == "output" else self.chat_view
        view.append_tokens([t.text for t in tokens], [prob_color(t.probability) if colour else None for t in tokens],
                           [f"token {t.id} · p = {t.probability:.3f}" for t in tokens])
        self.tokens_out += len(tokens)
        self._say(f"Generating… {self.tokens_out} tokens", tab=self._target_tab)

    def stop(self) -> None:
        if self.task:
            self.task.cancel()

    def _end(self, message: str) -> None:
        self._paint_timer.stop()
        self.generate_btn.setEnabled(True)
        self.next_btn.setEnabled(True)
        self.send_btn.setEnabled(True)
        self.regenerate_btn.setEnabled(bool(self.chat and self.chat.history))
        self.stop_btn.setEnabled(False)
        self._say(message, tab=self._target_tab)

    def _on_error(self, msg: str) -> None:
        self._end(msg)
        self._say(msg, "error", tab=self._target_tab)

    def _check_run(self) -> bool:
        if not self.picker.run_id:
            set_role(self.status, "error")
            self.status.setText("Train a run first: there is no checkpoint to generate from.")
            return False
        from desktop_llm.core.models import get_family

        family = self.session.store.get(self.picker.run_id).config.family
        if not get_family(family).writes_text:  # its tabs are the family's own (Fill mask, Classify…)
            set_role(self.status, "error")
            self.status.setText(f"A {family.replace('_', ' ')} run does not write text: choose a GPT run.")
            return False
        return True

    def plain_output(self) -> str:
        return self.output.toPlainText()
