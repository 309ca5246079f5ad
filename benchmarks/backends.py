"""The engine's GPT on each installed Keras backend, back to back, on this machine (issue 13).

The issue asks whether the training step should run on another Keras backend where that is
faster (PyTorch's GEMM reached the hardware's peak on the AVX2 machines; JAX is often fastest on
GPUs). This measures it before building it: the model class desktop_llm trains
(`GPTCausalLM`, keras-hub layers), the reference workload (4x4x128, context 64, batch 12, AdamW
with clipping), trained by `keras.Model.fit` over the same in-memory batches, 10 steps per call (1 on torch,
which Keras requires), on TensorFlow, JAX and PyTorch in turn, each in its own process,
alternated for `--rounds`.
The engine's own trainer (in-graph input pipeline, k steps in one XLA program) is the
TensorFlow row of `vs_nanogpt.py`; here every backend runs the same plain Keras loop, so the
rows compare backends, not loops. Also prints each library's 2048^2 float32 matmul rate.

    python benchmarks/backends.py [--steps 300] [--rounds 2] [--backends tensorflow,jax,torch,torch-eager]

Backends that are not installed are reported as such (this project installs TensorFlow; the
others were installed next to it in a side virtual environment for this measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vs_nanogpt import peak_rates  # each library's 2048^2 rate, as vs_nanogpt measures the peak

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/benchmarks")
import gpu_keras_jax as g
# Keras on torch runs one step per call (steps_per_execution must be 1 there)
k = 1 if os.environ["KERAS_BACKEND"] == "torch" else 10
r = g.train("reference", "float32", int(sys.argv[2]), k=k, jit_compile=sys.argv[3] == "1")
print("RESULT " + json.dumps(r))
"""

def child(code: str, args: list[str], env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1][:300]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backends", default="tensorflow,jax,torch,torch-eager",
                    help="comma list; torch-eager is Keras' torch backend without torch.compile")
    args = ap.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    gemm = peak_rates()
    print("float32 2048^2 matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items()), flush=True)
    rows: dict[str, list[dict]] = {}
    for rnd in range(args.rounds):
        for name in args.backends.split(","):
            backend, jit = (name.split("-")[0], "0") if name.endswith("-eager") else (name, "1")
            t = time.perf_counter()
            r = child(CHILD, [str(ROOT), str(args.steps), jit], dict(env, KERAS_BACKEND=backend))
            r["wall_s"] = time.perf_counter() - t
            rows.setdefault(name, []).append(r)
            shown = f"{r['ms_per_step']:.1f} ms/step, loss {r['final_loss']:.3f}, compile {r['compile_s']:.1f} s" \
                if "ms_per_step" in r else r["error"]
            print(f"round {rnd + 1} {name:12s} {shown}", flush=True)
    print(f"\nreference workload, keras.Model.fit, 10 steps per call (torch 1), {args.steps} steps, "
          f"median of {args.rounds} rounds")
    print(f"{'backend':14s}{'ms/step':>9s}{'tokens/s':>10s}{'x TF':>7s}")
    ok = {k: statistics.median(r["ms_per_step"] for r in v) for k, v in rows.items()
          if all("ms_per_step" in r for r in v)}
    base = ok.get("tensorflow")
    for name, ms in ok.items():
        ratio = f"{base / ms:.2f}x" if base else "-"
        print(f"{name:14s}{ms:9.1f}{12 * 64 * 1000 / ms:10,.0f}{ratio:>7s}")
    out = ROOT / "benchmarks" / "results" / f"backends-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"gemm_gflops": gemm, "runs": rows, "steps": args.steps}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
