"""keras-hub's BERT encoder in a run's shape, and the special ids appended after the tokenizer's
vocabulary: shared by the masked-LM family and the classifier fine-tuned on it."""

from __future__ import annotations

SPECIALS = ("[MASK]", "[CLS]", "[SEP]")  # ids V, V+1, V+2 after a vocabulary of V


def bert_parameters(mcfg) -> int:
    """keras-hub's BertBackbone in this shape: a GPT's blocks and embeddings (`count_parameters`),
    plus segment embeddings and the pooled [CLS] dense layer (checked against count_params())."""
    from desktop_llm.core.config import count_parameters

    d = mcfg.hidden_dim
    return count_parameters(mcfg) + 2 * d + d * d + d


def bert_backbone(mcfg):
    """keras-hub's BERT encoder in the run's shape (shared with the classifier family)."""
    import keras_hub

    return keras_hub.models.BertBackbone(
        vocabulary_size=mcfg.vocabulary_size, num_layers=mcfg.num_layers, num_heads=mcfg.num_heads,
        hidden_dim=mcfg.hidden_dim, intermediate_dim=mcfg.intermediate_dim, dropout=mcfg.dropout,
        max_sequence_length=mcfg.sequence_length)
