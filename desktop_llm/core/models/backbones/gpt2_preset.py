"""keras-hub preset: a GPT or chat run as keras-hub's own `GPT2Backbone` + `GPT2CausalLM`, written
with keras-hub's `save_to_preset`, so plain keras-hub loads it (`CausalLM.from_preset(folder)`)
with no desktop_llm installed. (Here, beside the backbone, because two families export it.)

Why GPT-2: our backbone is keras-hub's pre-LayerNorm `TransformerDecoder` with learned positions,
a final LayerNorm (epsilon 1e-5) and tied embeddings, which is GPT-2 weight for weight (same
layer names and order), so the weights copy one to one. The one difference: GPT-2 uses the tanh
approximation of GELU where ours uses the exact one (at most 4.7e-4 apart per activation), so
the preset's logits agree closely with the app's but not bit for bit. GPT-2 ties its output
layer to the token embedding, so an untied run cannot be expressed and is refused.

Preprocessor (what `generate("text")` needs): `GPT2CausalLMPreprocessor.generate_preprocess`
puts the tokenizer's start token before every prompt whatever `add_start_token` says, and our
models were trained without one (no special ids; documents are joined by blank lines), so only a
keras-hub tokenizer whose `start_token_id` is None can go in it, and of those (Qwen's, SmolLM3's,
GPT-OSS's byte-level BPE, RWKV's) only `RWKVTokenizer` takes a vocabulary of our own: its greedy
longest match over one entry per character reads a `char` run's text with the app's ids. `byte`
cannot (RWKV's decoder drops id 0 and fails on output cut inside a UTF-8 character; keras-hub's
`ByteTokenizer` has no special ids for a preprocessor), nor `wordpiece` (keras-hub's WordPiece
joins every piece with spaces) nor SentencePiece: `sentencepiece` and `bpe` runs still ship their
model as keras-hub's `SentencePieceTokenizer` (same ids and text as the app) for generating on ids.
"""

from __future__ import annotations

from pathlib import Path

# Why a kind cannot be a keras-hub preprocessor's tokenizer (see the module docstring).
NO_PREPROCESSOR = {
    "char": "its vocabulary holds a character that has no UTF-8 bytes",
    "byte": "keras-hub's byte tokenizers cannot decode output cut inside a UTF-8 character",
    "wordpiece": "keras-hub's WordPiece decoder joins every piece with spaces",
    "sentencepiece": "keras-hub's SentencePiece tokenizers all put a start token before the prompt",
    "bpe": "keras-hub's SentencePiece tokenizers all put a start token before the prompt",
}


def check(model_cfg) -> None:
    from desktop_llm.errors import ExportError

    if not model_cfg.tie_embeddings:
        raise ExportError("This run has an untied output layer and keras-hub's GPT-2 ties it to the token "
                          "embedding: export it as savedmodel, onnx or litert instead.")
    if getattr(model_cfg, "position_embedding", "learned") != "learned":
        raise ExportError(f"This run uses {model_cfg.position_embedding} positions and keras-hub's GPT-2 "
                          "learns them: export it as savedmodel, onnx or litert instead.")


def gpt2_from(model, dropout: float = 0.0, preprocessor=None):
    """A keras-hub GPT2CausalLM holding `model`'s weights."""
    import keras_hub
    import numpy as np

    from desktop_llm.errors import ExportError

    b = model.backbone
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=b.vocabulary_size, num_layers=b.num_layers, num_heads=b.num_heads,
        hidden_dim=b.hidden_dim, intermediate_dim=b.intermediate_dim, dropout=dropout,
        max_sequence_length=b.max_sequence_length, dtype="float32",
    )
    ours = {w.path: w for w in b.weights}
    theirs = {w.path: w for w in gpt2.weights}
    if set(ours) != set(theirs) or any(ours[p].shape != theirs[p].shape for p in ours):
        raise ExportError("This model's layers do not map onto keras-hub's GPT-2 one to one "
                          f"({len(ours)} weights against {len(theirs)}): export it as savedmodel instead.")
    for path, w in theirs.items():
        w.assign(np.asarray(ours[path].numpy(), dtype="float32"))
    return keras_hub.models.GPT2CausalLM(backbone=gpt2, preprocessor=preprocessor)


def preprocessor_tokenizer(tok):
    """keras-hub's RWKVTokenizer reading `tok` (a char tokenizer) with its ids and no start token,
    or None. Id 0 (`<unk>`) gets bytes no UTF-8 text holds, so it is never read (keras-hub refuses
    a character the run never saw instead) and RWKV's decoder drops it; the end token is an id the
    model cannot produce, so generation runs to `max_length` as in the app."""
    if tok.kind != "char":
        return None
    import keras_hub

    try:
        pieces = [b"\xff"] + [c.encode("utf-8") for c in tok.vocabulary()[1:]]
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 bytes
        return None
    vocabulary = [f"{i} {p!r} {len(p)}\n" for i, p in enumerate(pieces)]
    return keras_hub.tokenizers.RWKVTokenizer(vocabulary=vocabulary, pad_token_id=0, start_token_id=None,
                                              end_token_id=len(vocabulary))


def write(model, tok, folder: Path, dropout: float = 0.0) -> dict:
    """The preset; a chat run's also carries its template (chat_template.json: the special tokens'
    ids and how a conversation is written), which keras-hub's GPT-2 has no place for."""
    import keras_hub

    length = int(model.backbone.max_sequence_length)
    chat = getattr(tok, "inner", None) is not None and hasattr(tok, "end_id")
    inner = tok.inner if chat else tok  # a chat run's text tokenizer, under its template
    pretok = None if chat else preprocessor_tokenizer(tok)  # a preprocessor cannot write a template
    preprocessor = None if pretok is None else keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=pretok, sequence_length=length, add_start_token=False, add_end_token=False)
    lm = gpt2_from(model, dropout, preprocessor)
    lm.save_to_preset(str(folder))  # with a preprocessor: its tokenizer too
    notes = []
    ids = "ids = keras_hub.tokenizers.Tokenizer.from_preset(folder)(prompt)"
    if preprocessor is not None:
        tokenizer = ("keras_hub RWKVTokenizer, one entry per character (tokenizer.json, assets/tokenizer/), in a "
                     "GPT2CausalLMPreprocessor without start or end token; a character the run never saw is refused")
        usage = ["lm = keras_hub.models.CausalLM.from_preset(folder)",
                 f"text = lm.generate('ROMEO:', max_length={length})  # prompt + continuation, no stop token",
                 "lm.preprocessor = None  # to generate on token ids instead:"]
    else:
        if inner.kind in ("sentencepiece", "bpe"):  # the same ids and text as the app, for generating on ids
            inner.to_keras_hub().save_to_preset(str(folder))
            tokenizer = "keras_hub SentencePieceTokenizer (tokenizer.json, assets/tokenizer/)"
            where = "keras_hub.tokenizers.Tokenizer.from_preset(folder) makes them"
        else:
            tokenizer, where = None, "vocabulary.json maps them"
            ids = ("ids = list(prompt.encode('utf-8'))  # a byte run's ids" if inner.kind == "byte"
                   else "ids = [vocabulary.index(token) for token in your_tokens]  # vocabulary.json")
        why = ("its prompt is written with a chat template" if chat
               else NO_PREPROCESSOR.get(tok.kind, "keras-hub has no tokenizer with its ids"))
        notes.append(f"no preprocessor ({why}, so a {tok.kind} tokenizer cannot be attached): generate on "
                     f"token ids ({where})" + ("" if chat else "; train a char run for lm.generate('text')"))
        usage = ["lm = keras_hub.models.CausalLM.from_preset(folder)"]
    stop = "None"
    if chat:  # its template, for whoever writes the prompt
        from desktop_llm.core import atomic

        specials = {name: int(tok.role_ids[role]) for name, role in
                    (("<|system|>", "system"), ("<|user|>", "user"), ("<|assistant|>", "assistant"))}
        specials["<|end|>"] = int(tok.end_id)
        atomic.write_json(Path(folder) / "chat_template.json", {
            "special_tokens": specials, "message": "<|role|>, the content's ids, <|end|>",
            "reply": "the conversation's messages, then <|assistant|>: the model writes the reply and <|end|>",
            "stop_token_ids": [int(tok.end_id)]})
        notes.append("a chat run: write each message as <|role|> content <|end|> with the ids in "
                     "chat_template.json, end the prompt with <|assistant|>, and stop at <|end|>")
        ids += "; S = json.load(open(folder + '/chat_template.json'))['special_tokens']"
        ids += "; ids = [S['<|user|>'], *ids, S['<|end|>'], S['<|assistant|>']]"
        stop = f"[{int(tok.end_id)}]"
    usage += [
        ids,
        (f"x = {{'token_ids': ids padded with 0 to shape (1, {length}), 'padding_mask': 1 where a prompt "
         "id is, else 0}"),
        f"out = lm.generate(x, stop_token_ids={stop})  # out['token_ids'][0][out['padding_mask'][0]]",
    ]
    return {
        "files": {"preset": "config.json, task.json, model.weights.h5, metadata.json"
                            + (", preprocessor.json" if preprocessor is not None else "")
                            + (", chat_template.json" if chat else "")},
        "keras_hub_classes": ["GPT2Backbone", "GPT2CausalLM"]
                             + (["GPT2CausalLMPreprocessor"] if preprocessor is not None else []),
        "keras_hub_tokenizer": tokenizer,
        "generation": ("keras-hub GPT2CausalLM.generate on text" if preprocessor is not None
                       else "keras-hub GPT2CausalLM.generate on token ids (padded to the context length)"),
        "usage": usage,
        "precision": "GPT-2 uses tanh-approximate GELU where desktop_llm uses the exact one: logits agree "
                     "closely, not bit for bit",
        "notes": notes,
    }
