"""On a CPU, which settings train this model fastest: a short probe, cached per machine and shape.

Which is fastest depends on the CPU (benchmarks/README.md, issue 27). On AMD EPYC with AVX-512,
TensorFlow with XLA in float32 is the fastest setting (34.6 ms per step on the reference model,
38.8 with XLA in bfloat16, 53.3 and 55.4 without XLA). On Intel Xeon with AMX, XLA makes no oneDNN
call, so its matmuls never reach AMX, and the `base` preset trained in 1,294 ms per step without
XLA in bfloat16 against 2,375 with XLA in float32. So where the CPU has bfloat16 instructions
(AMX or AVX512_BF16), the trainer times a few steps of the run's own model both ways before it
starts, once per machine and shape, and keeps the faster. Without bfloat16 instructions nothing
is probed: bfloat16 is many times slower there (STACK.md) and XLA in float32 is the choice.

The answer is cached in the user's cache folder (`speed.json`); `DESKTOP_LLM_SPEED_PROBE=0` turns
the probe off (the test suite does, but for its own test of it).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

from desktop_llm.core import atomic

# (label, jit_compile, Keras dtype policy): the settings compared, the default first
CANDIDATES = (("XLA, float32", True, "float32"), ("no XLA, bfloat16", False, "mixed_bfloat16"))
WARM_CALLS, TIMED_CALLS = 2, 6


def enabled() -> bool:
    return os.environ.get("DESKTOP_LLM_SPEED_PROBE", "1") != "0"


def _cpuinfo(field: str) -> str | None:
    """A field of Linux's /proc/cpuinfo for the first CPU; None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (empty where they cannot be read)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def machine() -> str:
    """The machine a run trains on, as its status and report name it: the CPU, its cores, the OS."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def has_bfloat16(flags: set[str]) -> bool:
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def cache_path() -> Path:
    import platformdirs

    return Path(os.environ.get("DESKTOP_LLM_SPEED_CACHE")
                or Path(platformdirs.user_cache_dir("desktop_llm", appauthor=False)) / "speed.json")


def key(cfg) -> str:
    """The machine (CPU and cores) and what sets a step's cost: family, shape, batch."""
    m = cfg.model
    return (f"{cpu_name()} x{os.cpu_count()} | {cfg.family} {m.num_layers}x{m.num_heads}x{m.hidden_dim}"
            f" ffn{m.intermediate_dim} T{m.sequence_length} V{m.vocabulary_size} B{cfg.training.batch_size}")


def backends_key(cfg) -> str:
    """Where core/backend_probe.py keeps its timing of every backend on this model."""
    return key(cfg) + " | backends"


def backends_cached(cfg) -> dict | None:
    return _read().get(backends_key(cfg))


def backend_setting(cfg, name: str) -> dict | None:
    """{label, jit_compile, policy, ms, all}: the fastest setting core/backend_probe.py found for
    backend `name` with this model (the trainer applies it where the settings are left to `auto`)."""
    hit = backends_cached(cfg)
    return None if hit is None else hit["settings"].get(name)


def _read() -> dict:
    try:
        return json.loads(cache_path().read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def cached(cfg) -> dict | None:
    return _read().get(key(cfg))


def _write(table: dict) -> None:
    try:
        atomic.write_json(cache_path(), table)
    except OSError:  # a cache: measured again next time
        pass


def _remember(cfg, answer: dict) -> None:
    table = _read()
    table[key(cfg)] = answer
    _write(table)


def time_steps(model, batch) -> float:
    """Median seconds per training step of `model` (compiled) on one fixed batch."""
    import keras

    x, y, *w = batch
    for _ in range(WARM_CALLS):  # the first compiles
        keras.Model.train_on_batch(model, x, y, *w)
    times = []
    for _ in range(TIMED_CALLS):
        t0 = time.perf_counter()
        keras.Model.train_on_batch(model, x, y, *w)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_calls(model, batch, k: int, calls: int = 3) -> float:
    """Median seconds per training step of `model`, compiled with `steps_per_execution` k, over
    `calls` calls of k steps on one fixed batch, after one call that compiles: the way the
    runners train (k steps per call), so one backend's per-call overhead is not counted k times."""
    import keras
    import numpy as np

    x, y, *w = batch
    repeat = lambda a: np.concatenate([np.asarray(a)] * k)  # noqa: E731 - one batch, k times over
    n = len(keras.tree.flatten(x)[0])
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    keras.Model.fit(model, keras.tree.map_structure(repeat, x), repeat(y),
                    sample_weight=repeat(w[0]) if w else None, batch_size=n, epochs=1 + calls, shuffle=False,
                    callbacks=[Clock()], verbose=0)
    return statistics.median(times[1:]) / k


def choose(build, compile_args: dict, batch, cfg, say=lambda text: None) -> dict:
    """{"jit_compile", "policy", "label", "ms"}: the fastest candidate for this run, measured with
    `build()` (a fresh model under the global policy set here) unless the cache has it."""
    import keras

    hit = cached(cfg)
    if hit is not None:
        return {**hit, "cached": True}
    say("Timing XLA in float32 against bfloat16 without XLA on this CPU (once per model shape)")
    ms = {}
    for label, jit, policy in CANDIDATES:
        keras.mixed_precision.set_global_policy(policy)
        model = build()
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), **compile_args, jit_compile=jit)
        ms[label] = 1000 * time_steps(model, batch)
        del model
    keras.mixed_precision.set_global_policy("float32")
    label = min(ms, key=ms.get)
    _, jit, policy = next(c for c in CANDIDATES if c[0] == label)
    answer = {"jit_compile": jit, "policy": policy, "label": label, "ms": {k: round(v, 2) for k, v in ms.items()}}
    _remember(cfg, answer)
    return {**answer, "cached": False}
