"""k training steps in one compiled program (core/runners/tensorflow_fused.py) are k ordinary steps."""

import keras
import numpy as np
import tensorflow as tf

from desktop_llm.core.config import ModelConfig, RunConfig, TrainConfig
from desktop_llm.core.models.backbones.gpt import build_model
from desktop_llm.core.runners.tensorflow_fused import batch_steps, fuse_train_steps
from desktop_llm.core.training.schedule import make_optimizer

CFG = ModelConfig(vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  sequence_length=8)
RUN = RunConfig(training=TrainConfig(max_steps=8, batch_size=4, warmup_steps=2, learning_rate=3e-3))


def _trained(k: int):
    model = build_model(CFG, seed=5)
    model.compile(optimizer=make_optimizer(RUN), jit_compile=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    w = np.random.default_rng(0).integers(0, CFG.vocabulary_size, (8 * 4, 9)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((w[:, :-1], w[:, 1:])).batch(4)
    fuse_train_steps(model, k)
    # two "epochs" of 4 steps each, as the trainer's calls: 4 steps per epoch, or 1 fused element of 4
    history = model.fit(batch_steps(ds, k), epochs=2, steps_per_epoch=4 // k, verbose=0)
    return model, history.history


def test_four_fused_steps_train_the_same_weights_and_logs_as_four_steps():
    plain, plain_logs = _trained(1)
    fused, fused_logs = _trained(4)
    assert int(fused.optimizer.iterations) == int(plain.optimizer.iterations) == 8
    assert not np.allclose(plain.get_weights()[0], build_model(CFG, seed=5).get_weights()[0])  # it trained
    for a, b in zip(plain.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)
    # Keras' logs are the mean over an epoch's 4 steps in both
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(fused_logs[name], plain_logs[name], rtol=1e-4)


def test_one_step_per_call_keeps_the_models_own_train_step():
    model = build_model(CFG, seed=5)
    fuse_train_steps(model, 3)
    assert "train_step" in model.__dict__
    fuse_train_steps(model, 1)
    assert "train_step" not in model.__dict__


def test_the_step_is_traced_once_into_the_fused_program(monkeypatch):
    """One copy of the step in the compiled program: a second copy doubled the compile time."""
    from desktop_llm.core.models.backbones.gpt import GPTCausalLM

    traces = []
    own = GPTCausalLM.train_step

    def counting(self, data):
        traces.append(1)
        return own(self, data)

    monkeypatch.setattr(GPTCausalLM, "train_step", counting)
    model, _ = _trained(1)
    assert isinstance(model, GPTCausalLM)
    plain = len(traces)  # Keras may trace its train function more than once
    traces.clear()
    _trained(4)
    assert plain >= 1 and len(traces) == plain
