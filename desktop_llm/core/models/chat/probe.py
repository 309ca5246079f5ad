"""The chat family's probe: a chat model is a GPT, so the GPT's prober measures it, but its
timeline asks what a learner wants to see change over a fine-tune: the reply to a user's message.
Each prompt is a user turn written in the chat template, the cell is the greedy reply up to the
`<|end|>` that closes it (shown, so "does it stop?" is visible per evaluation)."""

from __future__ import annotations

from desktop_llm.core.prober import CONTINUATION_TOKENS, Prober


class ChatProber(Prober):
    def timeline(self, tok, texts: list[str], T: int, banned=()) -> list[dict]:
        prompts = [tok.render([("user", text)], reply=True)[0] for text in texts]
        cells = []
        for ids, surprise in self.continue_greedily(prompts, T, CONTINUATION_TOKENS, banned):
            if tok.end_id in ids:
                cut = ids.index(tok.end_id) + 1
                ids, surprise = ids[:cut], surprise[:cut]
            cells.append({"tokens": [tok.token_text(t) if t == tok.end_id else tok.decode([t]) for t in ids],
                          "surprise": [round(s, 3) for s in surprise]})
        return cells
