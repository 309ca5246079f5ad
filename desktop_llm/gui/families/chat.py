"""The chat model in the window. It writes text, so the Generate page gives it its prompt and chat
tabs (for every family with `writes_text`); the Chat tab applies its template, offers a system
prompt and stops where the model ends its turn. It needs no panel of its own."""

from __future__ import annotations

from desktop_llm.gui.families.start_from import StartFromOptions


class ChatOptions(StartFromOptions):
    """Chat fine-tuning: from a GPT run (its tokenizer, shape and weights) or from scratch."""

    FAMILY, BASES, PRESETS = "chat", ("gpt", "chat"), True
    SCRATCH = "scratch: a new model, tokenizer learned from the conversations"
    TIP = ("A GPT run to fine-tune on these conversations (it already knows the language: the usual way), or a chat "
           "run to fine-tune further; or scratch: a new model learns language and turns from the conversations alone")

    def apply(self, cfg):
        """From scratch its tokenizer (of the Tokenizer page's kind) learns the messages' text, in the run."""
        from dataclasses import replace

        from desktop_llm.core.config import TokenizerConfig

        if not self.base_folder():
            cfg = replace(cfg, tokenizer=TokenizerConfig(kind=self.session.tokenizer_kind or "char",
                                                         vocabulary_size=cfg.tokenizer.vocabulary_size))
        return super().apply(cfg)


CHOICE = "Chat: fine-tune on conversations"  # the Train page's family menu
TrainOptions = ChatOptions
TABS: tuple = ()
HEADER = ("Chat", "Talk with a model fine-tuned on conversations. It answers in turn and ends its reply itself.")
ATTENTION_NOTE = ("A chat model reads like a GPT (causal: each token sees only those before it); the maps here are "
                  "of plain text, without the chat template.")  # the Attention page, for its runs
EVALUATE_ELSEWHERE = "the Chat tab on the Generate page talks with it"  # the Evaluate page: where its own evaluation is
