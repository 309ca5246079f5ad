"""desktop_llm against unmodified nanoGPT on the reference workload, back to back, the way a user
would compare them: training tokens/s at equal validation loss, sampling tokens/s, and both as a
share of what this CPU can do (its float32 peak: the best rate any installed library reaches on a
large matrix product, measured in the same run).

    python benchmarks/vs_nanogpt.py                 # 2000 steps each (~10 min on 2 cores)
    python benchmarks/vs_nanogpt.py --steps 500     # a quicker look
    python benchmarks/vs_nanogpt.py --skip-nanogpt  # the engine only (nanoGPT's figures: --nanogpt-json)
    python benchmarks/vs_nanogpt.py --isa avx2      # every library capped to AVX2 code paths (see ISA_CAPS)
    python benchmarks/vs_nanogpt.py --backends tensorflow   # one engine row (default: auto, then every installed backend)

Engine rows: `--backend auto` (what a user gets: on a CPU with several backends, auto times them
on this model first, core/backend_probe.py), then each installed backend by name. Each runs as
`desktop-llm train --preset small --tokenizer-kind char` with nanoGPT's
hyperparameters (batch 12, lr 1e-3 warm-up 100 cosine to 1e-4, weight decay 0.1, clip 1.0, no
dropout), in its own process, exactly as a user starts it. Quality: both models are scored on
nanoGPT's own validation text (the last 10% of the corpus), ours with `desktop-llm eval --file`.
Sampling: 500 tokens, temperature 0.8, top-k 200, streamed, after a warm-up (as nanoGPT's script).
nanoGPT comes from `../shared/bench/nanogpt_bench.sh` (it makes its own venv with torch).
Results go to benchmarks/results/vs-nanogpt-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
NANOGPT_SH = SHARED / "bench" / "nanogpt_bench.sh"
CORPUS = ROOT / "resources" / "corpora" / "tinyshakespeare.txt"
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
        "amx_tile", "amx_bf16", "neon", "asimd", "sve")
HYPER = ["--preset", "small", "--tokenizer-kind", "char", "--batch-size", "12", "--lr", "1e-3", "--min-lr", "1e-4",
         "--warmup", "100", "--weight-decay", "0.1", "--clip", "1.0", "--dropout", "0"]

# `--isa avx2`: what each library reads to stay on AVX2 code on a CPU that has AVX-512, for an
# estimate of an AVX2-only machine at this clock. YNNPACK (XLA's dot and element-wise library)
# picks its kernels from the CPU with no cap, so it is turned off and XLA's own (capped) code and
# Eigen run instead; that costs the engine ~15% here (a lower bound, not the AVX2 machine itself).
ISA_CAPS = {"avx2": {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2 --xla_cpu_experimental_ynn_fusion_type=",
                     "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                     "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"}}


def cpu() -> dict:
    """The CPU's model name and the SIMD flags that decide which GEMM kernels run."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("", platform.machine(), platform.processor()):
                name = value.strip()
            if key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:  # no /proc (macOS, Windows): the platform's name, no flags
        pass
    return {"model": name, "cores": os.cpu_count(), "simd": [f for f in SIMD if f in flags]}


# ---------------------------------------------------------------------------- the hardware's peak
# Per library: make float32 a, b (n x n) and f(a, b) = a @ b; `done(r)` waits for a result.
PEAK_SETUP = {
    "tensorflow": ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\nimport tensorflow as tf\n"
                   "a = tf.random.normal((n, n)); b = tf.random.normal((n, n))\n"
                   "f = tf.function(lambda a, b: tf.matmul(a, b)); done = lambda r: r.numpy()"),
    "numpy": ("import numpy as np\na = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)\n"
              "f = lambda a, b: a @ b; done = lambda r: r"),
    "torch": "import torch\na = torch.randn(n, n); b = torch.randn(n, n)\nf = lambda a, b: a @ b; done = lambda r: r",
    "jax": ("import jax, jax.numpy as jnp\na = jnp.ones((n, n), jnp.float32); b = jnp.ones((n, n), jnp.float32)\n"
            "f = jax.jit(jnp.matmul); done = lambda r: r.block_until_ready()"),
}
PEAK_TIMING = """
import time
done(f(a, b)); best = 1e9
for _ in range(5):
    t = time.perf_counter(); rs = [f(a, b) for _ in range(repeats)]; done(rs[-1])
    best = min(best, (time.perf_counter() - t) / repeats)
print(2 * n**3 / best / 1e9)
"""


def peak_rates(n: int = 2048, repeats: int = 8) -> dict[str, float]:
    """float32 n x n matmul GFLOP/s of each library installed here (our venv; torch from nanoGPT's)."""
    pythons = {"tensorflow": sys.executable, "numpy": sys.executable, "jax": sys.executable,
               "torch": os.environ.get("NANOGPT_VENV", "/tmp/nanogpt-venv") + "/bin/python"}
    rates = {}
    for lib, setup in PEAK_SETUP.items():
        py = pythons[lib]
        if not Path(py).exists():
            continue
        script = f"n, repeats = {n}, {repeats}\n{setup}\n{PEAK_TIMING}"
        p = subprocess.run([py, "-c", script], capture_output=True, text=True, timeout=600)
        if p.returncode == 0 and p.stdout.strip():
            rates[lib] = float(p.stdout.strip().splitlines()[-1])
    return rates


# ---------------------------------------------------------------------------- the two systems
def nanogpt(steps: int) -> dict:
    p = subprocess.run(["bash", str(NANOGPT_SH), str(steps)], capture_output=True, text=True, timeout=4 * 3600)
    if p.returncode != 0:
        raise SystemExit(f"nanogpt_bench.sh failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cli(home: Path, *args, timeout=4 * 3600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def engine(steps: int, home: Path, val_file: Path, extra: list[str]) -> dict:
    """`desktop-llm train` as a user runs it; its step events give the step time."""
    t0 = time.perf_counter()
    p = cli(home, "train", CORPUS, *HYPER, "--steps", steps, "--eval-interval", min(250, steps),
            "--log-interval", 10, *extra, "--json")
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"desktop-llm train failed:\n{p.stderr[-2000:]}")
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    steps_ev = [e for e in events if e["type"] == "step"]
    start = next(e for e in events if e["type"] == "start")
    warm = steps_ev[max(1, len(steps_ev) // 10):] or steps_ev  # past compilation and warm-up
    ms = statistics.median(e["ms_per_step"] for e in warm)
    ev = cli(home, "eval", "--file", val_file, "--json")
    val = json.loads(ev.stdout)["loss"] if ev.returncode == 0 else None
    return {"system": "desktop_llm " + " ".join(extra), "ms_per_iter": ms, "tokens_per_sec": 768 * 1000 / ms,
            "val_loss_on_nanogpt_val": val, "wall_s": wall, "device": start.get("device"),
            "backend": start.get("backend"), "backend_reason": start.get("backend_reason"),
            "steps_per_execution": start.get("steps_per_execution"), "sampling": sampling(home, start.get("backend"))}


def sampling(home: Path, backend: str = "auto") -> dict:
    """500 tokens, temperature 0.8, top-k 200, streamed, after a warm-up generation."""
    code = """
import json, sys, time
from desktop_llm.core.generation import Generator, SamplingConfig
from desktop_llm.core.loading import load_for_inference
from desktop_llm.store import RunStore
model, tok, _ = load_for_inference(RunStore(sys.argv[1]).latest())
gen = Generator(model, tok)
cfg = SamplingConfig(max_new_tokens=500, temperature=0.8, top_k=200, seed=1337)
gen.generate("\\n", SamplingConfig(max_new_tokens=20, temperature=0.8, top_k=200))  # warm-up (compiles)
best = None
for _ in range(3):
    stamps = []
    t = time.perf_counter()
    r = gen.generate("\\n", cfg, on_token=lambda _: stamps.append(time.perf_counter()))
    dt = time.perf_counter() - t
    first = stamps[0] - t
    if best is None or dt < best[0]:
        best = (dt, first, len(r.tokens))
print(json.dumps({"tokens": best[2], "seconds": best[0], "tokens_per_sec": best[2] / best[0], "first_token_ms": 1000 * best[1]}))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    if backend != "auto":
        env["KERAS_BACKEND"] = backend
    p = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        return {"error": p.stderr[-500:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--skip-nanogpt", action="store_true")
    ap.add_argument("--nanogpt-json", help="nanoGPT's figures from an earlier run (JSON from nanogpt_bench.sh)")
    ap.add_argument("--variant", action="append", default=[],
                    help="extra `desktop-llm train` arguments for another engine row (repeatable, quoted)")
    ap.add_argument("--isa", choices=sorted(ISA_CAPS), help="cap every library (both systems) to this ISA")
    ap.add_argument("--backends", help="comma-separated engine rows' backends (default: auto, then every installed one)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if args.isa:  # every child process (peaks, nanoGPT, the engine) inherits the caps
        for key, value in ISA_CAPS[args.isa].items():
            os.environ[key] = f"{os.environ[key]} {value}" if key == "XLA_FLAGS" and os.environ.get(key) else value

    from dataclasses import replace

    from desktop_llm.core.config import PRESETS, estimate

    flops_per_token = estimate(replace(PRESETS["small"], vocabulary_size=65), 12).flops_per_token
    work = Path(tempfile.mkdtemp(prefix="vs_nanogpt_"))
    text = CORPUS.read_text("utf-8")
    val_file = work / "nanogpt_val.txt"  # nanoGPT's validation split: the last 10% of the characters
    val_file.write_text(text[int(0.9 * len(text)):], "utf-8")
    t0 = time.time()
    info = cpu()
    rates = peak_rates()
    peak = max(rates.values())
    rows = []
    if args.nanogpt_json:
        rows.append(json.loads(Path(args.nanogpt_json).read_text()))
    elif not args.skip_nanogpt:
        rows.append(nanogpt(args.steps))
    from desktop_llm.core.backend import available

    backends = args.backends.split(",") if args.backends else ["auto", *available()]
    runs = [f"--backend {b}" for b in backends] + args.variant
    for i, extra in enumerate(runs):
        rows.append(engine(args.steps, work / f"home{i}", val_file, extra.split()))
    base = rows[0]["tokens_per_sec"] if rows and rows[0]["system"].startswith("nanoGPT") else None
    capped = f" (capped to {args.isa.upper()} code paths, YNNPACK off)" if args.isa else ""
    lines = [f"CPU: {info['model']}, {info['cores']} cores, SIMD: {' '.join(info['simd'])}{capped}",
             "float32 2048^2 matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
             + f"  -> peak {peak:.0f}",
             (f"model 4x4x128, context 64, batch 12: {flops_per_token / 1e6:.2f} MFLOP/token (6N + 12LTd); "
             f"{args.steps} steps each"),
             (f"{'system':<34} {'ms/step':>8} {'tokens/s':>9} {'x nanoGPT':>9} {'MFU':>6} {'val loss':>9} "
             f"{'sample tok/s':>12} {'x':>6} {'first ms':>9}")]
    def cell(value, fmt: str, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    sample_base = rows[0].get("sample_tokens_per_sec") if base else None
    for r in rows:
        tps = r["tokens_per_sec"]
        mfu = tps * flops_per_token / 1e9 / peak
        s = r.get("sampling") or {"tokens_per_sec": r.get("sample_tokens_per_sec")}
        val = r.get("val_loss_on_nanogpt_val") or r.get("last_eval", {}).get("val_loss")
        sps = s.get("tokens_per_sec")
        r.update(mfu_vs_peak=mfu)
        lines.append(f"{r['system'][:34]:<34} {r['ms_per_iter']:>8.1f} {tps:>9,.0f} "
                     f"{cell(tps / base if base else None, '.2f', 8)}x {100 * mfu:>5.1f}% {cell(val, '.3f', 9)} "
                     f"{cell(sps, ',.0f', 12)} {cell(sps / sample_base if sps and sample_base else None, '.2f', 5)}x "
                     f"{cell(s.get('first_token_ms'), '.1f', 9)}")
    lines.append(f"total wall time {time.time() - t0:.0f} s")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"vs-nanogpt-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "cpu": info, "matmul_gflops": rates,
                                "peak_gflops": peak, "steps": args.steps, "isa_cap": args.isa, "rows": rows}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
