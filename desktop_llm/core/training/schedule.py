"""How a run steps: steps fused per compiled call, the warm-up + cosine learning rate, AdamW."""

from __future__ import annotations

import math

from desktop_llm.core.config import RunConfig


def fused_steps(cfg: RunConfig) -> int:
    """Steps per compiled call: divides the eval, checkpoint and total step counts."""
    t = cfg.training
    k = math.gcd(math.gcd(t.log_interval, t.eval_interval), math.gcd(t.checkpoint_every, t.max_steps))
    return max(1, math.gcd(k, t.freeze_steps) if t.freeze_steps else k)  # a call never spans a thaw


def learning_rate_schedule(cfg: RunConfig):
    import keras

    t = cfg.training
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if t.warmup_steps else t.learning_rate,
        decay_steps=max(1, t.max_steps - t.warmup_steps),
        alpha=t.min_learning_rate / t.learning_rate,
        warmup_target=t.learning_rate if t.warmup_steps else None,
        warmup_steps=t.warmup_steps,
    )


def learning_rate_at(cfg: RunConfig):
    """step -> the learning rate `learning_rate_schedule` gives, in plain Python (for the step
    events, between two calls while training waits: Keras' schedule evaluated eagerly is a dozen
    small ops, 0.5-4 ms on TensorFlow). Keras' formula (CosineDecay with a linear warm-up); a test
    holds the two together."""
    t = cfg.training
    peak, warm = t.learning_rate, t.warmup_steps
    decay = max(1, t.max_steps - warm)
    alpha = t.min_learning_rate / t.learning_rate

    def at(step: int) -> float:
        if warm and step < warm:
            return peak * step / warm
        done = min(step - warm, decay) / decay
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * done)) + alpha)

    return at


def make_optimizer(cfg: RunConfig, fused: bool = True):
    """AdamW; `fused` (one update over all weights, see fused_adamw.py) outside tf.distribute."""
    import keras

    from desktop_llm.core.training.fused_adamw import FusedAdamW

    t = cfg.training
    opt = (FusedAdamW if fused else keras.optimizers.AdamW)(
        learning_rate=learning_rate_schedule(cfg),
        weight_decay=t.weight_decay,
        beta_1=t.beta_1,
        beta_2=t.beta_2,
        global_clipnorm=t.grad_clip or None,
    )
    # As in GPT-2/nanoGPT: no decay on biases and LayerNorm scales/offsets.
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt
