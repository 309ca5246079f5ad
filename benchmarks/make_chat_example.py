"""Writes resources/conversations/chat-example.jsonl, the chat family's bundled example, from data already in
the repository: the Tatoeba pairs as translation requests in both directions, and the Tang poems as
"write a poem titled …" requests. Every line keeps its source (the Tatoeba attribution CC-BY 2.0 FR
requires; the poems are MIT, chinese-poetry). Run from the repository root:
    python benchmarks/make_chat_example.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "resources" / "parallel" / "tatoeba-cmn-eng-5k.tsv"
POEMS = ROOT / "resources" / "corpora" / "tangshi300.txt"
OUT = ROOT / "resources" / "conversations" / "chat-example.jsonl"
PAIRS_USED = 2000  # of 5,000: each gives one request, alternating direction


def conversation(user: str, assistant: str, source: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
            "source": source}


def main() -> None:
    rows = []
    lines = PAIRS.read_text("utf-8").splitlines()
    for i, line in enumerate(lines[:: len(lines) // PAIRS_USED][:PAIRS_USED]):
        en, zh, attribution = line.split("\t")[:3]
        if i % 2 == 0:
            rows.append(conversation(f"Translate into Chinese: {en}", zh, attribution))
        else:
            rows.append(conversation(f"翻译成英文：{zh}", en, attribution))
    for block in POEMS.read_text("utf-8").strip().split("\n\n"):
        title, author, *body = block.strip().split("\n")
        rows.append(conversation(f"写一首题为《{title}》的诗", "\n".join(body),
                                 f"唐诗三百首, {author}: chinese-poetry (MIT)"))
    random.Random(0).shuffle(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"{len(rows)} conversations -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
