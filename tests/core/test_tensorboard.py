"""TensorBoard event files, written by real training runs and read back with TensorFlow's own
summary reader: the curves equal metrics.jsonl, samples are there, a resumed run appends, and a
TensorBoard folder that cannot be written costs one warning, never the run."""

from collections import defaultdict

import numpy as np

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.tensorboard_log import EVAL_SCALARS, SAMPLE_TAG, STEP_SCALARS, as_markdown, scalars
from desktop_llm.core.training import Control, train_run
from desktop_llm.store import RunStore

TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16)


def _config(corpus, steps):
    t = TrainConfig(max_steps=steps, batch_size=8, eval_interval=20, eval_batches=2, log_interval=10,
                    warmup_steps=5, learning_rate=3e-3, min_learning_rate=3e-4, sample_tokens=8)
    return RunConfig(name="tb", data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                     model=TINY, training=t)


def _event_files(run):
    return sorted((run.folder / "tensorboard").glob("events.out.tfevents.*"))


def _series(run):
    """{tag: [(step, value)]} in the order TensorBoard reads them (files by name), and
    {tag: plugin name}, from every event file of the run."""
    import tensorflow as tf

    series, plugins = defaultdict(list), {}
    for path in _event_files(run):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                value = tf.make_ndarray(v.tensor).item()
                series[v.tag].append((event.step, value.decode("utf-8") if isinstance(value, bytes) else value))
                if v.metadata.plugin_data.plugin_name:
                    plugins[v.tag] = v.metadata.plugin_data.plugin_name
    return series, plugins


def _check_against_metrics(run, series, plugins):
    """Every number of every metrics.jsonl step/eval event is in TensorBoard at its step, with
    the same value (as float32, TensorBoard's scalar type), and nothing else is; every sample is
    there as text."""
    metrics = run.metrics()
    expected = {}
    for kind, known in (("step", STEP_SCALARS), ("eval", EVAL_SCALARS)):
        rows = [m for m in metrics if m["type"] == kind]
        tags = set().union(*(scalars(m) for m in rows))
        assert set(known.values()) <= tags
        for tag in tags:
            assert plugins[tag] == "scalars"
            expected[tag] = [(m["step"], float(np.float32(scalars(m)[tag]))) for m in rows]
    evals = [m for m in metrics if m["type"] == "eval"]
    assert plugins[SAMPLE_TAG] == "text"
    expected[SAMPLE_TAG] = [(m["step"], as_markdown(m["sample"])) for m in evals]
    assert all(m["sample"] and not m["sample"].startswith("(no sample") for m in evals)
    assert dict(series) == expected


def test_event_fields_become_tags_and_bookkeeping_is_left_out():
    step = {"type": "step", "step": 10, "loss": 2.5, "lr": 1e-3, "tokens_per_sec": 900.0, "ms_per_step": 4.0,
            "elapsed": 3.0, "eta": None, "max_steps": 40, "accuracy": 0.25}
    assert scalars(step) == {"loss/train": 2.5, "learning_rate": 1e-3, "speed/tokens_per_sec": 900.0,
                             "speed/ms_per_step": 4.0, "accuracy/train": 0.25}
    ev = {"type": "eval", "step": 20, "val_loss": 2.0, "val_ppl": 7.4, "best_val_loss": 2.0, "sample": "a",
          "elapsed": 5.0, "val_accuracy": 0.5}
    assert scalars(ev) == {"loss/val": 2.0, "perplexity/val": 7.4, "accuracy/val": 0.5}
    text = "ROMEO:\n  two  spaces\n\n```"
    assert "\n".join(line[4:] for line in as_markdown(text).split("\n")) == text


def test_a_run_writes_its_curves_and_samples_for_tensorboard(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=60))
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed", st
    assert [e for e in events if e["type"] == "warning" and "baseline" not in e["message"]] == []  # (60 steps)
    assert len(_event_files(run)) == 1
    series, plugins = _series(run)
    assert [s for s, _ in series["loss/train"]] == [10, 20, 30, 40, 50, 60]
    assert [s for s, _ in series["loss/val"]] == [20, 40, 60]
    _check_against_metrics(run, series, plugins)
    # The values are the stream's too (metrics.jsonl is written from the same events).
    assert [v for _, v in series["loss/val"]] == [float(np.float32(e["val_loss"])) for e in events
                                                   if e["type"] == "eval"]


def test_a_resumed_run_appends_a_second_event_file(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=60))
    control = Control()

    def stop_at_30(e):
        if e["type"] == "step" and e["step"] == 30:
            control.request_stop()

    assert train_run(run, stop_at_30, control=control, store=store)["status"] == "stopped"
    series, _ = _series(run)
    assert [s for s, _ in series["loss/train"]] == [10, 20, 30]  # flushed and closed on stop
    assert train_run(run, store=store)["status"] == "completed"
    assert len(_event_files(run)) == 2
    series, plugins = _series(run)
    assert [s for s, _ in series["loss/train"]] == [10, 20, 30, 40, 50, 60]
    assert [s for s, _ in series["loss/val"]] == [20, 40, 60]
    _check_against_metrics(run, series, plugins)


def test_a_tensorboard_folder_that_cannot_be_made_costs_one_warning(shakespeare_small, tmp_path):
    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=20))
    taken = run.folder / "tensorboard"
    taken.write_text("a file where the folder should go\n")
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed", st
    warnings = [e["message"] for e in events if e["type"] == "warning" and "baseline" not in e["message"]]
    assert len(warnings) == 1 and "TensorBoard" in warnings[0] and str(taken) in warnings[0], warnings
    assert taken.read_text() == "a file where the folder should go\n"
    assert [(m["type"], m["step"]) for m in run.metrics()] == [("step", 10), ("step", 20), ("eval", 20)]
    assert (run.folder / "model.keras").exists()


def test_a_write_that_fails_mid_run_warns_once_and_training_goes_on(shakespeare_small, tmp_path, monkeypatch):
    """From the second step event on, every summary write fails as on a full disk (the error
    TensorFlow raises there): one warning, no further attempt, the run completes, and what was
    written before is kept. (A full disk cannot be had here without a mount; test_full_disk.py
    covers it for checkpoints and metrics.)"""
    import tensorflow as tf

    store = RunStore(tmp_path / "ws")
    run = store.create(_config(shakespeare_small, steps=40))
    real_write, calls = tf.summary.experimental.write_raw_pb, []

    def write(tensor, step, **kwargs):
        calls.append(int(step))
        if step > 10:  # the first step event's record goes through
            raise tf.errors.ResourceExhaustedError(None, None, "events.out.tfevents.1.v2; No space left on device")
        return real_write(tensor, step, **kwargs)

    monkeypatch.setattr(tf.summary.experimental, "write_raw_pb", write)
    events = []
    st = train_run(run, events.append, store=store)
    assert st["status"] == "completed", st
    warnings = [e["message"] for e in events if e["type"] == "warning" and "baseline" not in e["message"]]
    assert len(warnings) == 1 and "TensorBoard" in warnings[0] and "No space left on device" in warnings[0], warnings
    assert calls == [10, 20]  # the writer was dropped at the first failure
    assert [(m["type"], m["step"]) for m in run.metrics()] == [
        ("step", 10), ("step", 20), ("eval", 20), ("step", 30), ("step", 40), ("eval", 40)]
    series, _ = _series(run)  # what was written before the failure was flushed on closing
    assert {tag: [s for s, _ in points] for tag, points in series.items()} == {tag: [10] for tag in series}
    assert set(STEP_SCALARS.values()) <= set(series)
