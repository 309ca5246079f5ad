"""Fused (flash) attention on a GPU for long contexts: the issue-13 lever, measured on the engine's GPT.

Keras' TensorFlow backend has no fused attention ("Flash attention is not supported in
tensorflow backend"), and this project's GPU machines carry JAX but no TensorFlow, so this
trains the engine's own model class (`GPTCausalLM`, keras-hub `TransformerDecoder` blocks) with
Keras 3 on JAX, mixed bfloat16, XLA, in three attention modes, each in its own process (so each
has its own peak memory):

- `xla`:    flash attention off: softmax(QK^T)V composed by XLA, the (T, T) scores in memory.
- `mask`:   Keras' default (flash where cuDNN takes it) on keras-hub's own decoder, which passes
            an explicit causal mask (the engine before `core/models/backbones/causal_decoder.py`).
- `causal`: the engine's GPT as it is: the training pass passes no mask and asks for
            `is_causal`, so cuDNN's causal flash kernel needs no (T, T) tensor at all.

Contexts grow at a fixed 16,384 tokens per step (6 layers x 6 heads x width 384, head size 64:
nanoGPT's Shakespeare GPU model). For each it prints ms/step, tokens/s, peak GPU memory, the
loss after the timed steps (the modes must agree) and whether the compiled step holds cuDNN's
fused-attention call.

    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false python3 benchmarks/gpu_attention.py OUT.json
    GPU_CHECK_QUICK=1 ... (a smoke test of the script on a CPU: tiny shapes, few steps)
    GPU_ATTENTION_CONTEXTS=8192 ... --mode causal   (one mode and context, rows as JSON)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("GPU_CHECK_QUICK") == "1"
sys.path.insert(0, str(ROOT))

MODES = ("xla", "mask", "causal")
TOKENS_PER_STEP = 16_384 if not QUICK else 256
CONTEXTS = (256, 1024, 4096, 8192) if not QUICK else (32, 64)
if os.environ.get("GPU_ATTENTION_CONTEXTS"):
    CONTEXTS = tuple(int(t) for t in os.environ["GPU_ATTENTION_CONTEXTS"].split(","))
MODEL = dict(num_layers=6, num_heads=6, hidden_dim=384, intermediate_dim=1536) if not QUICK else \
    dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64)
STEPS, K = (50, 10) if not QUICK else (4, 2)


def use_keras_hub_decoder() -> None:
    """Build the GPT on keras-hub's own `TransformerDecoder`, as the engine did before
    `causal_decoder.py`: an explicit (batch, T, T) causal mask in the training pass."""
    import keras_hub

    from desktop_llm.core.models.backbones import causal_decoder

    causal_decoder.TransformerDecoder = keras_hub.layers.TransformerDecoder  # this process only


def run_mode(mode: str) -> list[dict]:
    import jax
    import keras
    import numpy as np

    if mode == "mask":
        use_keras_hub_decoder()
    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models.backbones.gpt import build_model

    text = (ROOT / "resources" / "corpora" / "tinyshakespeare.txt").read_text("utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.int32)
    out = []
    for T in CONTEXTS:
        # every context: clear_session() below resets the policy too (and flash needs bf16)
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if not QUICK else "float32")
        if mode == "xla":
            keras.config.disable_flash_attention()
        batch = max(1, TOKENS_PER_STEP // T)
        rng = np.random.default_rng(T)
        starts = rng.integers(0, len(ids) - T - 1, size=(STEPS + K) * batch)
        win = ids[starts[:, None] + np.arange(T + 1)[None, :]]
        x, y = win[:, :-1], win[:, 1:]
        cfg = ModelConfig(vocabulary_size=len(chars), sequence_length=T, dropout=0.0, **MODEL)
        model = build_model(cfg, seed=1)
        model.compile(optimizer=keras.optimizers.AdamW(3e-4, weight_decay=0.1, global_clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=True, steps_per_execution=K)
        r = {"mode": mode, "context": T, "batch": batch}
        try:
            fit = keras.Model.fit  # not keras-hub's, which routes numpy through tf.data
            t0 = time.perf_counter()
            fit(model, x[: K * batch], y[: K * batch], batch_size=batch, epochs=1, verbose=0)
            r["compile_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            hist = fit(model, x[K * batch:], y[K * batch:], batch_size=batch, epochs=1, verbose=0)
            dt = time.perf_counter() - t0
            r.update(ms_per_step=1000 * dt / STEPS, tokens_per_s=STEPS * batch * T / dt,
                     loss=float(hist.history["loss"][-1]))
            tv = [v.value for v in model.trainable_variables]
            ntv = [v.value for v in model.non_trainable_variables]
            hlo = jax.jit(lambda a, b, t, m=model: m.stateless_call(a, b, t)[0]).lower(tv, ntv, x[:batch]).as_text()
            r["decoder"] = type(model.backbone.transformer_layers[0]).__module__
            r["cudnn_fused_attention"] = "cudnn$fmha" in hlo or "__cudnn$fmha" in hlo
            stats = jax.devices()[0].memory_stats() or {}
            r["peak_gib"] = stats.get("peak_bytes_in_use", 0) / 2**30
        except Exception as e:  # noqa: BLE001 - out of memory at a long context is a result too
            r["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            r["where"] = traceback.format_exc()[-1500:]
        print(json.dumps(r), flush=True)
        out.append(r)
        del model
        keras.backend.clear_session()
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--mode":
        for r in run_mode(sys.argv[2]):
            print("RESULT " + json.dumps(r), flush=True)
        return
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    import jax
    import keras

    result = {"device": str(jax.devices()[0].device_kind), "jax": jax.__version__, "keras": keras.__version__,
              "tokens_per_step": TOKENS_PER_STEP, "model": MODEL, "runs": []}
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}), flush=True)
    for mode in MODES:
        # Rows are echoed as they come, so a run cut short still shows what it measured.
        with tempfile.TemporaryFile("w+") as err:
            p = subprocess.Popen([sys.executable, __file__, "--mode", mode], stdout=subprocess.PIPE,
                                 stderr=err, text=True)
            rows = []
            for line in p.stdout:
                if line.startswith("RESULT "):
                    rows.append(json.loads(line[7:]))
                elif line.startswith("{"):
                    print(line.rstrip(), flush=True)
            p.wait()
            if p.returncode or not rows:
                err.seek(0)
                rows.append({"mode": mode, "error": f"exit {p.returncode}: {err.read()[-600:]}"})
                print(json.dumps(rows[-1]), flush=True)
        result["runs"] += rows
    base = {r["context"]: r for r in result["runs"] if r["mode"] == "xla" and "ms_per_step" in r}
    print(f"{'context':>7} {'batch':>5} " + " ".join(f"{m + ' ms':>10} {m + ' GiB':>10}" for m in MODES)
          + "  speedup(causal/xla)  fused(mask, causal)")
    for T in CONTEXTS:
        rows = {r["mode"]: r for r in result["runs"] if r.get("context") == T}
        cells = []
        for m in MODES:
            r = rows.get(m, {})
            cells.append(f"{r.get('ms_per_step', float('nan')):10.2f} {r.get('peak_gib', float('nan')):10.2f}")
        c = rows.get("causal", {})
        sp = base[T]["ms_per_step"] / c["ms_per_step"] if T in base and "ms_per_step" in c else float("nan")
        fused = (rows.get("mask", {}).get("cudnn_fused_attention"), c.get("cudnn_fused_attention"))
        print(f"{T:7d} {TOKENS_PER_STEP // T:5d} " + " ".join(cells) + f"  {sp:19.2f}  {fused}")
    if out_path:
        out_path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
