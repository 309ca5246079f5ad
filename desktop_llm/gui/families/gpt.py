"""The GPT in the window. It writes text, so the Generate page gives it its prompt and chat tabs
(for every family with `writes_text`), and Side by side: runs or steps of training compared."""

from __future__ import annotations

from desktop_llm.gui.families.side_by_side import SideBySidePanel
from desktop_llm.gui.families.start_from import StartFromOptions


class ContinueOptions(StartFromOptions):
    """Continued pretraining: a GPT run's tokenizer, shape and weights, on new text."""

    FAMILY, BASES, PRESETS = "gpt", ("gpt",), True
    TIP = ("A GPT run to continue on this corpus (continued pretraining: its tokenizer, shape and best weights, "
           "at a gentler learning rate), or a keras-hub GPT-2 preset folder; or scratch: a new model with the "
           "Tokenizer and Model pages' settings")


CHOICE = "GPT: predict the next token"  # the Train page's family menu
TrainOptions = ContinueOptions
TABS: tuple = (SideBySidePanel,)
HEADER = ("Generate", "Let a trained model write. Tokens appear as they are sampled.")
ATTENTION_NOTE = "A GPT's mask is causal: each token sees only the tokens before it."  # the Attention page, for its runs
EVALUATE_ELSEWHERE = None  # the Evaluate page: where this family's own evaluation is
