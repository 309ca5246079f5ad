"""Training speed on the reference workload, engine against a plain-Keras baseline, side by side.

    python benchmarks/train_bench.py                       # the reference workload (2000 steps)
    python benchmarks/train_bench.py --steps 500 --baseline-steps 200   # a quicker look
    python benchmarks/train_bench.py --config big.json     # a bigger model (e.g. on a GPU)
    python benchmarks/train_bench.py --scale               # step time vs context and width

Each measurement runs in its own spawned process (clean peak memory, no shared XLA caches), one
after the other, and the table reports every figure also as a ratio to the baseline row. The
machine's own float32 matmul rate is measured in the same run, so MFU is relative to what this
machine does today, not to a datasheet. Results go to benchmarks/results/*.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The reference workload of issue 4: char-level tiny Shakespeare, 4x4x128, context 64, batch 12.
REFERENCE = {
    "model": {"num_layers": 4, "num_heads": 4, "hidden_dim": 128, "intermediate_dim": 512,
              "sequence_length": 64, "dropout": 0.0},
    "training": {"batch_size": 12, "learning_rate": 1e-3, "min_learning_rate": 1e-4, "warmup_steps": 100,
                 "weight_decay": 0.1, "grad_clip": 1.0, "eval_interval": 250, "eval_batches": 20,
                 "log_interval": 10},
}


def run_config(overrides: dict, steps: int, corpus: str, jit: bool = True):
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig

    m = {**REFERENCE["model"], **overrides.get("model", {})}
    t = {**REFERENCE["training"], **overrides.get("training", {}), "max_steps": steps, "jit_compile": jit}
    t["eval_interval"] = min(t["eval_interval"], steps)
    t["warmup_steps"] = min(t["warmup_steps"], steps // 2)  # short trial runs keep a valid schedule
    return RunConfig(name="bench", data=DataConfig(paths=(corpus,)),
                     tokenizer=TokenizerConfig(kind=overrides.get("tokenizer", "char")),
                     model=ModelConfig(**m), training=TrainConfig(**t))


def peak_rss_mb() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """float32 n x n matmul through TensorFlow: this machine's practical peak, measured now."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda a, b: tf.matmul(a, b))
    return 2 * n**3 / _best_call_seconds(f, (a, b), repeats) / 1e9


def _best_call_seconds(fn, args, repeats: int) -> float:
    """Seconds per call of a compiled `fn`, best of 3 rounds of `repeats` calls, after a warm-up."""
    fn(*args).numpy()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            r = fn(*args)
        r.numpy()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def _summed_products(a, w):
    """sum_i a[i] @ w: several independent products in one call (the sum costs 1/(2*inner) more)."""
    import tensorflow as tf

    return tf.add_n([tf.matmul(a[i], w) for i in range(a.shape[0])])


def shape_ceiling_gflops(cfg_dict: dict, vocabulary_size: int = 65) -> float:
    """The rate this machine reaches on the model's own matmul shapes (every dense layer's forward
    product and its two backward ones, and the per-head attention products), FLOP-weighted: the
    ceiling of a training step made only of matmuls, against which small models are judged."""
    from collections import Counter

    import tensorflow as tf

    from desktop_llm.core.config import RunConfig

    cfg = RunConfig.from_dict(cfg_dict)
    m, b = cfg.model, cfg.training.batch_size
    M, T, d, f, h = b * m.sequence_length, m.sequence_length, m.hidden_dim, m.intermediate_dim, m.num_heads
    shapes: Counter = Counter()
    for (k, n), count in (((d, d), 4 * m.num_layers), ((d, f), m.num_layers), ((f, d), m.num_layers),
                          ((d, vocabulary_size), 1)):
        for shape in ((1, M, k, n), (1, M, n, k), (1, k, M, n)):  # forward, input gradient, weight gradient
            shapes[shape] += count
    for q, k, n in ((T, d // h, T), (T, T, d // h)):  # scores and weighted values, per head
        for shape in ((b * h, q, k, n), (b * h, q, n, k), (b * h, k, q, n)):
            shapes[shape] += m.num_layers
    flops = seconds = 0.0
    unroll = 8  # products per compiled call, so the call overhead is not counted as matmul time
    for (batch, rows, inner, cols), count in shapes.items():
        a, w = tf.random.normal((unroll, batch, rows, inner)), tf.random.normal((batch, inner, cols))
        fn = tf.function(_summed_products, jit_compile=True)
        reps = max(3, int(2e9 / (2 * unroll * batch * rows * inner * cols)))
        best = _best_call_seconds(fn, (a, w), reps) / unroll
        flops += count * 2 * batch * rows * inner * cols
        seconds += count * best
    return flops / seconds / 1e9


# ---------------------------------------------------------------------------- the measured modes
def engine_mode(cfg_dict: dict, out) -> None:
    """desktop_llm's own trainer (XLA, fused steps, tf.data), as `desktop-llm train` runs it."""
    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.training import train_run
    from desktop_llm.store import RunStore

    cfg = RunConfig.from_dict(cfg_dict)
    store = RunStore(tempfile.mkdtemp(prefix="bench_"))
    run = store.create(cfg)
    events = []
    t0 = time.perf_counter()
    st = train_run(run, events.append, store=store)
    wall = time.perf_counter() - t0
    steps = [e for e in events if e["type"] == "step"]
    evals = {e["step"]: e["val_loss"] for e in events if e["type"] == "eval"}
    start = next(e for e in events if e["type"] == "start")
    k = start["steps_per_execution"]
    warm = steps[max(1, len(steps) // 10):] or steps  # skip compilation and warm-up
    out.put({"mode": "engine", "status": st.get("status"), "ms_per_step": statistics.median(e["ms_per_step"] for e in warm),
             "val_loss": evals, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "steps_per_execution": k,
             "parameters": start["parameters"], "device": start["device"], "policy": start["policy"]})


def baseline_mode(cfg_dict: dict, out) -> None:
    """The same model and optimizer through a plain `model.fit`: no XLA, one step per call."""
    import keras
    import tensorflow as tf

    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.data import TokenData, prepare
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.tokenizers import train_tokenizer
    from desktop_llm.core.data import corpus_of
    from desktop_llm.core.training import make_optimizer

    cfg = RunConfig.from_dict(cfg_dict)
    t, T = cfg.training, cfg.model.sequence_length
    corpus = corpus_of(cfg)
    tok = train_tokenizer(cfg.tokenizer.kind, corpus.iter_text(), cfg.tokenizer.vocabulary_size)
    folder = Path(tempfile.mkdtemp(prefix="bench_base_"))
    prepare(corpus, tok, folder, cfg.data.val_fraction)
    data = TokenData(folder)
    model = build_model(replace(cfg.model, vocabulary_size=tok.vocabulary_size), seed=t.seed)
    model.compile(optimizer=make_optimizer(cfg), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False, steps_per_execution=1)  # the plain-Keras baseline
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)

    vx, vy = data.val_batches(t.eval_batches, t.batch_size, T)
    val = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(t.batch_size).cache()
    t0 = time.perf_counter()
    from desktop_llm.core.models import get_family
    from desktop_llm.core.runners import tensorflow_runner

    train = tensorflow_runner.train_dataset(get_family("gpt"), data, 0, t.max_steps, t.batch_size, T, t.seed, 0)
    hist = model.fit(train, epochs=t.max_steps // t.eval_interval,
                     steps_per_epoch=t.eval_interval, validation_data=val, callbacks=[Timer()], verbose=0)
    wall = time.perf_counter() - t0
    evals = {(i + 1) * t.eval_interval: v for i, v in enumerate(hist.history["val_loss"])}
    warm = times[max(10, len(times) // 10):] or times
    out.put({"mode": "baseline", "status": "completed", "ms_per_step": 1000 * statistics.median(warm),
             "val_loss": evals, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "steps_per_execution": 1,
             "parameters": model.count_params()})


def scale_mode(cfg_dict: dict, out) -> None:
    """Median step time of a short XLA run for one (context, width): the scaling table's cell."""
    import keras

    from desktop_llm.core.config import RunConfig
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.training import make_optimizer

    cfg = RunConfig.from_dict(cfg_dict)
    t, m = cfg.training, replace(cfg.model, vocabulary_size=65)
    model = build_model(m)
    model.compile(optimizer=make_optimizer(cfg), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True, steps_per_execution=5)
    import numpy as np

    x = np.random.default_rng(0).integers(0, 65, size=(t.batch_size * 5, m.sequence_length + 1)).astype("int32")
    model.fit(x[:, :-1], x[:, 1:], batch_size=t.batch_size, epochs=1, verbose=0)  # compile
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        model.fit(x[:, :-1], x[:, 1:], batch_size=t.batch_size, epochs=1, verbose=0)
        times.append((time.perf_counter() - t0) / 5)
    out.put({"ms_per_step": 1000 * statistics.median(times), "peak_rss_mb": peak_rss_mb()})


def in_child(fn, cfg_dict: dict) -> dict:
    ctx = mp.get_context("spawn")  # fork hangs TensorFlow
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(cfg_dict, q))
    p.start()
    try:
        result = q.get(timeout=4 * 3600)
    finally:
        p.join(60)
    return result


def measure_matmul(cfg_dict, out) -> None:
    out.put({"gflops": matmul_gflops(), "shape_gflops": shape_ceiling_gflops(cfg_dict)})


# ---------------------------------------------------------------------------- report
def report(rows: list[dict], matmul: float, cfg, checkpoints: list[int]) -> list[str]:
    from desktop_llm.core.config import estimate

    est = estimate(replace(cfg.model, vocabulary_size=65), cfg.training.batch_size)
    tokens_per_step = cfg.training.batch_size * cfg.model.sequence_length
    base = next((r for r in rows if r["mode"] == "baseline"), None)
    lines = [f"model: {est.parameters:,} parameters, {est.flops_per_token / 1e6:.2f} MFLOP/token (6N + 12LTd); "
             f"matmul 2048^2 float32: {matmul:.0f} GFLOP/s",
             f"{'mode':<9} {'ms/step':>8} {'tokens/s':>9} {'x base':>7} {'GFLOP/s':>8} {'MFU':>6} "
             + " ".join(f"{'val@' + str(s):>8}" for s in checkpoints) + f" {'wall s':>7} {'peak MB':>8}"]
    for r in rows:
        tps = tokens_per_step / (r["ms_per_step"] / 1000)
        gflops = tps * est.flops_per_token / 1e9
        r.update(tokens_per_sec=tps, gflops=gflops, mfu=gflops / matmul,
                 speedup=(tps / (tokens_per_step / (base["ms_per_step"] / 1000))) if base else None)
        vals = " ".join(f"{r['val_loss'][s]:>8.3f}" if s in r["val_loss"] else f"{'–':>8}" for s in checkpoints)
        lines.append(f"{r['mode']:<9} {r['ms_per_step']:>8.1f} {tps:>9,.0f} {r['speedup'] or 1:>6.2f}x {gflops:>8.1f} "
                     f"{100 * r['mfu']:>5.1f}% {vals} {r['wall_s']:>7.0f} {r['peak_rss_mb']:>8.0f}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--baseline-steps", type=int, default=None, help="default: --steps; 0 skips the baseline")
    ap.add_argument("--config", help="JSON with 'model'/'training' overrides, or a run's config.json")
    ap.add_argument("--corpus", default=str(ROOT / "resources" / "corpora" / "tinyshakespeare.txt"))
    ap.add_argument("--scale", action="store_true", help="also sweep context 64..1024 and width 128..768")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    overrides = {}
    if args.config:
        raw = json.loads(Path(args.config).read_text())
        overrides = {"model": {k: v for k, v in raw.get("model", {}).items() if k != "vocabulary_size"},
                     "training": {k: v for k, v in raw.get("training", {}).items() if k not in ("max_steps", "jit_compile")}}
    cfg = run_config(overrides, args.steps, args.corpus)
    cfg.validate()
    t0 = time.time()
    rates = in_child(measure_matmul, cfg.to_dict())
    matmul, shape_rate = rates["gflops"], rates["shape_gflops"]
    rows = [in_child(engine_mode, cfg.to_dict())]
    base_steps = args.steps if args.baseline_steps is None else args.baseline_steps
    if base_steps:
        rows.append(in_child(baseline_mode, run_config(overrides, base_steps, args.corpus, jit=False).to_dict()))
    checkpoints = sorted({s for r in rows for s in r["val_loss"] if s in (250, 500, 1000, 2000) or s == args.steps})
    lines = report(rows, matmul, cfg, checkpoints)
    lines.insert(1, f"the model's own matmul shapes (fwd + bwd, FLOP-weighted, XLA): {shape_rate:.0f} GFLOP/s "
                    f"= {100 * shape_rate / matmul:.0f}% of 2048^2; engine at "
                    f"{100 * rows[0]['gflops'] / shape_rate:.0f}% of that")
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": rows[0].get("device")},
              "when": time.strftime("%Y-%m-%d %H:%M"), "config": cfg.to_dict(), "matmul_gflops": matmul,
              "shape_matmul_gflops": shape_rate, "rows": rows}

    if args.scale:
        scale = []
        for T in (64, 128, 256, 512, 1024):
            c = run_config({**overrides, "model": {**overrides.get("model", {}), "sequence_length": T}}, 10, args.corpus)
            scale.append({"sequence_length": T, "hidden_dim": c.model.hidden_dim, **in_child(scale_mode, c.to_dict())})
        for d in (128, 256, 512, 768):
            m = {**overrides.get("model", {}), "hidden_dim": d, "intermediate_dim": 4 * d, "num_heads": max(4, d // 64)}
            c = run_config({**overrides, "model": m}, 10, args.corpus)
            scale.append({"sequence_length": c.model.sequence_length, "hidden_dim": d, **in_child(scale_mode, c.to_dict())})
        result["scale"] = scale
        base_ms = scale[0]["ms_per_step"]
        lines.append("")
        lines.append(f"{'context':>8} {'width':>6} {'ms/step':>8} {'x ref':>6} {'peak MB':>8}   (batch {cfg.training.batch_size}, XLA)")
        for s in scale:
            lines.append(f"{s['sequence_length']:>8} {s['hidden_dim']:>6} {s['ms_per_step']:>8.1f} "
                         f"{s['ms_per_step'] / base_ms:>5.1f}x {s['peak_rss_mb']:>8.0f}")
    lines.append(f"total wall time {time.time() - t0:.0f} s")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"train-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
