"""Training health per layer (issue 28, view 4): weight norms, the net change per step, gradient
norms, dormant feed-forward units and the largest attention logit, in every probe record, and
their flags."""

import numpy as np
import pytest

from desktop_llm.core import health, probes


def test_every_evaluation_records_each_layers_health(probed):
    _store, run = probed
    recs = probes.records(run)
    first, *later = [r["health"] for r in recs]
    assert first["groups"] == ["embeddings", "block 0", "final norm"]
    assert "change_per_step" not in first  # nothing to compare with yet
    for h in later:
        assert len(h["change_per_step"]) == 3 and all(0 < c < 1 for c in h["change_per_step"])
        assert all(n > 0 for n in h["weight_norm"]) and len(h["dormant"]) == len(h["max_logit"]) == 1
        assert 0 <= h["dormant"][0] <= 1 and h["max_logit"][0] > 0
    for h in (first, *later):  # every group gets a gradient, the first evaluation's too
        assert len(h["grad_norm"]) == 3 and all(n > 0 for n in h["grad_norm"])
    steps, names, values = health.series(recs, "change_per_step")
    assert steps == [20, 40, 60] and names == first["groups"] and np.isnan(values[0]).all()


def test_the_change_per_step_is_the_weights_own_arithmetic():
    import keras

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models import get_family

    model = get_family("gpt").build(ModelConfig(vocabulary_size=12, num_layers=2, num_heads=2, hidden_dim=8,
                                                intermediate_dim=16, sequence_length=8), seed=3)
    ids = [1, 2, 3, 4, 5, 6, 7, 8]
    rec, kept = health.measure(model, ids, None, step=10)
    assert rec["groups"] == ["embeddings", "block 0", "block 1", "final norm"] and kept[0] == 10
    block1 = [w for w in model.weights if w.path.startswith(model.backbone.transformer_layers[1].name + "/")]
    before = np.sqrt(sum(float((w.numpy() ** 2).sum()) for w in block1))
    for w in block1:  # only block 1 moves: by 1% of its norm in all, over 5 steps
        w.assign(w.numpy() * 1.01)
    rec2, _ = health.measure(model, ids, kept, step=15)
    change = dict(zip(rec2["groups"], rec2["change_per_step"]))
    assert change["block 1"] == pytest.approx(0.01 / 5, rel=1e-3) and change["block 0"] == 0.0
    assert rec2["weight_norm"][2] == pytest.approx(before * 1.01, rel=1e-4)
    assert keras.ops.convert_to_numpy(model.weights[0]).shape == (12, 8)
    flagged = health.flags([{"step": 15, "health": rec2}])
    assert (15, "block 0 barely changes (0.0e+00 per step; about 0.001 is usual)") in flagged


def test_flags_say_in_plain_words_what_is_off():
    rec = {"groups": ["embeddings", "block 0"], "weight_norm": [1, 1], "change_per_step": [5e-2, 1e-3],
           "dormant": [0.5], "max_logit": [142.0]}
    said = [w for _, w in health.flags([{"step": 100, "health": {**rec, "max_logit": [12.0]}},
                                        {"step": 200, "health": rec}])]
    assert said == ["embeddings changes fast (5.0e-02 per step; about 0.001 is usual)",
                    "50% of block 0's feed-forward units are dormant",
                    "block 0's attention logits reach 142: large logits grow toward instability"]
    assert health.flags([{"step": 200, "health": rec}])[-1][0] == 200


def test_the_gradient_norms_are_the_losss_own_gradient_per_group():
    """The probe's gradient through the runner, against a finite difference of the same loss: moving
    block 0's weights along its gradient changes the loss by |g|^2 * eps."""
    import keras

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models import get_family

    model = get_family("gpt").build(ModelConfig(vocabulary_size=12, num_layers=2, num_heads=2, hidden_dim=8,
                                                intermediate_dim=16, sequence_length=8), seed=3)
    prober = probes.Prober(model, jit_compile=False)
    windows = np.random.default_rng(0).integers(0, 12, (3, 9)).astype(np.int32)

    def loss():
        return float(prober.token_losses(windows).mean())

    grads = prober.gradients(windows)
    norms = dict(zip(health.groups(model), health.gradient_norms(model, grads)))
    assert set(norms) == {"embeddings", "block 0", "block 1", "final norm"} and all(v > 0 for v in norms.values())
    block0 = {id(w) for w in health.groups(model)["block 0"]}
    eps, before = 1e-3, loss()
    for v, g in zip(model.trainable_variables, grads):
        if id(v) in block0:
            v.assign(keras.ops.convert_to_numpy(v) - eps * g)
    assert before - loss() == pytest.approx(eps * norms["block 0"] ** 2, rel=0.05)


def test_the_training_step_keeps_each_groups_gradient_norm_between_evaluations():
    """FusedAdamW's kept norms, step by step, against the same loss's gradient through the probe's
    runner on the same batch before each step: the mean, the largest and its step over an interval
    of 3 steps; the fourth step starts the next interval; and checkpoints do not carry them."""
    import keras

    from desktop_llm.core.checkpoints import optimizer_arrays
    from desktop_llm.core.config import ModelConfig, RunConfig
    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import make_optimizer

    family = get_family("gpt")
    model = family.build(ModelConfig(vocabulary_size=12, num_layers=2, num_heads=2, hidden_dim=8,
                                     intermediate_dim=16, sequence_length=8, dropout=0.0), seed=3)
    opt = make_optimizer(RunConfig())
    opt.track_gradients(*health.group_index(model), every=3)
    model.compile(optimizer=opt, **family.compile_args(), jit_compile=False)
    prober = probes.Prober(model, jit_compile=False)
    rng = np.random.default_rng(0)
    expected = []
    for _ in range(4):
        windows = rng.integers(0, 12, (4, 9)).astype(np.int32)
        grads = prober.gradients(windows)
        expected.append(health.gradient_norms(model, grads) + [health._norm([g for g in grads if g is not None])])
        if len(expected) == 3:
            before = opt.gradient_stats()  # after two steps: two of the interval's three
        keras.Model.train_on_batch(model, windows[:, :-1], windows[:, 1:])
        if len(expected) == 3:
            third = opt.gradient_stats()
    e = np.array(expected)
    assert before["steps"] == 2 and np.allclose(before["mean"], e[:2].mean(0), rtol=1e-3)
    assert third["steps"] == 3 and np.allclose(third["mean"], e[:3].mean(0), rtol=1e-3)
    assert np.allclose(third["max"], e[:3].max(0), rtol=1e-3) and third["at"] == (e[:3].argmax(0) + 1).tolist()
    fourth = opt.gradient_stats()
    assert fourth["steps"] == 1 and np.allclose(fourth["mean"], e[3], rtol=1e-3) and set(fourth["at"]) == {4}
    plain = make_optimizer(RunConfig(), fused=False)  # Keras' own AdamW
    plain.build(model.trainable_variables)
    assert len(optimizer_arrays(opt)) == len(plain.variables)  # the checkpoint's layout is Keras' own


def test_a_spike_between_evaluations_is_placed_at_its_step_and_says_it_was_clipped():
    def rec(step, mean, peak, at, total):
        return {"step": step, "health": {"groups": ["embeddings", "block 0"], "weight_norm": [1, 1],
                                         "grad_norm": mean, "grad_peak": peak, "grad_peak_step": at,
                                         "grad_total": total, "grad_clip": 1.0, "dormant": [0.0], "max_logit": [3.0]}}

    recs = [rec(100, [1.0, 2.0], [1.5, 3.0], [50, 60], [2.2, 3.3, 60]),
            rec(200, [1.2, 2.1], [1.6, 3.1], [150, 160], [2.4, 3.4, 160]),
            rec(300, [0.9, 1.9], [1.2, 2.9], [250, 260], [2.1, 3.1, 260]),
            rec(400, [1.1, 2.2], [1.4, 40.0], [350, 377], [2.5, 40.1, 377]),  # one step's spike: the mean barely moves
            rec(500, [1.0, 2.0], [1.5, 3.0], [450, 460], [2.2, 3.3, 460])]
    assert health.spikes(recs) == [(377, "gradient spike in block 0 (20x its usual norm; clipped)")]


def test_a_gradient_spike_is_flagged_and_marked_on_the_curve():
    def rec(step, g):
        return {"step": step, "health": {"groups": ["embeddings", "block 0"], "weight_norm": [1, 1],
                                         "grad_norm": g, "dormant": [0.0], "max_logit": [3.0]}}

    recs = [rec(100, [1.0, 2.0]), rec(200, [1.2, 2.1]), rec(300, [0.9, 1.9]), rec(400, [1.1, 30.0]),
            rec(500, [1.0, 2.0])]
    assert health.spikes(recs) == [(400, "gradient spike in block 0 (15x its usual norm)")]
    assert (400, "gradient spike in block 0 (15x its usual norm)") in health.flags(recs)
    assert (400, "gradient spike in block 0 (15x its usual norm)") in probes.milestones([], None, recs)
