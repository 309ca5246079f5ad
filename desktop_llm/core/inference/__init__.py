"""Uses of a trained run beyond its own family's: sentence embeddings from an encoder run
(`embeddings`). Generation, evaluation and attention maps live beside it in `core/`."""
