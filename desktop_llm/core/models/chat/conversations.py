"""Conversations for the chat family: read from the common chat formats, split, written with the
chat template and packed into training rows once, into the run's data folder (`chat.npz`,
`val_conversations.json`).

Formats:
- JSONL, one conversation per line: `{"messages": [{"role": "system"|"user"|"assistant",
  "content": "..."}, ...]}` (OpenAI's and Hugging Face's chat format), or ShareGPT's
  `{"conversations": [{"from": "human"|"gpt"|"system", "value": "..."}]}`;
- TSV: one user turn, a tab, one assistant turn per line (further columns, such as Tatoeba's
  attribution, are kept in the file and ignored here).

Rows: conversations are packed one after another into rows of context + 1 tokens (a row's
unused tail weighs nothing), so a short exchange does not waste a whole window; a conversation
longer than the context is cut, and the run says how many were.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.core.corpus import Corpus, CorpusError

ROLE_NAMES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant"}
STOP_CONVERSATIONS = 16  # validation conversations whose last reply each evaluation generates ("does it stop?")

Conversation = list[tuple[str, str]]  # (role, content), roles as in chat_template.ROLES


def read_conversations(paths, encodings=()) -> list[Conversation]:
    """Every conversation in the files; a malformed line is refused in one line that names it."""
    from desktop_llm.core.corpus import open_text

    conversations: list[Conversation] = []
    corpus = Corpus(paths=[str(p) for p in paths], encodings=dict(encodings))
    for s in corpus.usable_sources():
        if s.kind not in ("jsonl", "tsv"):
            raise CorpusError(f"{s.path}: not a chat file. Give JSONL with a \"messages\" list on each line, or a "
                              "TSV with a user turn, a tab and the assistant's reply on each line.")
        with open_text(s.path, s.encoding or "utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n").lstrip("\ufeff")
                if not line.strip():
                    continue
                where = f"{s.path}:{lineno}"
                conversation = _json_conversation(line, where) if s.kind == "jsonl" else _tsv_turns(line, where)
                if any(role == "assistant" for role, _ in conversation):
                    conversations.append(conversation)
    if len(conversations) < 2:
        raise CorpusError("No conversations found: give JSONL with a \"messages\" list on each line (roles system, "
                          "user, assistant), or a TSV with a user turn, a tab and the reply on each line.")
    return conversations


def _tsv_turns(line: str, where: str) -> Conversation:
    fields = line.split("\t")
    if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
        raise CorpusError(f"{where}: a chat TSV line is a user turn, a tab, then the assistant's reply.")
    return [("user", fields[0].strip()), ("assistant", fields[1].strip())]


def _json_conversation(line: str, where: str) -> Conversation:
    try:
        obj = json.loads(line)
    except ValueError:
        raise CorpusError(f"{where}: not a JSON object.") from None
    if not isinstance(obj, dict):
        raise CorpusError(f"{where}: not a JSON object with a \"messages\" list.")
    messages, role_key, text_key = obj.get("messages"), "role", "content"
    if messages is None and "conversations" in obj:  # ShareGPT
        messages, role_key, text_key = obj["conversations"], "from", "value"
    if not isinstance(messages, list):
        raise CorpusError(f"{where}: no \"messages\" list (fields: {', '.join(list(obj)[:12])}).")
    out: Conversation = []
    for i, m in enumerate(messages, 1):
        if not isinstance(m, dict) or not isinstance(m.get(text_key), str):
            raise CorpusError(f"{where}: message {i} has no \"{text_key}\" text.")
        role = ROLE_NAMES.get(str(m.get(role_key, "")).lower())
        if role is None:
            raise CorpusError(f"{where}: message {i} has role {m.get(role_key)!r}; the roles are system, user and "
                              "assistant.")
        out.append((role, m[text_key]))
    return out


def text_of(conversation: Conversation) -> str:
    """A conversation as one key (for leakage between the splits)."""
    return "\n".join(f"{r}: {c}" for r, c in conversation)


def assistant_share(conversations: list[Conversation]) -> float:
    """The share of the conversations' characters the model is trained to write."""
    total = sum(len(c) for conv in conversations for _, c in conv)
    return sum(len(c) for conv in conversations for r, c in conv if r == "assistant") / max(1, total)


def split(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """A boolean "is validation" per conversation: a random share, at least one, never all."""
    is_val = np.zeros(n, bool)
    is_val[np.random.default_rng(seed).permutation(n)[: min(n - 1, max(1, round(val_fraction * n)))]] = True
    return is_val


def pack(rendered: list[tuple[list[int], list[int]]], width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of `width` ids and masks, conversations packed in order; (ids, masks, conversations cut).
    A conversation that does not fit in what is left of a row starts the next one."""
    rows_ids: list[list[int]] = []
    rows_mask: list[list[int]] = []
    cut = 0
    ids_row: list[int] = []
    mask_row: list[int] = []
    for ids, mask in rendered:
        if len(ids) > width:
            cut += 1
            ids, mask = ids[:width], mask[:width]
        if len(ids_row) + len(ids) > width:
            rows_ids.append(ids_row)
            rows_mask.append(mask_row)
            ids_row, mask_row = [], []
        ids_row += ids
        mask_row += mask
    if ids_row:
        rows_ids.append(ids_row)
        rows_mask.append(mask_row)
    out_ids = np.zeros((len(rows_ids), width), np.int32)
    out_mask = np.zeros((len(rows_ids), width), np.uint8)
    for r, (i, m) in enumerate(zip(rows_ids, rows_mask)):
        out_ids[r, : len(i)] = i
        out_mask[r, : len(m)] = m
    return out_ids, out_mask, cut


class ChatData:
    """A run's conversations as packed rows (train, val) with loss masks, and the validation
    conversations themselves (for "does it stop?" and the samples)."""

    FILE = "chat.npz"

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        with np.load(folder / self.FILE) as z:
            self.arrays = {k: z[k] for k in z.files}
        self.val_conversations: list[Conversation] = [
            [tuple(m) for m in c] for c in json.loads((folder / "val_conversations.json").read_text("utf-8"))]
        # what the baselines and `bytes_per_token` read: the assistant's tokens of each split
        self.train = self._supervised("train")
        self.val = self._supervised("val")

    def _supervised(self, split_name: str) -> np.ndarray:
        ids, mask = self.arrays[f"{split_name}_ids"], self.arrays[f"{split_name}_mask"]
        return ids[mask.astype(bool)].astype(np.int64)

    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        return (Path(folder) / ChatData.FILE).exists() and (Path(folder) / "val_conversations.json").exists()

    @classmethod
    def prepare(cls, conversations: list[Conversation], tok, sequence_length: int, folder, val_fraction: float,
                seed: int) -> dict:
        from desktop_llm.core.leakage import leaked

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        is_val = split(len(conversations), val_fraction, seed)
        drop = leaked([text_of(c) for c in conversations], is_val)  # a validation copy of a training one
        order = np.random.default_rng(seed + 1).permutation(len(conversations))  # rows mix the sources
        train = [tok.render(conversations[i]) for i in order if not is_val[i]]
        val_convs = [conversations[i] for i in range(len(conversations)) if is_val[i] and not drop[i]]
        if not val_convs:  # every validation conversation repeats a training one: keep them anyway
            val_convs = [conversations[i] for i in range(len(conversations)) if is_val[i]]
        width = sequence_length + 1  # inputs and their next tokens
        train_ids, train_mask, cut = pack(train, width)
        val_ids, val_mask, val_cut = pack([tok.render(c) for c in val_convs], width)
        buf = io.BytesIO()
        np.savez(buf, train_ids=train_ids, train_mask=train_mask, val_ids=val_ids, val_mask=val_mask)
        atomic.write_bytes(folder / "val_conversations.json",
                           json.dumps(val_convs, ensure_ascii=False).encode("utf-8"))
        atomic.write_bytes(folder / cls.FILE, buf.getvalue())
        supervised = int(train_mask.sum())
        return {"examples": len(conversations), "train_examples": len(train), "val_examples": len(val_convs),
                "train_tokens": int((train_ids > 0).sum()),
                "val_tokens": int((val_ids > 0).sum()), "supervised_tokens": supervised,
                "cut": cut + val_cut, "leaked": int(drop.sum())}

    def batch(self, step: int, batch_size: int, seed: int):
        """Step `step`'s rows (inputs, next ids, their weights): drawn from the step's own seed, so a
        resumed run sees the batches the straight run saw."""
        a = self.arrays
        rows = np.random.default_rng([seed, step]).integers(0, len(a["train_ids"]), size=batch_size)
        ids, mask = a["train_ids"][rows], a["train_mask"][rows]
        return ids[:, :-1], ids[:, 1:], mask[:, 1:].astype(np.float32)

    def val_rows(self, n: int):
        a = self.arrays
        ids, mask = a["val_ids"][:n], a["val_mask"][:n]
        return ids[:, :-1], ids[:, 1:], mask[:, 1:].astype(np.float32)
