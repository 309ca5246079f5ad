"""A translator's attention maps: over the source, over its own translation, and from the
translation to the source (cross-attention), computed by core.inspection's arithmetic."""

from __future__ import annotations

import numpy as np

from desktop_llm.core.inspection import AttentionMaps, layer_maps, probe, to_numpy


def translator_maps(model, tok, text: str, kind: str) -> AttentionMaps:
    """A translator's `encoder` (source over source), `decoder` (its own translation over itself) or
    `cross` (translation over source) attention, over `text` and the model's greedy translation."""
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.models.translator.decode import Translator
    from desktop_llm.core.models.translator.pairs import special_ids
    from desktop_llm.core.models.translator.tokenizer import target_encoder

    if kind not in ("encoder", "decoder", "cross", "self"):
        raise ConfigError(f"Attention of a translator is encoder, decoder or cross (got '{kind}').")
    bb = model.backbone
    T = int(bb.max_sequence_length)
    translation = Translator(model, tok, T).translate([text])[0]
    bos, _ = special_ids(tok.vocabulary_size)
    src = tok.encode(text)[:T]
    tgt = [bos, *target_encoder(tok)(translation)[: T - 1]]
    src_ids = np.zeros((1, T), np.int32)
    src_ids[0, : len(src)] = src
    tgt_ids = np.zeros((1, T), np.int32)
    tgt_ids[0, : len(tgt)] = tgt
    src_mask, tgt_mask = (src_ids > -1).astype(np.int32), (tgt_ids > -1).astype(np.int32)
    src_mask[0, len(src):] = 0
    tgt_mask[0, len(tgt):] = 0
    enc_names = [layer.name for layer in bb.encoder_transformer_layers]
    dec_names = [layer.name for layer in bb.decoder_transformer_layers]
    # each layer's input is the output before it (BART's layers are called with keyword arguments,
    # so a layer's recorded inputs are all its tensors, not the sequence first)
    before = ["encoder_embeddings_dropout", *enc_names[:-1], "decoder_embeddings_dropout", *dec_names[:-1]]
    outs = to_numpy(probe(bb, [], before + [enc_names[-1]])(
        {"encoder_token_ids": src_ids, "encoder_padding_mask": src_mask, "decoder_token_ids": tgt_ids,
         "decoder_padding_mask": tgt_mask}))
    n_src, n_tgt = len(src), len(tgt)
    enc_out = outs[-1][0][:n_src]
    src_tokens = [tok.token_text(i) for i in src]
    tgt_tokens = ["[BOS]"] + [tok.token_text(i) for i in tgt[1:]]
    if kind in ("encoder", "self"):
        maps = [layer_maps(bb, bb.get_layer(n), x[0][:n_src], causal=False)[0]
                for n, x in zip(enc_names, outs)]
        return AttentionMaps(src, src_tokens, np.stack(maps), kind="bidirectional",
                             notes=[f"translation: {translation}"])
    dec = [layer_maps(bb, bb.get_layer(n), x[0][:n_tgt], causal=True, encoder_out=enc_out)
           for n, x in zip(dec_names, outs[len(enc_names):])]
    if kind == "decoder":
        return AttentionMaps(tgt, tgt_tokens, np.stack([d[0] for d in dec]), notes=[f"translation: {translation}"])
    return AttentionMaps(tgt, tgt_tokens, np.stack([d[1] for d in dec]), key_tokens=src_tokens, kind="cross",
                         notes=[f"translation: {translation}"])
