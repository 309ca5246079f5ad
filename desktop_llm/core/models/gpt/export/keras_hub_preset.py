"""keras-hub preset: the run as keras-hub's own `GPT2Backbone` + `GPT2CausalLM`, written with
keras-hub's `save_to_preset`, so plain keras-hub loads it (`GPT2CausalLM.from_preset(folder)`)
with no desktop_llm installed.

Why GPT-2: our backbone is keras-hub's pre-LayerNorm `TransformerDecoder` with learned positions,
a final LayerNorm (epsilon 1e-5) and tied embeddings, which is GPT-2 weight for weight (same
layer names and order), so the weights copy one to one. The one difference: GPT-2 uses the tanh
approximation of GELU where ours uses the exact one (at most 4.7e-4 apart per activation), so
the preset's logits agree closely with the app's but not bit for bit. GPT-2 ties its output
layer to the token embedding, so an untied run cannot be expressed and is refused.

Tokenizers: SentencePiece runs (`sentencepiece`, `bpe`) ship their model as a keras-hub
`SentencePieceTokenizer` (tokenizer.json + assets/), which tokenizes exactly as the app does. No
preprocessor is attached: keras-hub's `CausalLMPreprocessor` always puts a start token before
the prompt, and these runs were trained without one, so generation runs on token ids.
`char`, `byte` and `wordpiece` have no keras-hub tokenizer that round-trips through a preset
with the same ids and text (`char` ids are ours; keras-hub's ByteTokenizer cannot be saved to a
preset; its WordPiece decoder joins every piece with spaces): the model is exported without a
tokenizer and `vocabulary.json` maps ids to tokens.
"""

from __future__ import annotations

from pathlib import Path

NO_TOKENIZER = ("char", "byte", "wordpiece")


def check(model_cfg) -> None:
    from desktop_llm.errors import ExportError

    if not model_cfg.tie_embeddings:
        raise ExportError("This run has an untied output layer and keras-hub's GPT-2 ties it to the token "
                          "embedding: export it as savedmodel, onnx or litert instead.")
    if getattr(model_cfg, "position_embedding", "learned") != "learned":
        raise ExportError(f"This run uses {model_cfg.position_embedding} positions and keras-hub's GPT-2 "
                          "learns them: export it as savedmodel, onnx or litert instead.")


def gpt2_from(model, dropout: float = 0.0):
    """A keras-hub GPT2CausalLM holding `model`'s weights (no preprocessor)."""
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
    return keras_hub.models.GPT2CausalLM(backbone=gpt2, preprocessor=None)


def keras_hub_tokenizer(tok):
    """The keras-hub tokenizer that encodes and decodes exactly like `tok`, or None."""
    if tok.kind in ("sentencepiece", "bpe"):
        return tok.to_keras_hub()
    return None


def write(model, tok, folder: Path, dropout: float = 0.0) -> dict:
    lm = gpt2_from(model, dropout)
    lm.save_to_preset(str(folder))
    khtok = keras_hub_tokenizer(tok)
    length = int(model.backbone.max_sequence_length)
    notes = []
    if khtok is not None:
        khtok.save_to_preset(str(folder))
        tokenizer = "keras_hub SentencePieceTokenizer (tokenizer.json, assets/tokenizer/)"
        notes.append("no preprocessor is attached (keras-hub's would put a start token before the prompt, "
                     "and this model was trained without one): tokenize with "
                     "keras_hub.tokenizers.Tokenizer.from_preset(folder) and generate on token ids")
        encode = "ids = keras_hub.tokenizers.Tokenizer.from_preset(folder)(text)"
    else:
        tokenizer = None
        hint = {"byte": " (ids are the text's UTF-8 bytes: keras_hub.tokenizers.ByteTokenizer(lowercase=False) "
                        "encodes the same way)"}.get(tok.kind, "")
        notes.append(f"a {tok.kind} tokenizer has no keras-hub equivalent: the model is exported without one; "
                     f"vocabulary.json maps ids to tokens{hint}")
        encode = "ids = [vocabulary.index(token) for token in your_tokens]  # vocabulary.json"
    return {
        "files": {"preset": "config.json, task.json, model.weights.h5, metadata.json"},
        "keras_hub_classes": ["GPT2Backbone", "GPT2CausalLM"],
        "keras_hub_tokenizer": tokenizer,
        "generation": "keras-hub GPT2CausalLM.generate on token ids (padded to the context length)",
        "usage": [
            "lm = keras_hub.models.GPT2CausalLM.from_preset(folder)",
            encode,
            (f"x = {{'token_ids': ids padded with 0 to shape (1, {length}), 'padding_mask': 1 where a prompt "
             "id is, else 0}"),
            "out = lm.generate(x, stop_token_ids=None)  # out['token_ids'][0][out['padding_mask'][0]]",
        ],
        "precision": "GPT-2 uses tanh-approximate GELU where desktop_llm uses the exact one: logits agree "
                     "closely, not bit for bit",
        "notes": notes,
    }
