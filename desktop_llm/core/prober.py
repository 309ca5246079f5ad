"""What runs a run's fixed probe on its model (core/probes.py): the GPT's prober, which other
families' probers extend (core/models/masked_lm/probe.py). Apart from core/probes.py so that the
families can extend it without importing the records' module (which loads runs)."""

from __future__ import annotations

import numpy as np

CONTINUATION_TOKENS = 16  # tokens of each greedy continuation (each one a forward pass: the probe's cost)
XLA_EVALUATIONS = 40  # a run probed more often than this compiles the probe's forward pass with XLA


def compiles_with_xla(training) -> bool:
    """Whether a run's probe compiles its forward pass with XLA: only where the run does and has
    the evaluations to repay it. Measured on the reference model (2 cores of an AMD EPYC): with XLA
    the first evaluation took 4.5-5.6 s and each later one 0.25-0.33 s; as a plain graph 2.7 s, then
    0.35-0.38 s. XLA repays its compile after about 40 evaluations."""
    return training.xla_repays(XLA_EVALUATIONS)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


class Prober:
    """Runs a run's probe on a GPT: one forward function traced once per input shape (the probe's
    shapes are fixed) and no sampler (a greedy pick is an argmax): CONTINUATION_TOKENS forward passes
    of the prompts' batch, and two more, per evaluation. Another family's prober overrides
    `token_losses`, `timeline` and `loss_inputs` (core/models/masked_lm/probe.py), and `causal`."""

    causal = True  # its attention reads only the past
    reads_tokens = True  # a loss per token: the probe window's losses, the loss by position
    reads_heads = True  # attention maps through core/inspection.BlockProbe: the head atlas, dormant units

    def __init__(self, model, jit_compile: bool = True):
        from desktop_llm.core import runners

        self.model = model
        # XLA where it repays its compile (`compiles_with_xla`): 40% faster per call on the reference model
        self.forward = runners.inference(model, jit_compile)
        self._internals = None
        self._gradients = None
        self.previous = None  # (step, weights) at the last evaluation: core/health.py's change per step
        self.spec: dict = {}  # the run's probe (core/probes.measure sets it)

    @property
    def internals(self):
        """Each block's input and attention maps for a sequence (core/inspection.CausalProbe)."""
        if self._internals is None:
            from desktop_llm.core.inspection import BlockProbe

            # a graph without XLA: its two shapes trace in a fraction of XLA's compile, and run as
            # fast at this size (first evaluation 2.7 s against 3.3, then 0.22 s per evaluation, on
            # the reference model)
            self._internals = BlockProbe(self.model, jit_compile=False, causal=self.causal)
        return self._internals

    def attention(self, ids) -> np.ndarray:
        """(layers, heads, T, T) attention maps of one sequence."""
        return self.internals.maps(self.internals.inputs(ids))

    def logits(self, ids: np.ndarray) -> np.ndarray:
        import keras

        return keras.ops.convert_to_numpy(self.forward(np.asarray(ids, np.int32)))

    def token_losses(self, ids: np.ndarray) -> np.ndarray:
        """Cross-entropy of each next token of `ids` (batch, T + 1): (batch, T)."""
        log_probs = log_softmax(self.logits(ids[:, :-1]))
        return -np.take_along_axis(log_probs, ids[:, 1:, None].astype(np.int64), axis=-1)[..., 0]

    def loss_inputs(self, windows: np.ndarray) -> tuple:
        """(inputs, targets) of the family's own loss on `windows` (batch, T + 1): the next token."""
        return windows[:, :-1], windows[:, 1:]

    def gradients(self, windows: np.ndarray) -> list:
        """The gradient of the family's loss on `windows` (batch, T + 1) for each trainable weight
        (core/health.py's norms), through the backend's runner (compiled once)."""
        if self._gradients is None:
            import keras

            from desktop_llm.core import runners

            def loss(x, y):
                logits = keras.ops.cast(self.model(x, training=False), "float32")
                return keras.ops.mean(keras.ops.sparse_categorical_crossentropy(y, logits, from_logits=True))

            self._gradients = runners.get().gradients(self.model, loss)
        return self._gradients(*self.loss_inputs(np.asarray(windows, np.int32)))

    def timeline(self, tok, texts: list[str], T: int, banned=()) -> list[dict]:
        """The learning timeline's cells for `texts`: each prompt's greedy continuation, its tokens
        and their surprise."""
        return [{"tokens": [tok.decode([t]) for t in ids], "surprise": [round(s, 3) for s in surprise]}
                for ids, surprise in self.continue_greedily([tok.encode(p) for p in texts], T,
                                                            CONTINUATION_TOKENS, banned)]

    def continue_greedily(self, prompts: list[list[int]], T: int, n: int, banned=()) -> list[tuple[list[int], list[float]]]:
        """Each prompt's n greedy next tokens and their surprise (nats), all prompts in one batch of
        (prompts, T) windows: causal attention reads each row up to its own length, so right padding
        changes nothing. A row that fills its window keeps its newest half and goes on."""
        rows = [list(p[-(T - 1):]) or [0] for p in prompts]
        out: list[tuple[list[int], list[float]]] = [([], []) for _ in prompts]
        for _ in range(n):
            ids = np.zeros((len(rows), T), np.int32)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = r
            logits = np.asarray(self.logits(ids)[np.arange(len(rows)), [len(r) - 1 for r in rows]], np.float64)
            if banned:  # never picked, and out of the distribution (as the Generator's sampler does)
                logits[:, list(banned)] = -np.inf
            log_probs = log_softmax(logits)
            for i, lp in enumerate(log_probs):
                t = int(np.argmax(lp))
                out[i][0].append(t)
                out[i][1].append(float(-lp[t]))
                rows[i] = (rows[i] + [t]) if len(rows[i]) < T else rows[i][T // 2:] + [t]
        return out
