"""What keeping each group's gradient norm costs the training step (issue 28's probe budget): the
reference model (4 x 4 x 128, context 64, batch 12, XLA, 10 steps fused per call) trained with
FusedAdamW with and without `track_gradients`, in one process, alternating blocks of calls.

    python benchmarks/gradient_stats_cost.py [--blocks 6 --calls 20]

Prints the median ms per step of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--calls", type=int, default=20)
    a = ap.parse_args()
    import keras
    import tensorflow as tf

    from desktop_llm.core import health
    from desktop_llm.core.config import ModelConfig, RunConfig
    from desktop_llm.core.models import get_family
    from desktop_llm.core.runners.tensorflow_fused import batch_steps, fuse_train_steps
    from desktop_llm.core.speed_probe import cpu_name
    from desktop_llm.core.training import make_optimizer

    k, B, T, V = 10, 12, 64, 65
    family = get_family("gpt")
    rng = np.random.default_rng(0)
    data = rng.integers(0, V, (k * B * 50, T + 1)).astype(np.int32)
    ds = batch_steps(tf.data.Dataset.from_tensor_slices((data[:, :-1], data[:, 1:])).batch(B).repeat(), k)
    models = {}
    for tracked in (False, True):
        model = family.build(ModelConfig(num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512,
                                         sequence_length=T, vocabulary_size=V, dropout=0.0), seed=1)
        opt = make_optimizer(RunConfig())
        if tracked:
            opt.track_gradients(*health.group_index(model), every=250)
        model.compile(optimizer=opt, **family.compile_args(), jit_compile=True)
        fuse_train_steps(model, k)
        it = iter(ds)
        model.train_on_batch(*next(it))  # compiles
        models[tracked] = (model, it)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(a.blocks):
        for tracked, (model, it) in models.items():
            for _ in range(a.calls):
                x, y = next(it)
                t0 = time.perf_counter()
                keras.Model.train_on_batch(model, x, y)
                times[tracked].append((time.perf_counter() - t0) / k * 1000)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{cpu_name()}: {off:.2f} ms/step without, {on:.2f} with the gradient norms kept: x{on / off:.3f}")


if __name__ == "__main__":
    main()
