"""This machine's float32 peak, the denominator of a run's MFU (model FLOPs utilisation).

MFU is a run's achieved training FLOP/s over what the hardware can do. "What it can do" is the
best rate any library installed here reaches on a large float32 matrix product (2048 x 2048, as
benchmarks/vs_nanogpt.py measures it), not the training backend's own GEMM: a backend with a slow
GEMM should read a low MFU. Measured once per machine (about a second) and cached beside the speed
probe's answers (core/speed_probe.py). The CPU only: a GPU's peak depends on its precision and
tensor cores, which this does not measure.
"""

from __future__ import annotations

import json
import time

N = 2048
REPEATS = 4


def _best_seconds(f, done, repeats: int = REPEATS) -> float:
    done(f())
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        r = [f() for _ in range(repeats)]
        done(r[-1])
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def rates() -> dict[str, float]:
    """GFLOP/s of a float32 N x N product, per library that is importable here (NumPy, and Keras'
    backend: TensorFlow, JAX or PyTorch)."""
    import numpy as np

    a = np.random.default_rng(0).random((N, N), np.float32)
    b = np.random.default_rng(1).random((N, N), np.float32)
    out = {"numpy": 2 * N**3 / _best_seconds(lambda: a @ b, lambda r: r) / 1e9}
    try:
        import keras

        x, y = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
        out[keras.backend.backend()] = 2 * N**3 / _best_seconds(
            lambda: keras.ops.matmul(x, y), keras.ops.convert_to_numpy) / 1e9
    except Exception:  # noqa: BLE001, S110 - a backend that cannot multiply here just has no rate
        pass
    return out


def cpu_peak(measure: bool = True) -> tuple[float, str] | None:
    """(GFLOP/s, the library that reaches it) of this CPU, from the cache or measured now (unless
    `measure` is False)."""
    from desktop_llm.core import atomic
    from desktop_llm.core.speed_probe import cache_path, machine

    path = cache_path().with_name("peak.json")
    key = machine()
    try:
        cached = json.loads(path.read_text("utf-8")).get(key)
    except (OSError, ValueError):
        cached = None
    if cached:
        return cached["gflops"], cached["library"]
    if not measure:
        return None
    found = rates()
    library = max(found, key=found.get)
    try:
        old = json.loads(path.read_text("utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        old = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, {**old, key: {"gflops": found[library], "library": library, "rates": found}})
    return found[library], library
