"""The engine's GPT on a GPU through Keras' JAX backend, for machines without TensorFlow.

The lent GPU machines of this project carry PyTorch and JAX (CUDA 13) but no TensorFlow, and
TensorFlow 2.21 with its CUDA 12 libraries is far larger than what can be carried there. So
this measures what can be measured: the very model class desktop_llm trains
(`desktop_llm.core.models.backbones.gpt.GPTCausalLM`, keras-hub layers), built and trained by Keras 3 on JAX,
with `model.fit` over fused steps and XLA, in float32 and mixed bfloat16; MFU against the
best matrix-product rate PyTorch and JAX reach on this GPU in the same run; and a second
process running inference on the same GPU while one trains (memory growth's JAX equivalent:
no preallocation).

    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false python3 benchmarks/gpu_keras_jax.py OUT.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("GPU_CHECK_QUICK") == "1"  # a smoke test of this script on a CPU
sys.path.insert(0, str(ROOT))

WORKLOADS = {
    # the reference CPU workload (tiny Shakespeare, char level) and nanoGPT's GPU Shakespeare size
    "reference": dict(num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, sequence_length=64, batch=12),
    "base": dict(num_layers=6, num_heads=6, hidden_dim=384, intermediate_dim=1536, sequence_length=256, batch=64),
}


def peak_rates() -> dict:
    """Best matmul TFLOP/s any installed library reaches on this GPU (8192^3), bf16 and fp32."""
    out = {}
    n = 8192 if not QUICK else 256
    try:
        import torch

        for name, dtype, tf32 in (("torch_bf16", torch.bfloat16, False), ("torch_fp32", torch.float32, False),
                                  ("torch_tf32", torch.float32, True)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device="cuda", dtype=dtype)
            b = torch.randn(n, n, device="cuda", dtype=dtype)
            for _ in range(3):
                a @ b
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(10):
                a @ b
            torch.cuda.synchronize()
            out[name] = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12
            del a, b
        torch.cuda.empty_cache()
    except Exception as e:  # noqa: BLE001 - a benchmark reports what it could not measure
        out["torch_error"] = str(e)[:200]
    try:
        import jax
        import jax.numpy as jnp

        for name, dtype, prec in (("jax_bf16", jnp.bfloat16, None), ("jax_fp32_highest", jnp.float32, "highest")):
            a = jnp.ones((n, n), dtype)
            f = jax.jit(lambda x, y, p=prec: jnp.matmul(x, y, precision=p))
            f(a, a).block_until_ready()
            t = time.perf_counter()
            for _ in range(10):
                r = f(a, a)
            r.block_until_ready()
            out[name] = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12
    except Exception as e:  # noqa: BLE001
        out["jax_error"] = str(e)[:200]
    return out


def train(workload: str, policy: str, steps: int, k: int = 10, jit_compile: bool = True) -> dict:
    import keras
    import numpy as np

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models.backbones.gpt import build_model

    w = dict(WORKLOADS[workload])
    batch = w.pop("batch")
    text = (ROOT / "resources" / "corpora" / "tinyshakespeare.txt").read_text("utf-8")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text[:400_000]], dtype=np.int32)
    T = w["sequence_length"]
    rng = np.random.default_rng(0)
    n = (steps + k) * batch
    starts = rng.integers(0, len(ids) - T - 1, size=n)
    win = ids[starts[:, None] + np.arange(T + 1)[None, :]]
    x, y = win[:, :-1], win[:, 1:]

    keras.mixed_precision.set_global_policy(policy)
    cfg = ModelConfig(vocabulary_size=len(chars), dropout=0.0, **w)
    model = build_model(cfg, seed=1)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1, global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile, steps_per_execution=k)
    t0 = time.perf_counter()
    # keras.Model.fit, not keras-hub's PipelineModel.fit: the latter routes numpy inputs through
    # tf.data or grain, and neither is on the GPU machine (our model has no preprocessor anyway).
    fit = keras.Model.fit
    fit(model, x[: k * batch], y[: k * batch], batch_size=batch, epochs=1, verbose=0)  # compile
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hist = fit(model, x[k * batch:], y[k * batch:], batch_size=batch, epochs=1, verbose=0)
    dt = time.perf_counter() - t0
    params = model.count_params()
    L, d = cfg.num_layers, cfg.hidden_dim
    flops_per_token = 6 * params + 12 * L * d * T  # nanoGPT's estimate (PaLM appendix B)
    tokens_per_s = steps * batch * T / dt
    keras.mixed_precision.set_global_policy("float32")
    return {"workload": workload, "policy": policy, "steps": steps, "batch": batch, "context": T,
            "parameters": params, "ms_per_step": 1000 * dt / steps, "tokens_per_s": tokens_per_s,
            "tflops": flops_per_token * tokens_per_s / 1e12, "compile_s": compile_s,
            "final_loss": float(hist.history["loss"][-1])}


INFER = """
import os, sys, time, json
os.environ.setdefault("KERAS_BACKEND", "jax"); os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, sys.argv[1])
import numpy as np
from desktop_llm.core.config import ModelConfig
from desktop_llm.core.models.backbones.gpt import build_model
m = build_model(ModelConfig(vocabulary_size=65, num_layers=6, num_heads=6, hidden_dim=384, intermediate_dim=1536,
                            sequence_length=256), seed=2)
x = np.random.default_rng(1).integers(0, 65, (8, 256)).astype("int32")
n = 0; t = time.perf_counter()
while time.perf_counter() - t < float(sys.argv[2]):
    np.asarray(m.predict_on_batch(x)); n += 1
print(json.dumps({"inference_batches": n}))
"""


def main() -> None:
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    import jax
    import keras

    result = {"device": str(jax.devices()[0].device_kind), "jax": jax.__version__, "keras": keras.__version__,
              "backend": keras.backend.backend(), "peaks_tflops": peak_rates(), "runs": []}
    print(json.dumps(result["peaks_tflops"]), flush=True)
    for workload, steps in (("reference", 500), ("base", 200)) if not QUICK else (("reference", 20),):
        for policy in ("float32", "mixed_bfloat16"):
            r = train(workload, policy, steps)
            result["runs"].append(r)
            print(json.dumps(r), flush=True)
    # Inference in a second process while this one trains the base model (shared GPU, no OOM).
    infer = subprocess.Popen([sys.executable, "-c", INFER, str(ROOT), "20" if not QUICK else "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    during = train("base", "mixed_bfloat16", 400) if not QUICK else train("reference", "float32", 20)
    out, err = infer.communicate(timeout=300)
    result["shared_gpu"] = {"trainer": during, "inference_exit": infer.returncode,
                            "inference": out.strip().splitlines()[-1] if out.strip() else err[-500:]}
    print(json.dumps(result["shared_gpu"]), flush=True)
    peaks = result["peaks_tflops"]
    bf16 = max(v for k, v in peaks.items() if k.endswith("bf16") and isinstance(v, float))
    # XLA on GPUs multiplies float32 matrices in TF32 by default (JAX's default precision), so
    # float32 runs are measured against the best float32-input rate, TF32 included.
    fp32 = max(v for k, v in peaks.items() if ("fp32" in k or "tf32" in k) and isinstance(v, float))
    for r in result["runs"]:
        r["mfu"] = r["tflops"] / (bf16 if "bfloat16" in r["policy"] else fp32)
    print(json.dumps({"mfu": [(r["workload"], r["policy"], round(r["mfu"], 4)) for r in result["runs"]]}), flush=True)
    if out_path:
        out_path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
