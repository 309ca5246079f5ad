"""The chat family: a GPT fine-tuned on conversations (chat SFT), from scratch or from a GPT run.

The conversations are written with the chat template (core/chat_template.py: `<|user|>`,
`<|assistant|>`, `<|end|>`... after the tokenizer's own ids) and the loss covers only what the
model must learn to write: the assistant's replies and the `<|end|>` that closes each one, so it
learns whose turn it is and to stop. Evaluations report the loss and bits per byte on those
tokens, and "does it stop?": the share of validation replies, generated greedily, that end with
`<|end|>` within twice the reference reply's length (and 16 tokens); an empty reply does not count.

`train --family chat --base RUN` starts from a GPT run (or another chat run): its tokenizer,
shape and weights; the template's new tokens start at the mean of its embeddings.
"""

from __future__ import annotations

from desktop_llm.core import events as ev
from desktop_llm.core.chat_template import ChatTokenizer  # registers the "chat-template" tokenizer kind
from desktop_llm.core.models import continuation
from desktop_llm.core.models.base import Family, refuse_unreadable, unreadable_warning, weighted_token_loss
from desktop_llm.core.models.chat.conversations import (
    STOP_CONVERSATIONS,
    ChatData,
    assistant_share,
    read_conversations,
)


class Chat(Family):
    name = "chat"
    title = "Chat (conversations)"
    summary = "replies in conversations"
    command = "chat"
    writes_text = True
    chat_template = True
    starts_from_base = True  # `train --base RUN`: fine-tune a GPT run on conversations
    fine_tune_learning_rate = continuation.CONTINUE_LR
    accuracy_name = "reply-token accuracy"
    lora = True
    lora_embeddings = True  # the template's new tokens must learn their embeddings (core/models/lora.py)
    tokenizer_in_run = True  # from scratch: learned from the messages' text, in the run (a JSONL is no plain text)
    export_formats = ("keras-hub",)  # keras-hub's GPT-2, with chat_template.json beside it
    probes = True  # the Learning page, the timeline as replies to validation users' messages (probe.py)
    timeline_cells = "greedy replies"

    def prober(self, model, jit_compile: bool = False):
        from desktop_llm.core.models.chat.probe import ChatProber

        return ChatProber(model, jit_compile=jit_compile)

    def probe_tokens(self, data, tok):
        """The validation conversations as the model reads them (template and all), end to end."""
        import numpy as np

        return np.asarray([i for c in data.val_conversations for i in tok.render(c)[0]], np.int64)

    probe_prompts_origin = "each validation conversation's first user message"

    def probe_prompts(self, data) -> list[str]:
        """Each validation conversation's first user message."""
        firsts = (next((c for r, c in conv if r == "user"), None) for conv in data.val_conversations)
        return [c for c in firsts if c is not None]

    def own_tokenizer(self, tok):
        return ChatTokenizer(tok)

    def tokenizer_source(self, cfg) -> str | None:
        return continuation.base_tokenizer(cfg)

    def tokenizer_texts(self, cfg):
        """Every message's text (a JSONL read as plain text would give its JSON)."""
        for conversation in read_conversations(cfg.data.paths, cfg.data.encodings):
            yield "\n".join(c for _, c in conversation) + "\n"

    def on_base(self, cfg, base_folder, gentler: bool = True):
        return continuation.on_base(cfg, base_folder, self.name, ("gpt", self.name), gentler, presets=True)

    def _unknown_to_base(self, cfg) -> float:
        return continuation.unknown_to_base(cfg, self.tokenizer_texts(cfg)) if cfg.base_run else 0.0

    def check_data(self, cfg) -> None:
        """Conversations that cannot be read are refused here, before a run exists; so is a text the
        base run's tokenizer cannot read."""
        read_conversations(cfg.data.paths, cfg.data.encodings)
        refuse_unreadable(self._unknown_to_base(cfg), cfg.data.accept_unknown)

    def describe_data(self, paths, column=None, encodings=(), val_fraction: float = 0.1, label_column=None,
                      group_column=None) -> str | None:
        from desktop_llm.errors import DesktopLLMError

        try:
            conversations = read_conversations(paths, dict(encodings))
        except (DesktopLLMError, OSError, ValueError):
            return None
        turns = sum(len(c) for c in conversations)
        return (f"{len(conversations):,} conversations, {turns:,} messages; the model learns to write the "
                f"assistant's replies ({assistant_share(conversations):.0%} of the text) and to end them")

    def example_parts(self, paths, encodings=()) -> list[tuple[str, bool]] | None:
        """The first conversation in the template, its replies and their <|end|> marked as learned."""
        from desktop_llm.core.chat_template import ROLES, SPECIALS
        from desktop_llm.errors import DesktopLLMError

        try:
            conversation = read_conversations(paths, dict(encodings))[0]
        except (DesktopLLMError, OSError, ValueError):
            return None
        parts: list[tuple[str, bool]] = []
        for role, content in conversation:
            learned = role == "assistant"
            for text, mark in ((SPECIALS[ROLES.index(role)], False), (content + SPECIALS[-1], learned)):
                if parts and parts[-1][1] == mark:
                    parts[-1] = (parts[-1][0] + text, mark)
                else:
                    parts.append((text, mark))
        return parts

    def sample_text(self, cfg) -> str | None:
        """The first user message (what a user would type on the Chat tab)."""
        from desktop_llm.errors import DesktopLLMError

        try:
            return next(c for conv in read_conversations(cfg.data.paths, cfg.data.encodings)
                        for r, c in conv if r == "user")
        except (DesktopLLMError, OSError, StopIteration):
            return None

    def example_data(self):
        from desktop_llm.resources import chat_example

        return chat_example()

    def data_ready(self, data_dir) -> bool:
        return ChatData.exists(data_dir)

    def prepare_data(self, run, cfg, tok, emit):
        if not ChatData.exists(run.data_dir):
            emit(ev.Phase(phase="data", message="Reading the conversations").to_dict())
            conversations = read_conversations(cfg.data.paths, cfg.data.encodings)
            info = ChatData.prepare(conversations, tok, cfg.model.sequence_length, run.data_dir,
                                    cfg.data.val_fraction, cfg.training.seed)
            if info["cut"]:
                emit(ev.Warning(message=f"{info['cut']} of {info['examples']} conversations are longer than the "
                                        f"context ({cfg.model.sequence_length} tokens): their ends were cut. Give "
                                        "the model a longer context (--context, the Model page).").to_dict())
            note = unreadable_warning(self._unknown_to_base(cfg)) if cfg.base_run else None
            if note:
                emit(ev.Warning(message=note).to_dict())
            emit(ev.Data(**info).to_dict())
        return ChatData(run.data_dir)

    def build(self, mcfg, seed=None):
        from desktop_llm.core.models.backbones.gpt import build_model

        return build_model(mcfg, seed=seed)

    def initialise(self, model, cfg, mcfg, emit) -> None:
        continuation.initialise(model, self.build, cfg, mcfg, emit)

    def check_export(self, run, fmt: str) -> None:
        from desktop_llm.core.models.backbones import gpt2_preset

        gpt2_preset.check(run.config.model)

    def write_export(self, model, tok, run, fmt: str, folder) -> dict:
        import dataclasses

        import numpy as np

        from desktop_llm.core.models import lora
        from desktop_llm.core.models.backbones import gpt2_preset

        shape = dataclasses.replace(run.config.model, vocabulary_size=model.backbone.vocabulary_size, dropout=0.0)
        model = lora.merged(model, lambda: self.build(shape))  # plain weights, LoRA folded in
        model(np.zeros((1, 1), "int32"))
        return gpt2_preset.write(model, tok, folder, dropout=run.config.model.dropout)

    def compile_args(self) -> dict:
        return weighted_token_loss()  # only the replies and their <|end|> carry weight

    def train_batches(self, data, start_step, max_steps, batch, T, seed, vocabulary):
        for step in range(start_step, max_steps + 1024):
            yield data.batch(step, batch, seed)

    def val_arrays(self, data, n_batches, batch, T, vocabulary):
        return data.val_rows(n_batches * batch)

    def _session(self, ctx, conversation):
        """A chat session holding a validation conversation up to its last reply."""
        from desktop_llm.core.generation import ChatSession

        last = max(i for i, (r, _) in enumerate(conversation) if r == "assistant")
        lead = conversation[:last]
        session = ChatSession(ctx.causal_generator(), system=next((c for r, c in lead if r == "system"), ""))
        session.history = [(r, c) for r, c in lead if r != "system"]
        return session, conversation[last][1]

    def _reply(self, ctx, conversation):
        """(the model's greedy reply, the reference, whether it ended its turn)."""
        from desktop_llm.core.generation import SamplingConfig

        session, reference = self._session(ctx, conversation)
        allowed = min(2 * len(ctx.tok.encode(reference)) + 16, ctx.cfg.model.sequence_length // 2)
        reply = session.answer(SamplingConfig(max_new_tokens=allowed, temperature=0.0))
        return reply, reference, session.stopped_by == "end" and bool(reply)  # an empty reply is no answer

    def eval_extras(self, ctx) -> dict:
        conversations = ctx.data.val_conversations[:STOP_CONVERSATIONS]
        stops = [self._reply(ctx, c)[2] for c in conversations]
        return {"val_stops": sum(stops) / len(stops)} if stops else {}

    def sample(self, ctx) -> str:
        conversation = ctx.data.val_conversations[0]
        reply, reference, ended = self._reply(ctx, conversation)
        asked = next((c for r, c in reversed(conversation) if r == "user"), "")
        return f"{asked} → {reply}{'' if ended else ' …(no end)'}   (reference: {reference})"


FAMILY = Chat()
