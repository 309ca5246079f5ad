"""The classifier family's probe: at each evaluation, the class it gives a few validation texts
(one of each class, where there are enough), with its confidence as the cell's tint, and, through
its encoder, the head atlas and the training's health. No loss per token: a classifier's loss is
per text (the probe's token views stay empty for it)."""

from __future__ import annotations

import numpy as np

from desktop_llm.core.prober import Prober


class ClassifierProber(Prober):
    reads_tokens = False

    def __init__(self, model, jit_compile: bool = True):
        from desktop_llm.core.models.classifier.gpt_head import GPTClassifier

        super().__init__(model, jit_compile)
        self.causal = isinstance(model, GPTClassifier)  # a GPT base reads the past; BERT both ways

    def timeline(self, tok, texts: list[str], T: int, banned=()) -> list[dict]:
        """Each text's class, and the surprise of that answer (-ln p: a confident answer is pale)."""
        from desktop_llm.core.models.classifier.report import classify

        classes = self.spec.get("classes") or [str(i) for i in range(int(self.model.output_shape[-1]))]
        found = classify(self.model, tok, classes, texts, T, bool(self.spec.get("specials", not self.causal)))
        return [{"tokens": [r["label"]], "surprise": [round(float(-np.log(max(r["p"], 1e-12))), 3)]} for r in found]
