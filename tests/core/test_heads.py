"""The head atlas (issue 28, view 3): TransformerLens' head-detector patterns on our attention
maps, scored at every evaluation of a probed run."""

import numpy as np
import pytest

from desktop_llm.core import heads, probes


def _heads_map(T: int, ids) -> np.ndarray:
    """(1 layer, 5 heads, T, T): previous-token, sink, induction, uniform, self."""
    m = np.zeros((1, 5, T, T))
    m[0, 0, 0, 0] = 1
    for i in range(1, T):
        m[0, 0, i, i - 1] = 1
    m[0, 1, :, 0] = 1
    for i in range(T):
        earlier = [j + 1 for j in range(i) if ids[j] == ids[i]]
        m[0, 2, i, earlier[-1] if earlier else i] = 1
        m[0, 3, i, : i + 1] = 1 / (i + 1)
        m[0, 4, i, i] = 1
    return m


def test_each_pattern_scores_the_head_that_follows_it():
    rep = heads.repeated_sequence(np.arange(100), 64, seed=1)
    assert len(rep) == 2 * heads.REPEAT_TOKENS and rep[: len(rep) // 2] == rep[len(rep) // 2:]
    text = [5, 6, 7, 5, 6, 8, 9, 5]
    s = heads.scores(_heads_map(len(text), text), text, _heads_map(len(rep), rep), rep)
    m = {k: heads.matrix(s, k)[0] for k in heads.SCORES}
    assert m["previous"][0] == pytest.approx(1.0) and m["previous"][3] < 0.3
    assert m["sink"][1] == pytest.approx(1.0) and m["sink"][0] < 0.2
    assert m["induction"][2] == pytest.approx(1.0) and m["induction"][0] < 0.1
    assert m["entropy"][3] == pytest.approx(1.0) and m["entropy"][4] == pytest.approx(0.0, abs=1e-6)
    assert m["local"][4] == pytest.approx(1.0)
    assert heads.roles(s)[0] == ["previous", "sink", "induction", "broad", "local"]


def test_the_induction_milestone_is_the_first_step_some_head_reaches_it():
    def rec(step, best):
        return {"step": step, "heads": {k: [[0.0, best if k == "induction" else 0.1]] for k in heads.SCORES}}

    recs = [rec(100, 0.05), rec(200, 0.2), rec(300, 0.55), rec(400, 0.6)]
    assert heads.curves(recs)["induction"] == [0.05, 0.2, 0.55, 0.6]
    assert heads.induction_formed(recs) == 300
    assert (300, "induction heads formed") in probes.milestones([], None, recs)
    assert heads.induction_formed(recs[:2]) is None


def test_a_probed_run_scores_every_head_at_every_evaluation(probed):
    _store, run = probed
    spec = probes.spec(run)
    assert len(spec["repeat"]) >= 4 and spec["repeat"][: len(spec["repeat"]) // 2] == spec["repeat"][len(spec["repeat"]) // 2:]
    recs = probes.records(run)
    for r in recs:
        for name in heads.SCORES:
            m = heads.matrix(r["heads"], name)
            assert m.shape == (1, 2) and np.all((m >= 0) & (m <= 1 + 1e-6)), (name, m)
    assert all(role in heads.LABELS for row in heads.roles(recs[-1]["heads"]) for role in row)
    c = heads.curves(recs)
    assert c["steps"] == [20, 40, 60] and len(c["induction"]) == 3


def test_the_induction_benchmarks_in_context_score():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "induction.py"
    spec = importlib.util.spec_from_file_location("induction_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    falling = list(np.linspace(3.0, 1.0, 100))  # later positions predicted better: in-context learning
    assert bench.icl_score(falling) == pytest.approx(np.mean(falling[80:]) - np.mean(falling[8:16]))
    assert bench.icl_score(falling) < -1.0 and bench.icl_score([2.0] * 50) == 0.0
