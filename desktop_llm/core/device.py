"""What is known of devices without a framework: nvidia-smi's memory figures, a device list in
words, and the precision policy for the devices a backend's runner lists (core/runners)."""

from __future__ import annotations

import os

# nvidia-smi's answer in one line per GPU: "0, NVIDIA H100 80GB HBM3, 81559, 1234" (MiB).
NVIDIA_SMI_ARGS = ["--query-gpu=index,name,memory.total,memory.used", "--format=csv,noheader,nounits"]


def parse_nvidia_smi(text: str) -> list[dict]:
    """[{index, name, memory, memory_used}] (bytes) from NVIDIA_SMI_ARGS's output; lines it cannot
    read ("[N/A]" memory on some boards) are skipped."""
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            index, total, used = int(parts[0]), float(parts[-2]), float(parts[-1])
        except ValueError:
            continue
        rows.append({"index": index, "name": ", ".join(parts[1:-2]), "memory": int(total * 2**20),
                     "memory_used": int(used * 2**20)})
    return rows


def gpu_memory() -> list[dict]:
    """Every NVIDIA GPU's memory from `nvidia-smi` (no TensorFlow, a fraction of a second);
    [] where there is none or it fails: memory figures are extras, never required."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, *NVIDIA_SMI_ARGS], check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def visible_rows(rows: list[dict]) -> list[dict]:
    """nvidia-smi's rows in the order this process's CUDA numbers them (CUDA_VISIBLE_DEVICES);
    [] when that variable names GPUs by UUID (no figures rather than another card's)."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return rows
    wanted = [t.strip() for t in cvd.split(",") if t.strip()]
    if not all(t.isdigit() for t in wanted):
        return []
    by_index = {r["index"]: r for r in rows}
    return [by_index[int(t)] for t in wanted if int(t) in by_index]


def match_rows(names: list[str], rows: list[dict]) -> list[dict | None]:
    """nvidia-smi's row for each of TensorFlow's GPUs: by name (CUDA may number cards fastest
    first, nvidia-smi by bus; cards of one name in order), or by position where no name agrees."""
    if not any(r["name"] == n for r in rows for n in names):
        return [rows[i] if i < len(rows) else None for i in range(len(names))]
    free, out = list(rows), []
    for name in names:
        row = next((r for r in free if r["name"] == name), None)
        if row is not None:
            free.remove(row)
        out.append(row)
    return out


def describe(devs: list[dict]) -> str:
    gpus = [d for d in devs if d["kind"] == "GPU"]
    if gpus:
        return ", ".join(f"GPU: {d['name']}" for d in gpus)
    cpu = devs[-1]
    return f"CPU ({cpu.get('cores')} cores)"


def precision_policy(mode: str = "auto", devs: list[dict] | None = None) -> str:
    """Keras dtype policy: mixed bfloat16 on GPUs that have it (compute capability 8+), else float32."""
    if mode == "off":
        return "float32"
    if mode == "bfloat16":
        return "mixed_bfloat16"
    if mode == "float16":
        return "mixed_float16"
    gpus = [d for d in (devs or []) if d["kind"] == "GPU"]
    if gpus and all((d.get("compute_capability") or (0, 0))[0] >= 8 for d in gpus):
        return "mixed_bfloat16"
    return "float32"


def gpu_memory_growth() -> None:
    """Let TensorFlow take GPU memory as it needs it, not all of it at start, so the window's own
    inference and a trainer can share a GPU. A no-op without GPUs or once devices are in use."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):
            pass  # already initialised: the setting made first stays
