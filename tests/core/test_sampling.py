"""Sampling settings: one validation with one-line messages; top-k clamped to the vocabulary;
loading a run for inference without Keras's optimizer warning."""

import warnings

import numpy as np
import pytest

from desktop_llm.core.config import ConfigError, ModelConfig
from desktop_llm.core.generation import Generator, SamplingConfig, SamplingError
from desktop_llm.core.tokenizers import train_tokenizer

TEXT = "To be, or not to be, that is the question.\nROMEO: hello there.\n"


@pytest.mark.parametrize("kwargs,message", [
    ({"max_new_tokens": 0}, r"Max tokens must be a whole number of at least 1 \(got 0\)"),
    ({"max_new_tokens": 2.5}, "Max tokens"),
    ({"temperature": -0.1}, "temperature must be 0 or more"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_k": -1}, "Top-k must be a whole number, 0 or more"),
    ({"top_p": 0.0}, "Top-p must be more than 0 and at most 1"),
    ({"top_p": 1.5}, r"Top-p .*\(got 1.5\)"),
    ({"seed": -3}, "seed must be a whole number"),
    ({"stop": "\n"}, "Stop sequences"),
])
def test_bad_settings_get_one_line_messages(kwargs, message):
    with pytest.raises(SamplingError, match=message) as e:
        SamplingConfig(**kwargs).validate()
    assert isinstance(e.value, ConfigError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)


def test_good_settings_pass():
    for cfg in (SamplingConfig(), SamplingConfig(temperature=0), SamplingConfig(top_k=10_000, top_p=1.0),
                SamplingConfig(top_p=0.01, seed=0, stop=("\n\n",)), SamplingConfig(max_new_tokens=np.int64(3))):
        cfg.validate()


@pytest.fixture(scope="module")
def char_model():
    from desktop_llm.core.models.backbones.gpt import build_model

    tok = train_tokenizer("char", [TEXT])
    model = build_model(ModelConfig(vocabulary_size=tok.vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, sequence_length=16), seed=1)
    return model, tok


def test_top_k_beyond_the_vocabulary_means_all_of_it(char_model):
    model, tok = char_model
    assert tok.vocabulary_size < 100
    gen = Generator(model, tok, jit_compile=False)  # (the same shapes are checked without XLA; quicker)
    for cfg in (SamplingConfig(max_new_tokens=5, top_k=10_000, seed=1),
                SamplingConfig(max_new_tokens=5, top_k=200, top_p=0.9, seed=1)):
        out = gen.generate("ROMEO:", cfg)
        assert len(out.tokens) == 5
    # The same text as sampling among exactly all the tokens.
    a = [t.id for t in gen.stream("To", SamplingConfig(max_new_tokens=8, top_k=10_000, seed=4))]
    b = [t.id for t in gen.stream("To", SamplingConfig(max_new_tokens=8, top_k=tok.vocabulary_size, seed=4))]
    assert a == b


def test_loading_a_run_does_not_warn_about_the_optimizer(char_model, tmp_path):
    """A checkpoint written during training holds the optimizer's state; loading it for inference
    must not make Keras warn 'Skipping variable loading for optimizer'."""
    import keras

    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.store import RunStore

    _, tok = char_model
    mcfg = ModelConfig(vocabulary_size=tok.vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                       intermediate_dim=32, sequence_length=16)
    run = RunStore(tmp_path / "ws").create(RunConfig(name="opt", model=mcfg))
    tok.save(run.tokenizer_dir)
    model = build_model(mcfg, seed=2)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, tok.vocabulary_size, (4, 16)).astype("int32")
    model.fit(x, x, epochs=1, batch_size=4, verbose=0)
    CheckpointManager(run.checkpoints_dir).save(model, model.optimizer, {"step": 1})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded, _, ckpt = load_for_inference(run)
    assert ckpt.step == 1
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)], [str(w.message) for w in caught]
    np.testing.assert_allclose(np.asarray(loaded(x[:1])), np.asarray(model(x[:1])), atol=1e-5)


def test_placeholders_are_never_sampled(char_model):
    """Near-uniform sampling (temperature 100) over 300 tokens would pick <unk> (1 of ~40 ids)
    about 7 times; it must pick it never: <unk> is no text, it printed as <unk> or �."""
    model, tok = char_model
    assert tok.placeholder_ids == [0] and tok.token_text(0) == "<unk>"
    gen = Generator(model, tok, jit_compile=False)
    ids = [t.id for t in gen.stream("To", SamplingConfig(max_new_tokens=300, temperature=100.0, top_k=0, seed=3))]
    assert len(ids) == 300 and 0 not in ids
    assert len(set(ids)) > tok.vocabulary_size // 2  # still sampling across the vocabulary


def test_each_tokenizer_names_its_placeholders():
    assert train_tokenizer("byte", [TEXT]).placeholder_ids == []
    sp = train_tokenizer("bpe", [TEXT * 20], 400)
    assert sp.placeholder_ids == [sp.sp.unk_id()] and sp.token_text(sp.sp.unk_id()) == "<unk>"


def test_the_decoding_rate_leaves_out_the_first_tokens_wait():
    """The first token waits for the decoding loop to compile (seconds, once): a rate over the whole
    time read 31 tokens/s for 200 tokens where 1,000 read 244. The rate is of the tokens after it."""
    from desktop_llm.core.generation import GeneratedToken, GenerationResult

    tokens = [GeneratedToken(id=1, text="a", probability=0.5, index=i) for i in range(201)]
    r = GenerationResult(text="a" * 201, tokens=tokens, seconds=7.0, first_token_seconds=6.0)
    assert r.tokens_per_second == pytest.approx(200.0)  # 200 tokens in the second after the first
    assert GenerationResult(text="a", tokens=tokens[:1], seconds=0.5, first_token_seconds=0.5).tokens_per_second == 2.0


def test_new_sampler_settings_neither_warn_of_retracing_nor_pile_up(char_model):
    """Each temperature or top-k compiles its own functions, by design: TensorFlow's "triggered
    tf.function retracing" warning from the fifth setting on told users of a fault there is not."""
    import logging

    from desktop_llm.core import generation

    model, tok = char_model
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Keep(logging.WARNING)
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        gen = Generator(model, tok, jit_compile=False)
        for i in range(generation.SETTINGS_KEPT + 2):
            gen.generate("To", SamplingConfig(max_new_tokens=3, temperature=0.5 + 0.1 * i, seed=1))
        tf_logger.warning("5 out of the last 5 calls to <f> triggered tf.function retracing.")
        tf_logger.warning("another warning")
    finally:
        tf_logger.removeHandler(handler)
    assert seen == ["another warning"]  # only the retracing warning is dropped
    assert len(gen._sampled) == generation.SETTINGS_KEPT
    latest = (0.5 + 0.1 * (generation.SETTINGS_KEPT + 1), min(SamplingConfig().top_k, tok.vocabulary_size),
              SamplingConfig().top_p)
    assert next(reversed(gen._sampled)) == latest


def test_next_tokens_are_the_models_own_distribution(char_model):
    """The top-k next tokens a learner reads: the softmax of the model's last logits, best first."""
    model, tok = char_model
    gen = Generator(model, tok, jit_compile=False)
    top = gen.next_tokens("To be", k=5)
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    ids = tok.encode("To be")
    x = np.zeros((1, model.backbone.max_sequence_length), np.int32)
    x[0, : len(ids)] = ids
    logits = np.asarray(model(x), np.float64)[0, len(ids) - 1]
    for i in getattr(tok, "placeholder_ids", []):
        logits[i] = -np.inf
    p = np.exp(logits - logits.max())
    p /= p.sum()
    best = np.argsort(-p)[:5]
    assert [t for t, _ in top] == [tok.token_text(int(i)) for i in best]
    np.testing.assert_allclose([q for _, q in top], p[best], rtol=1e-5)
    assert sum(q for _, q in gen.next_tokens("To be", k=tok.vocabulary_size)) == pytest.approx(1.0, abs=1e-6)
