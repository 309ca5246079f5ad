"""FusedAdamW (one update over all weights) against Keras' AdamW: the same weights and moments
after real steps on a real model, with clipping, decay exclusions, a schedule and frozen
weights; and checkpoints that move between the two."""

import keras
import numpy as np
import pytest

from desktop_llm.core.checkpoints import CheckpointManager, optimizer_arrays
from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.models.backbones.gpt import build_model
from desktop_llm.core.training.fused_adamw import FusedAdamW
from desktop_llm.core.training.schedule import make_optimizer

RUN = RunConfig(name="f", data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char"),
                model=ModelConfig(vocabulary_size=23, num_layers=2, num_heads=2, hidden_dim=16,
                                  intermediate_dim=32, sequence_length=8),
                training=TrainConfig(max_steps=40, warmup_steps=3, learning_rate=3e-2, min_learning_rate=3e-3,
                                     grad_clip=0.5, weight_decay=0.1))


def _model():
    model = build_model(RUN.model, seed=3)
    model(np.zeros((1, 8), "int32"))
    return model


def _grads(model, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True))
    return tape.gradient(loss, model.trainable_variables)


def _train(fused: bool, steps: int = 6, frozen=()):
    """`steps` updates from the same start on the same batches; from the third on, the
    gradients of `frozen` are None (so their moments are not zero when they freeze)."""
    model = _model()
    opt = make_optimizer(RUN, fused=fused)
    assert isinstance(opt, FusedAdamW) == fused
    opt.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    for step in range(steps):
        x = rng.integers(0, 23, (4, 8)).astype("int32")
        y = rng.integers(0, 23, (4, 8)).astype("int32")
        grads = [None if i in frozen and step >= 2 else g for i, g in enumerate(_grads(model, x, y))]
        opt.apply([g for g in grads if g is not None],
                  [v for i, v in enumerate(model.trainable_variables) if grads[i] is not None])
    assert int(opt.iterations.numpy()) == steps
    return model, opt


def test_the_same_steps_as_keras_adamw():
    fused_model, fused = _train(True)
    keras_model, stock = _train(False)
    start = _model().get_weights()
    moved = {w.path for w, a, b in zip(fused_model.weights, fused_model.get_weights(), start) if np.abs(a - b).max() > 1e-4}
    # every weight but the attention keys' biases (softmax is blind to them: zero gradient)
    assert {w.path for w in fused_model.weights} - moved == {f"transformer_layer_{i}/self_attention/key/bias" for i in (0, 1)}
    for a, b in zip(fused_model.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    state = optimizer_arrays(fused)
    assert [np.shape(a) for a in state] == [tuple(v.shape) for v in stock.variables]
    for a, v in zip(state, stock.variables):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-4, atol=1e-7)
    # Decay is off for biases and LayerNorm (their moving slots differ from a decayed run's).
    assert any(fused._decays) and not all(fused._decays)


def test_frozen_weights_keep_their_values_and_moments():
    names = [v.path for v in _model().trainable_variables]
    decayed = [i for i, n in enumerate(names) if not any(k in n for k in ("bias", "gamma", "beta"))]
    frozen = (*decayed[:3], names.index(next(n for n in names if "bias" in n)))
    at_freeze = _train(True, steps=2)[0].get_weights()
    fused_model, fused = _train(True, frozen=frozen)
    keras_model, stock = _train(False, frozen=frozen)
    after = fused_model.get_weights()
    variables = fused_model.trainable_variables
    for i in frozen:
        j = next(n for n, w in enumerate(fused_model.weights) if w is variables[i])
        np.testing.assert_array_equal(after[j], at_freeze[j])
    for a, b in zip(after, keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, v in zip(optimizer_arrays(fused), stock.variables):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("save_fused", [True, False])
def test_a_checkpoint_moves_between_fused_and_keras_adamw(tmp_path, save_fused):
    model, opt = _train(save_fused, steps=3)
    manager = CheckpointManager(tmp_path / "ckpt")
    ckpt = manager.save(model, opt, {"step": 3})
    other = make_optimizer(RUN, fused=not save_fused)
    assert manager.restore_optimizer(other, model.trainable_variables, manager.find("latest"))
    for a, b in zip(optimizer_arrays(other), optimizer_arrays(opt)):
        np.testing.assert_array_equal(a, b)
    assert ckpt.step == 3


def test_a_state_for_another_model_is_refused(tmp_path):
    from desktop_llm.core.checkpoints import CheckpointError

    model, opt = _train(True, steps=1)
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(model, opt, {"step": 1})
    small = build_model(ModelConfig(vocabulary_size=23, num_layers=1, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, sequence_length=8), seed=1)
    small(np.zeros((1, 8), "int32"))
    with pytest.raises(CheckpointError):
        manager.restore_optimizer(make_optimizer(RUN), small.trainable_variables, manager.find("latest"))


def test_under_loss_scaling_the_same_steps_and_a_checkpoint_for_either(tmp_path):
    """mixed_float16 (GPUs) wraps the optimizer in Keras' LossScaleOptimizer: the fused one gives
    Keras' steps there too, and its checkpoint (loss scale included) restores into either."""
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        models, opts = [], []
        for fused in (True, False):
            model = _model()
            opt = keras.optimizers.LossScaleOptimizer(make_optimizer(RUN, fused=fused))
            opt.build(model.trainable_variables)
            x = np.random.default_rng(1).integers(0, 23, (4, 8)).astype("int32")
            for _ in range(3):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                        x, tf.cast(model(x), "float32"), from_logits=True))
                    scaled = opt.scale_loss(loss)
                opt.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
            models.append(model)
            opts.append(opt)
        assert [int(o.inner_optimizer.iterations.numpy()) for o in opts] == [3, 3]  # no step skipped
        for a, b in zip(models[0].get_weights(), models[1].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
        opts[0].dynamic_scale.assign(1024.0)
        manager = CheckpointManager(tmp_path / "ckpt")
        manager.save(models[0], opts[0], {"step": 3})
        for target in (keras.optimizers.LossScaleOptimizer(make_optimizer(RUN, fused=False)),
                       keras.optimizers.LossScaleOptimizer(make_optimizer(RUN))):
            target.build(models[0].trainable_variables)
            assert manager.restore_optimizer(target, models[0].trainable_variables, manager.find("latest"))
            assert float(target.dynamic_scale.numpy()) == 1024.0
            for a, b in zip(optimizer_arrays(target), optimizer_arrays(opts[0])):
                np.testing.assert_array_equal(a, b)
        plain = make_optimizer(RUN)  # and into float32 (the scale dropped)
        assert manager.restore_optimizer(plain, models[0].trainable_variables, manager.find("latest"))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_per_tensor_clipping_is_keras_own():
    import tensorflow as tf

    results = []
    for cls in (FusedAdamW, keras.optimizers.AdamW):
        model = _model()
        opt = cls(1e-2, weight_decay=0.1, clipnorm=1e-3)
        x = np.random.default_rng(2).integers(0, 23, (4, 8)).astype("int32")
        for _ in range(2):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(x, model(x), from_logits=True))
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
