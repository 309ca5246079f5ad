"""On a CPU with bfloat16 instructions, the trainer times XLA in float32 against bfloat16 without
XLA on the run's own model, keeps the faster, and remembers it per machine and shape."""

import json

import pytest

from desktop_llm.core import speed_probe
from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.training import train_run
from desktop_llm.store import RunStore


def test_only_cpus_with_bfloat16_instructions_are_probed():
    assert speed_probe.has_bfloat16({"avx512f", "amx_bf16", "amx_tile"})
    assert speed_probe.has_bfloat16({"avx512f", "avx512_bf16"})
    assert not speed_probe.has_bfloat16({"avx2", "fma", "avx512f"})


def test_the_trainer_keeps_the_faster_setting_and_remembers_it(tmp_path, shakespeare_small, monkeypatch):
    monkeypatch.setenv("DESKTOP_LLM_SPEED_PROBE", "1")
    monkeypatch.setenv("DESKTOP_LLM_SPEED_CACHE", str(tmp_path / "speed.json"))
    monkeypatch.setattr(speed_probe, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})  # a CPU that has them
    # Which is faster depends on the machine: here the measured times are made to say each in turn.
    measured = iter([0.010, 0.005, 0.005, 0.010])
    monkeypatch.setattr(speed_probe, "time_steps", lambda model, batch: next(measured))
    store = RunStore(tmp_path / "ws")

    def run(name, width):
        cfg = RunConfig(name=name, data=DataConfig(paths=[str(shakespeare_small)]), tokenizer=TokenizerConfig(kind="char"),
                        model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=width, intermediate_dim=2 * width,
                                          sequence_length=16),
                        training=TrainConfig(max_steps=4, batch_size=4, eval_interval=4, log_interval=2, warmup_steps=0,
                                             sample_tokens=0, probes=False))
        r = store.create(cfg)
        events = []
        assert train_run(r, emit=events.append)["status"] == "completed"
        return events

    first = run("a", 16)  # bfloat16 without XLA measured faster: kept
    start = next(e for e in first if e["type"] == "start")
    assert start["policy"] == "mixed_bfloat16" and start["xla"] is False
    said = [e["message"] for e in first if e["type"] == "phase" and e.get("phase") == "speed"]
    assert said[-1].startswith("Fastest on this CPU: no XLA, bfloat16 (XLA, float32 10.0 ms · no XLA, bfloat16 5.0 ms")
    table = json.loads((tmp_path / "speed.json").read_text())
    assert len(table) == 1 and next(iter(table.values()))["label"] == "no XLA, bfloat16"
    again = run("b", 16)  # the same shape: from the cache, nothing timed
    assert next(e for e in again if e["type"] == "start")["policy"] == "mixed_bfloat16"
    assert "measured earlier" in [e["message"] for e in again if e.get("phase") == "speed"][-1]
    other = run("c", 32)  # another shape is timed: XLA in float32 wins this time
    start = next(e for e in other if e["type"] == "start")
    assert start["policy"] == "float32" and start["xla"] is True
    assert len(json.loads((tmp_path / "speed.json").read_text())) == 2
    with pytest.raises(StopIteration):  # every measurement was used: none was taken twice
        next(measured)


def test_timing_steps_trains_the_model_it_times():
    import keras
    import numpy as np

    from desktop_llm.core.models import get_family

    fam = get_family("gpt")
    model = fam.build(ModelConfig(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                  sequence_length=8), seed=1)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), **fam.compile_args(), jit_compile=True)
    x = np.random.default_rng(0).integers(0, 20, (4, 9)).astype("int32")
    before = [w.numpy().copy() for w in model.trainable_weights]
    seconds = speed_probe.time_steps(model, (x[:, :-1], x[:, 1:]))
    assert 0 < seconds < 60
    assert int(model.optimizer.iterations.numpy()) == speed_probe.WARM_CALLS + speed_probe.TIMED_CALLS
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_a_classifier_is_timed_with_its_own_classes(tmp_path, monkeypatch):
    """The probe builds the run's model: it built a two-class classifier for a three-class task,
    and the first step failed ("Timing the CPU's settings failed (Graph execution error)")."""
    monkeypatch.setenv("DESKTOP_LLM_SPEED_PROBE", "1")
    monkeypatch.setenv("DESKTOP_LLM_SPEED_CACHE", str(tmp_path / "speed.json"))
    monkeypatch.setattr(speed_probe, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(speed_probe, "WARM_CALLS", 1)
    monkeypatch.setattr(speed_probe, "TIMED_CALLS", 1)
    rows = [f"{word} {i} {word},{label}" for i in range(6)
            for word, label in (("sun", "day"), ("moon", "night"), ("tea", "noon"))]
    (tmp_path / "three.csv").write_text("text,label\n" + "\n".join(rows) + "\n", "utf-8")
    cfg = RunConfig(name="cls", family="classifier", data=DataConfig(paths=[str(tmp_path / "three.csv")]),
                    tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=16),
                    training=TrainConfig(max_steps=2, batch_size=4, eval_interval=2, log_interval=1, warmup_steps=0,
                                         sample_tokens=0))
    events = []
    assert train_run(RunStore(tmp_path / "ws").create(cfg), emit=events.append)["status"] == "completed"
    assert not [e for e in events if e["type"] == "warning" and "Timing" in e["message"]]
    assert [e for e in events if e.get("phase") == "speed" and e["message"].startswith("Fastest on this CPU")]
