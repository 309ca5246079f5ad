import numpy as np
import pytest

from desktop_llm.core.config import ConfigError, ModelConfig, count_parameters, estimate, preset
from desktop_llm.core.generation import Generator, SamplingConfig
from desktop_llm.core.inspection import attention_weights
from desktop_llm.core.models.backbones.gpt import build_model, load_model
from desktop_llm.core.tokenizers import train_tokenizer

CFG = ModelConfig(vocabulary_size=256, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
                  sequence_length=32)


@pytest.fixture(scope="module")
def model():
    return build_model(CFG, seed=3)


def test_parameter_count_matches_the_estimate(model):
    assert model.count_params() == count_parameters(CFG)
    untied = build_model(ModelConfig(**{**CFG.__dict__, "tie_embeddings": False}), seed=1)
    assert untied.count_params() == count_parameters(untied_cfg := ModelConfig(**{**CFG.__dict__, "tie_embeddings": False}))
    assert untied_cfg.tie_embeddings is False
    e = estimate(preset("small", vocabulary_size=65))
    assert e.flops_per_token == 6 * e.parameters + 12 * 4 * 64 * 128


@pytest.mark.parametrize("kwargs,message", [
    ({"hidden_dim": 130, "num_heads": 4}, "divisible"),
    ({"num_layers": 0}, "positive"),
    ({"dropout": 1.5}, "Dropout"),
    ({"sequence_length": 1}, "at least 2"),
])
def test_impossible_configurations_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{**CFG.__dict__, **kwargs}).validate()


def test_save_and_load_gives_identical_outputs(model, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (2, 20)).astype("int32")
    path = tmp_path / "m.keras"
    model.save(str(path))
    again = load_model(str(path))
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


def test_attention_rows_sum_to_one_under_the_causal_mask(model):
    ids = list(range(5, 25))
    w = attention_weights(model, ids)
    assert w.shape == (2, 2, 20, 20)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((20, 20), bool), k=1)
    assert np.all(w[..., upper] == 0)


def test_cached_greedy_generation_equals_recomputing(model):
    tok = train_tokenizer("byte", [])
    gen = Generator(model, tok)
    cfg = SamplingConfig(max_new_tokens=45, temperature=0)  # > context: exercises the window slide
    with_cache = [t.id for t in gen.stream("Hello there", cfg, use_cache=True)]
    without = [t.id for t in gen.stream("Hello there", cfg, use_cache=False)]
    assert len(with_cache) == 45
    assert with_cache == without
    # No recompilation between requests of different lengths.
    list(gen.stream("A much longer prompt than the first one", SamplingConfig(max_new_tokens=3, temperature=0)))
    greedy = gen._sampling(SamplingConfig(temperature=0))
    assert [f.experimental_get_tracing_count() for f in greedy.functions()] == [1, 1, 1]


def test_sampling_is_seeded_and_stops(model):
    tok = train_tokenizer("byte", [])
    gen = Generator(model, tok)
    cfg = SamplingConfig(max_new_tokens=20, temperature=1.0, top_k=20, seed=7)
    a = [t.id for t in gen.stream("x", cfg)]
    b = [t.id for t in gen.stream("x", cfg)]
    assert a == b
    c = [t.id for t in gen.stream("x", SamplingConfig(max_new_tokens=20, temperature=1.0, top_k=20, seed=8))]
    assert c != a  # another seed, another text, from the same compiled step
    assert all(0.0 < t.probability <= 1.0 for t in gen.stream("x", cfg))
    top_p = [t.id for t in gen.stream("x", SamplingConfig(max_new_tokens=10, top_p=0.5, seed=1))]
    assert len(top_p) == 10
    first = gen.generate("x", SamplingConfig(max_new_tokens=20, temperature=0))
    stop = first.text[3:5]
    cut = gen.generate("x", SamplingConfig(max_new_tokens=20, temperature=0, stop=(stop,)))
    assert cut.stopped_by == f"stop:{stop}" and stop not in cut.text and len(cut.tokens) < 20


def test_tokens_per_call_changes_speed_not_text(model, monkeypatch):
    """Decoding several tokens per compiled call must give the seeded text of one token per call,
    across window slides, with the cache and without."""
    from desktop_llm.core import generation

    tok = train_tokenizer("byte", [])
    gen = Generator(model, tok)
    cfg = SamplingConfig(max_new_tokens=70, temperature=1.0, top_k=30, seed=11)  # > 2 context windows
    runs = {}
    for seconds in (0.0, 10.0):  # 0 s per call -> 1 token per call; 10 s -> the buffer's 32
        monkeypatch.setattr(generation, "CALL_SECONDS", seconds)
        for cache in (True, False):
            runs[seconds, cache] = [(t.id, round(t.probability, 5)) for t in gen.stream("Once", cfg, use_cache=cache)]
    assert len(runs[0.0, True]) == 70
    assert runs[0.0, True] == runs[10.0, True]
    assert runs[0.0, False] == runs[10.0, False]


def test_the_cli_and_the_window_fit_a_config_by_one_rule():
    """Issue 11: the CLI made a too-long warm-up a tenth of the run, the window one step short of
    it. Both now use TrainConfig.fitted()."""
    from desktop_llm.cli import build_parser
    from desktop_llm.cli.train import run_config
    from desktop_llm.core.config import TrainConfig

    t = TrainConfig(max_steps=50, warmup_steps=100, eval_interval=250, learning_rate=1e-3,
                    min_learning_rate=5e-3).fitted()
    assert (t.warmup_steps, t.eval_interval, t.min_learning_rate) == (5, 50, 1e-3)
    t.validate()
    assert TrainConfig(max_steps=2000).fitted() == TrainConfig(max_steps=2000)  # a fitting config stays
    args = build_parser().parse_args(["train", "x.txt", "--steps", "50", "--warmup", "100"])
    assert run_config(args).training == TrainConfig(max_steps=50, warmup_steps=100).fitted()


def test_training_attention_is_causal_through_the_kernel_and_matches_keras_hub(model, tmp_path, monkeypatch):
    """Where the backend has a causal kernel (JAX, PyTorch), the training pass asks for `is_causal`
    (no mask tensor: what lets cuDNN's flash kernel skip the masked half) and computes what
    keras-hub's masked decoder computes, from the same checkpoint; a future token never changes an
    earlier position's logits. The route is Keras code, so it is checked here on TensorFlow."""
    import keras_hub
    from keras.src import ops as kops

    from desktop_llm.core.models.backbones import gpt

    assert gpt.causal_decoder.CAUSAL_KERNEL is False  # TensorFlow keeps keras-hub's mask (LiteRT)
    monkeypatch.setattr(gpt.causal_decoder, "CAUSAL_KERNEL", True)

    calls = []
    attend = kops.dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("is_causal"), kwargs.get("mask") is None))
        return attend(*args, **kwargs)

    monkeypatch.setattr(kops, "dot_product_attention", spy)
    x = np.random.default_rng(5).integers(0, 256, (3, CFG.sequence_length)).astype("int32")
    ours = np.asarray(model(x, training=True))
    assert calls == [(True, True)] * CFG.num_layers

    with monkeypatch.context() as m:
        m.setattr(gpt.causal_decoder, "TransformerDecoder", keras_hub.layers.TransformerDecoder)
        stock = build_model(CFG, seed=9)
    # Checkpoints go both ways: keras-hub's decoder reads ours, and ours reads one written before.
    model.save_weights(tmp_path / "ours.weights.h5")
    stock.load_weights(tmp_path / "ours.weights.h5")
    again = build_model(CFG, seed=11)
    stock.save_weights(tmp_path / "stock.weights.h5")
    again.load_weights(tmp_path / "stock.weights.h5")
    np.testing.assert_allclose(np.asarray(again(x)), ours, atol=1e-6)
    calls.clear()
    theirs = np.asarray(stock(x, training=True))
    assert calls == [(False, False)] * CFG.num_layers  # keras-hub's explicit (batch, T, T) mask
    np.testing.assert_allclose(ours, theirs, atol=1e-5)

    future = x.copy()
    future[:, 20:] = (future[:, 20:] + 1) % 256
    changed = np.asarray(model(future, training=True))
    np.testing.assert_allclose(changed[:, :20], ours[:, :20], atol=1e-5)
    assert np.abs(changed[:, 20:] - ours[:, 20:]).max() > 1e-3


def test_attention_dropout_still_masks_the_future(monkeypatch):
    """With attention dropout Keras takes its unfused path, which builds the causal mask itself:
    in training mode no earlier position's output depends on a later position's input."""
    import tensorflow as tf

    from desktop_llm.core.models.backbones import causal_decoder

    monkeypatch.setattr(causal_decoder, "CAUSAL_KERNEL", True)

    m = build_model(ModelConfig(**{**CFG.__dict__, "dropout": 0.3}), seed=4)
    layer = m.backbone.transformer_layers[0]
    x = tf.random.normal((2, CFG.sequence_length, CFG.hidden_dim), seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        early = tf.reduce_sum(y[:, :16] ** 2)
    grad = tape.gradient(early, x).numpy()
    assert np.abs(grad[:, 16:]).max() == 0.0
    assert np.abs(grad[:, :16]).max() > 1e-4
