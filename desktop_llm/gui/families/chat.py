"""The chat model in the window. It writes text, so the Generate page gives it its prompt and chat
tabs (for every family with `writes_text`); the Chat tab applies its template, offers a system
prompt and stops where the model ends its turn. It needs no panel of its own."""

from __future__ import annotations

CHOICE = "Chat: fine-tune on conversations"  # the Train page's family menu
TABS: tuple = ()
HEADER = ("Chat", "Talk with a model fine-tuned on conversations. It answers in turn and ends its reply itself.")
ATTENTION_NOTE = ("A chat model reads like a GPT (causal: each token sees only those before it); the maps here are "
                  "of plain text, without the chat template.")  # the Attention page, for its runs
EVALUATE_ELSEWHERE = "the Chat tab on the Generate page talks with it"  # the Evaluate page: where its own evaluation is
