"""The architectures the families build on, shared between them (a classifier fine-tunes a GPT or a
BERT encoder): the GPT decoder (`gpt.py`, `causal_decoder.py`) and the BERT encoder (`bert.py`)."""
