"""The baselines' arithmetic on tiny data: what the n-gram models assign, that they are
distributions, and the bits per byte that compares tokenizers."""

import math

import numpy as np
import pytest

from desktop_llm.core.baselines import (
    beaten,
    bits_per_byte,
    bytes_per_token,
    chars_per_token,
    describe,
    ngram_losses,
    verdict,
)


def test_the_unigram_is_add_one_counts():
    train = np.array([0, 0, 0, 1])  # V = 3: counts 3, 1, 0
    val = np.array([0, 2])
    p = np.array([4, 2, 1]) / (4 + 3)
    assert ngram_losses(train, val, 3)["unigram"] == pytest.approx(-(math.log(p[0]) + math.log(p[2])) / 2)


def test_each_order_is_a_distribution_over_the_next_token():
    rng = np.random.default_rng(0)
    V = 7
    train = rng.integers(0, V, 400)
    train[::5] = 3  # some structure
    u, v = 3, int(train[1])

    def logp(w, order):
        # loss of [u, v, w]: the mean over its 3 positions; the last one is the order's prediction
        losses = ngram_losses(train, np.array([u, v, w]), V)
        names = ["unigram", "bigram", "trigram"]
        first = ngram_losses(train, np.array([u, v]), V)  # the two positions before it
        return -3 * losses[names[order - 1]] + 2 * first[names[min(order, 2) - 1]]

    for order in (2, 3):
        total = sum(math.exp(logp(w, order)) for w in range(V))
        assert total == pytest.approx(1.0, abs=1e-9), order


def test_structure_lowers_the_higher_orders():
    text = np.array(list(range(5)) * 200)  # 0 1 2 3 4 0 1 2 …: the next token follows from the last
    losses = ngram_losses(text[:800], text[800:], 5)
    assert losses["unigram"] == pytest.approx(math.log(5), abs=0.01)
    assert losses["bigram"] < 0.05 and losses["trigram"] <= losses["bigram"] + 1e-9


def test_bits_per_byte_counts_the_text_not_the_tokens():
    from desktop_llm.core.tokenizers import train_tokenizer

    text = "héllo wörld, " * 20
    tok = train_tokenizer("char", [text])
    ids = np.array(tok.encode(text))
    per = bytes_per_token(tok, ids)
    assert per == pytest.approx(len(text.encode("utf-8")) / len(text))  # é and ö are two bytes
    assert bits_per_byte(math.log(2), per) == pytest.approx(1 / per)  # one bit per token
    assert bits_per_byte(float("nan"), per) is None and bits_per_byte(1.0, None) is None
    assert chars_per_token(tok, ids) == 1.0  # a character tokenizer's
    byte = train_tokenizer("byte", [text])
    assert chars_per_token(byte, np.array(byte.encode(text))) == pytest.approx(len(text) / len(text.encode("utf-8")))


def test_the_verdict_says_which_baselines_a_model_beats():
    figures = {"unigram": {"loss": 3.3}, "bigram": {"loss": 2.5}, "trigram": {"loss": 2.0}}
    assert verdict(1.5, figures) == "beats every baseline (unigram, bigram, trigram)"
    assert verdict(2.2, figures) == "beats unigram, bigram; not yet trigram"
    assert verdict(3.5, figures).startswith("worse than every baseline")
    assert verdict(None, figures) == "" and verdict(1.0, {}) == ""


def test_a_higher_is_better_metric_reads_the_other_way():
    figures = {"majority class": {"macro_f1": 0.27, "loss": 0.86}, "naive Bayes": {"macro_f1": 0.59}}
    assert verdict(0.4, figures, "macro_f1") == "beats majority class; not yet naive Bayes"
    assert verdict(0.8, figures, "macro_f1") == "beats every baseline (majority class, naive Bayes)"
    # a tie is no loss (issue 25: macro-F1 >= the baseline's): at 1.0 there is nothing left to beat
    perfect = {"majority class": {"macro_f1": 0.27}, "naive Bayes": {"macro_f1": 1.0}}
    assert verdict(1.0, perfect, "macro_f1") == "beats majority class; matches naive Bayes"
    assert beaten(1.0, perfect, "macro_f1") == (["majority class", "naive Bayes"], [])


def test_the_baselines_line_never_shows_a_negative_zero_loss():
    # a certain, right naive Bayes: its cross-entropy is -1e-12 in floating point
    line = describe({"naive Bayes": {"loss": -1e-12, "accuracy": 1.0, "macro_f1": 1.0}})
    assert line == "naive Bayes loss 0.000, accuracy 100.0%, macro-F1 1.000"


def test_naive_bayes_learns_words_that_tell_classes_apart():
    from desktop_llm.core.models.classifier.baselines import naive_bayes

    train = [np.array([1, 2]), np.array([1, 2, 2]), np.array([3, 4]), np.array([4, 4, 3])]
    post = naive_bayes(train, np.array([0, 0, 1, 1]), [np.array([2, 9]), np.array([4])], 2)
    assert post.argmax(1).tolist() == [0, 1]  # 9 was never seen: it says nothing
    np.testing.assert_allclose(np.exp(post).sum(1), 1.0)


def test_retrieval_finds_the_most_similar_source_and_short_targets_score():
    from desktop_llm.core.models.translator.baselines import nearest
    from desktop_llm.core.models.translator.decode import scores

    train = [np.array(x) for x in ([1, 2, 3, 4], [5, 6, 7], [1, 2, 9, 9, 9], [8])]
    assert nearest(train, [np.array([5, 6, 7, 1]), np.array([1, 2, 3]), np.array([8])]).tolist() == [1, 0, 3]
    # one-token targets ("5" for "five"): BLEU-4 read 0.0 however right they were
    s = scores(["5", "12", "7"], ["5", "12", "8"])
    assert s["bleu"] > 50 and s["chrf"] > 50 and s["exact_match"] == pytest.approx(2 / 3)


def test_the_class_prior_can_be_put_back_at_inference():
    """Trained on balanced batches, a classifier's logits carry no prior: with none, a text it
    cannot tell apart is a coin toss; with the training shares, the majority class (Bayes' rule)."""
    import keras

    from desktop_llm.core.models.classifier.report import predict_proba

    x = keras.Input((4,), name="token_ids")
    model = keras.Model(x, keras.layers.Dense(3, kernel_initializer="zeros")(x))  # the same logits for all
    inputs = {"token_ids": np.ones((2, 4), np.float32)}
    np.testing.assert_allclose(predict_proba(model, inputs), 1 / 3)
    prior = np.array([0.7, 0.2, 0.1])
    np.testing.assert_allclose(predict_proba(model, inputs, prior=prior), np.tile(prior, (2, 1)))


def test_the_best_evaluation_is_chosen_by_the_familys_figure():
    from types import SimpleNamespace

    from desktop_llm.core.training.context import TrainingContext

    ctx = SimpleNamespace(selection="macro_f1", best=None, best_score=None)
    seen = [TrainingContext.improves(ctx, loss, {"val_macro_f1": f1}) or None for loss, f1 in
            ((2.0, 0.3), (2.5, 0.5), (3.2, 0.45), (1.9, 0.2))]
    assert seen == [True, True, None, None] and ctx.best_score == 0.5  # its loss climbed as its F1 rose
    ctx = SimpleNamespace(selection="macro_f1", best=None, best_score=None)
    seen = []
    for loss, f1 in ((0.9, 1.0), (0.4, 1.0), (0.6, 1.0), (0.1, 0.9)):  # equal F1: the lower loss wins
        better = TrainingContext.improves(ctx, loss, {"val_macro_f1": f1})
        ctx.best = loss if better else ctx.best  # as the trainer keeps it
        seen.append(better)
    assert seen == [True, True, False, False] and ctx.best == 0.4 and ctx.best_score == 1.0
    ctx = SimpleNamespace(selection="loss", best=2.0, best_score=None)
    assert TrainingContext.improves(ctx, 1.5, {}) and not TrainingContext.improves(ctx, 2.5, {})


def test_tfidf_vectors_find_the_sentence_that_shares_its_characters():
    from desktop_llm.core.baselines import tfidf_vectors

    texts = ["the cat sat on the mat", "a cat sat on a mat", "床前明月光", "床前明月光，疑是地上霜"]
    v = tfidf_vectors(texts)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    assert sims.argmax(1).tolist() == [1, 0, 3, 2]


def test_a_classifiers_verdict_beats_ties_or_loses_on_the_same_texts():
    from desktop_llm.core.models.classifier.held_out import beats, verdict

    def rep(f1, acc, nb=0.5, majority=0.4):
        return {"macro_f1": f1, "accuracy": acc,
                "baselines": {"naive Bayes": {"macro_f1": nb}, "majority class": {"accuracy": majority}}}

    assert beats(rep(0.6, 0.7)) and verdict(rep(0.6, 0.7)).startswith("beats its baselines: macro-F1 0.600")
    assert beats(rep(1.0, 1.0, nb=1.0)) and verdict(rep(1.0, 1.0, nb=1.0)).startswith("ties naive Bayes")
    assert not beats(rep(0.4, 0.7)) and "against naive Bayes' 0.500" in verdict(rep(0.4, 0.7))
    assert not beats(rep(0.6, 0.3)) and "below always answering the majority class" in verdict(rep(0.6, 0.3))
