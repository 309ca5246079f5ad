"""The chat template: four special tokens added after any tokenizer's vocabulary (as the masked
LM adds [MASK]), a conversation written with them, and the loss mask that supervises the reply.

A message is written `<|role|> content <|end|>`; a conversation is its messages one after another,
and a model is asked for a reply by ending with `<|assistant|>`. The mask is 1 on the assistant's
content and its `<|end|>` (so the model learns to stop) and 0 on everything else: the system
prompt and the user's turns are read, never predicted (nanochat's SFT mask; its loss was +12%
ChatCORE when restored, PR #582).

Hand-written rather than keras-hub's: keras-hub has no chat template for a tokenizer it did not
ship (its Gemma and Llama templates are strings of their own vocabularies), and the template must
work over our character, byte, WordPiece and SentencePiece tokenizers alike. The template travels
with the run's tokenizer (kind "chat-template"), so every command that loads a run finds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from desktop_llm.core.tokenizers import Tokenizer, load_tokenizer, register_tokenizer

ROLES = ("system", "user", "assistant")
SPECIALS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")  # after the inner vocabulary, in this order


class ChatTokenizer(Tokenizer):
    """An inner tokenizer plus the template's special tokens (ids inner.vocabulary_size + 0..3)."""

    kind = "chat-template"
    applies_template = True  # what generation asks of a tokenizer to apply the template (core/generation.py)

    def __init__(self, inner: Tokenizer):
        self.inner = inner.inner if isinstance(inner, ChatTokenizer) else inner
        n = self.inner.vocabulary_size
        self.role_ids = {role: n + i for i, role in enumerate(ROLES)}
        self.end_id = n + len(ROLES)

    @property
    def vocabulary_size(self) -> int:
        return self.inner.vocabulary_size + len(SPECIALS)

    @property
    def lossless(self) -> bool:
        return self.inner.lossless

    @property
    def placeholder_ids(self) -> list[int]:
        """The role tokens are never sampled: a reply ends with <|end|>, and the template writes the
        next role itself."""
        return [*self.inner.placeholder_ids, *self.role_ids.values()]

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of the ids; special tokens write nothing (a reply is its text)."""
        n = self.inner.vocabulary_size
        return self.inner.decode([int(i) for i in ids if int(i) < n])

    def token_text(self, token_id: int) -> str:
        n = self.inner.vocabulary_size
        return SPECIALS[token_id - n] if token_id >= n else self.inner.token_text(token_id)

    def vocabulary(self) -> list[str]:
        return [*self.inner.vocabulary(), *SPECIALS]

    def render(self, messages: Iterable[tuple[str, str]], reply: bool = False) -> tuple[list[int], list[int]]:
        """A conversation's ids and loss mask (1 where the id is the assistant's text or its end);
        with `reply`, `<|assistant|>` is appended: where a model writes the next reply."""
        ids: list[int] = []
        mask: list[int] = []
        for role, content in messages:
            body = [*self.inner.encode(content), self.end_id]
            ids += [self.role_ids[role], *body]
            mask += [0, *([1 if role == "assistant" else 0] * len(body))]
        if reply:
            ids.append(self.role_ids["assistant"])
            mask.append(0)
        return ids, mask

    def show(self, messages: Iterable[tuple[str, str]]) -> str:
        """The template written out as text, special tokens by name (for the docs and `corpus stats`)."""
        return "".join(f"{SPECIALS[ROLES.index(r)]}{c}{SPECIALS[-1]}" for r, c in messages)

    def _save_files(self, folder: Path) -> dict:
        self.inner.save(folder / "inner")
        return {"inner": self.inner.kind, "specials": list(SPECIALS),
                "template": "<|role|>content<|end|> per message; a reply follows <|assistant|>"}

    @classmethod
    def _load(cls, folder: Path, meta: dict) -> ChatTokenizer:
        return cls(load_tokenizer(folder / "inner"))


register_tokenizer(ChatTokenizer)
