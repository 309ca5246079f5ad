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
