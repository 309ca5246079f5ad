"""Real training of tiny models: learning, stop/resume on the same curve, failures."""

import math
import time
from collections import Counter

import numpy as np
import pytest

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.data import TokenData
from desktop_llm.core.training import Control, train_run
from desktop_llm.store import RunStore

TINY = ModelConfig(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128, sequence_length=32)


def _config(corpus, steps=300, **train):
    t = {"max_steps": steps, "batch_size": 16, "eval_interval": 100, "eval_batches": 4, "log_interval": 10,
         "warmup_steps": 20, "learning_rate": 3e-3, "min_learning_rate": 3e-4, "sample_tokens": 0}
    t.update(train)
    return RunConfig(name="t", data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                     model=TINY, training=TrainConfig(**t))


def _unigram_loss(data: TokenData) -> float:
    counts = Counter(np.asarray(data.train).tolist())
    total = sum(counts.values())
    val = np.asarray(data.val).tolist()
    return -sum(math.log(counts.get(t, 0.5) / total) for t in val) / len(val)


def test_tiny_gpt_learns_below_the_unigram_baseline(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=300))
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed", st
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [100, 200, 300]
    baseline = _unigram_loss(TokenData(run.data_dir))
    assert evals[-1]["val_loss"] < baseline - 0.5, (evals[-1]["val_loss"], baseline)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    steps = [e for e in events if e["type"] == "step"]
    assert all(e["tokens_per_sec"] > 0 for e in steps)
    # No ETA from the first call (it compiles); then one from the recent pace, down to 0 at the end.
    assert steps[0]["eta"] is None and all(e["eta"] >= 0 for e in steps[1:]) and steps[-1]["eta"] == 0
    # Metrics on disk match the stream; the run is listed with its best loss.
    on_disk = [m for m in run.metrics() if m["type"] == "eval"]
    assert [m["val_loss"] for m in on_disk] == [e["val_loss"] for e in evals]
    row = store.list()[0]
    assert row["status"] == "completed" and row["best_val_loss"] == pytest.approx(min(e["val_loss"] for e in evals))
    assert (run.folder / "model.keras").exists()


def test_stop_then_resume_continues_the_same_curve(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    straight = store.create(_config(shakespeare_small, steps=200))
    ref = []
    train_run(straight, ref.append, store=store)

    run = store.create(_config(shakespeare_small, steps=200))
    control = Control()
    first = []

    def emit(e):
        first.append(e)
        if e["type"] == "step" and e["step"] >= 60:
            control.request_stop()

    st = train_run(run, emit, control=control, store=store)
    assert st["status"] == "stopped" and st["step"] == 60
    assert run.status()["status"] == "stopped"
    second = []
    st = train_run(run, second.append, store=store)
    assert st["status"] == "completed"
    assert second[0]["type"] == "resumed_from" and second[0]["step"] == 60

    def losses(evs):
        return {e["step"]: e["loss"] for e in evs if e["type"] == "step"}

    ref_l, got = losses(ref), {**losses(first), **losses(second)}
    assert sorted(got) == sorted(ref_l)
    for step in ref_l:
        assert got[step] == pytest.approx(ref_l[step], rel=2e-3, abs=2e-3), step
    # The metrics history has every step exactly once.
    steps = [m["step"] for m in run.metrics() if m["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 200


def test_diverging_run_fails_cleanly_with_a_suggestion(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=100, learning_rate=1.0, min_learning_rate=1.0,
                               warmup_steps=0, grad_clip=0.0, eval_interval=50))
    events = []
    st = train_run(run, events.append, store=store)
    # With lr=1 and no clipping the loss explodes to NaN/inf, or stays far above a learning run.
    if st["status"] == "failed":
        assert "learning rate" in st["suggestion"]
        assert events[-1]["type"] == "failed"
    else:
        assert [e for e in events if e["type"] == "eval"][-1]["val_loss"] > 2.5


def test_context_longer_than_the_data_is_refused(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("tiny corpus " * 20, encoding="utf-8")
    store = RunStore(tmp_path / "ws")
    cfg = _config(small, steps=50)
    run = store.create(cfg)
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "failed"
    assert "too few for a context" in st["message"]
    assert store.list()[0]["status"] == "failed"


def test_eta_comes_from_the_recent_pace_not_the_compiling_first_call():
    """Issue 15: '1m 30s' at step 40 of a run that ended 20 s later. The first call (compiling)
    and the first evaluation (compiling validation and sampling) are left out of the estimate."""
    from collections import deque

    from desktop_llm.core.training import TrainingContext

    cfg = _config("x.txt", steps=300)
    ctx = TrainingContext.__new__(TrainingContext)
    ctx.cfg, ctx.step = cfg, 10
    ctx.recent_step_times, ctx.eval_times = deque(maxlen=20), []
    assert ctx.eta() is None  # only the first call so far: no estimate rather than a wrong one
    ctx.recent_step_times.extend([0.010, 0.012, 0.011])  # 10-12 ms a step once compiled
    ctx.eval_times = [9.0]  # the first evaluation compiled: not counted
    ctx.step = 40
    assert abs(ctx.eta() - 260 * 0.011) < 1e-9
    ctx.eval_times = [9.0, 0.5, 0.5]
    evals_left = (300 - 40) // cfg.training.eval_interval
    assert abs(ctx.eta() - (260 * 0.011 + evals_left * 0.5)) < 1e-9


def test_the_input_pipeline_gives_train_batch_windows_in_graph_or_from_python(tmp_path, monkeypatch):
    """The windows are cut in the graph (a split held as one tensor) or in Python (a split too big
    to hold): both give exactly `train_batch(step)` for each step, from any starting step."""
    import desktop_llm.core.data as data_mod
    from desktop_llm.core.corpus import Corpus
    from desktop_llm.core.data import prepare
    from desktop_llm.core.models import get_family
    from desktop_llm.core.runners import tensorflow_runner
    from desktop_llm.core.tokenizers import train_tokenizer

    text = "".join(f"line {i}: to be or not to be, that is the question.\n" for i in range(400))
    (tmp_path / "c.txt").write_text(text)
    corpus = Corpus(paths=[str(tmp_path / "c.txt")])
    tok = train_tokenizer("char", corpus.iter_text())
    prepare(corpus, tok, tmp_path / "data", 0.1)
    data = TokenData(tmp_path / "data")
    for limit in (data_mod.IN_GRAPH_MAX_TOKENS, 10):  # in the graph, then in Python
        monkeypatch.setattr(data_mod, "IN_GRAPH_MAX_TOKENS", limit)
        ds = tensorflow_runner.train_dataset(get_family("gpt"), data, 5, 80, 3, 16, 7, tok.vocabulary_size)
        for step, (x, y) in zip(range(5, 75), ds):
            want_x, want_y = data.train_batch(step, 3, 16, 7)
            assert x.dtype == "int32" and np.array_equal(x.numpy(), want_x) and np.array_equal(y.numpy(), want_y)
    # A run of a billion steps: its windows are drawn a block at a time, not all before the first
    # step (a million steps' starts took 50 s up front).
    monkeypatch.setattr(data_mod, "IN_GRAPH_MAX_TOKENS", 1 << 27)
    huge = tensorflow_runner.train_dataset(get_family("gpt"), data, 3, 10**9, 3, 16, 7, tok.vocabulary_size)
    x, _ = next(iter(huge))
    assert np.array_equal(x.numpy(), data.train_batch(3, 3, 16, 7)[0])


def test_step_time_counts_the_loop_between_calls_but_not_evaluations(shakespeare_small, tmp_path):
    # The loop's own work after a call (events, status) is part of the next step time, as in
    # nanoGPT's per-iteration time; an evaluation is not. Both are made slow here on purpose: a
    # 0.3 s pause in each step event, 3 s in each eval event.
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=60, log_interval=10, eval_interval=30))
    events = []

    def emit(e):
        events.append(e)
        time.sleep({"step": 0.3, "eval": 3.0}.get(e["type"], 0.0))

    assert train_run(run, emit, store=store)["status"] == "completed"
    steps = {e["step"]: e for e in events if e["type"] == "step"}
    assert sorted(steps) == [10, 20, 30, 40, 50, 60]
    for s in (20, 30, 50, 60):  # after a plain call: the 0.3 s of the previous event is in
        assert steps[s]["ms_per_step"] * 10 >= 300, steps[s]
    assert steps[40]["ms_per_step"] * 10 < 3000, steps[40]  # after the evaluation at 30: not in
