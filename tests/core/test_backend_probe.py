"""`--backend auto` on a CPU with several backends installed: each is timed on the run's own model
in a process of its own, the run trains on the fastest and says why, and the answer is kept per
machine and shape (core/backend_probe.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_llm.core import backend, backend_probe
from desktop_llm.core.config import ModelConfig, RunConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--layers", "1", "--heads", "2", "--width", "32", "--ffn", "64", "--context", "16", "--batch-size", "4",
        "--steps", "4", "--eval-interval", "4", "--log-interval", "2", "--warmup", "0", "--sample-tokens", "0",
        "--no-probes"]


def test_only_auto_on_one_cpu_with_the_settings_left_to_auto_is_timed(monkeypatch):
    monkeypatch.setenv("DESKTOP_LLM_SPEED_PROBE", "1")
    monkeypatch.setattr(backend, "available", lambda: ["tensorflow", "jax", "torch"])
    monkeypatch.setattr(backend, "current", lambda: backend.Choice("tensorflow", "no GPU", cpu=True))
    cfg = RunConfig(model=ModelConfig(), training=TrainConfig())
    if "keras" in sys.modules:  # (this process has loaded Keras: its backend is fixed; a new CLI's is not)
        monkeypatch.delitem(sys.modules, "keras")
    assert backend_probe.wanted("auto", cfg)
    assert not backend_probe.wanted("jax", cfg)  # asked for one
    assert not backend_probe.wanted("auto", cfg, cluster=("a:1", "b:2"))
    for changed in ({"devices": "cpu:2"}, {"mixed_precision": "bfloat16"}, {"jit_compile": False},
                    {"model_parallel": 2}):
        from dataclasses import replace

        assert not backend_probe.wanted("auto", replace(cfg, training=replace(cfg.training, **changed))), changed
    monkeypatch.setattr(backend, "current", lambda: backend.Choice("jax", "reaches the NVIDIA GPU"))
    assert not backend_probe.wanted("auto", cfg)  # a GPU decides
    monkeypatch.setattr(backend, "current", lambda: backend.Choice("tensorflow", "no GPU", cpu=True))
    monkeypatch.setattr(backend, "available", lambda: ["tensorflow"])
    assert not backend_probe.wanted("auto", cfg)  # nothing to choose
    monkeypatch.setenv("DESKTOP_LLM_SPEED_PROBE", "0")
    monkeypatch.setattr(backend, "available", lambda: ["tensorflow", "jax"])
    assert not backend_probe.wanted("auto", cfg)


@pytest.mark.skipif(len(backend.available()) < 2, reason="one backend installed: nothing to choose")
def test_auto_trains_on_the_backend_timed_fastest_and_remembers_it(tmp_path, shakespeare_small):
    cache = tmp_path / "speed.json"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(DESKTOP_LLM_HOME=str(tmp_path / "ws"), DESKTOP_LLM_SPEED_PROBE="1", DESKTOP_LLM_SPEED_CACHE=str(cache),
               PYTHONPATH=str(ROOT))

    def train():
        p = subprocess.run([sys.executable, "-m", "desktop_llm", "train", str(shakespeare_small), *TINY, "--json"],
                           capture_output=True, text=True, env=env, timeout=900, check=False)
        assert p.returncode == 0, p.stderr[-2000:]
        return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]

    first = train()
    table = json.loads(cache.read_text("utf-8"))
    (key, timed), = ((k, v) for k, v in table.items() if k.endswith("| backends"))
    assert sorted(timed["settings"]) == sorted(backend.available()) and not timed["failed"]
    ms = {name: s["ms"] for name, s in timed["settings"].items()}
    assert all(v > 0 for v in ms.values())
    fastest = min(ms, key=ms.get)
    start = next(e for e in first if e["type"] == "start")
    assert timed["backend"] == fastest == start["backend"]
    assert start["backend_reason"].startswith(f"the fastest on this CPU for this model: {ms[fastest]:.1f} ms per step")
    assert any(e["type"] == "phase" and e["message"].startswith("Timing ") for e in first)
    again = train()  # the same shape: nothing timed again
    start = next(e for e in again if e["type"] == "start")
    assert start["backend"] == fastest and start["backend_reason"].endswith("(measured earlier)")
    assert not any(e["type"] == "phase" and e["message"].startswith("Timing ") for e in again)
    assert json.loads(cache.read_text("utf-8"))[key] == timed
