"""Which device trains: every GPU TensorFlow sees, by name, or the CPU; and the precision policy."""

from __future__ import annotations

import os
import platform


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def devices() -> list[dict]:
    """[{kind, name, memory?, compute_capability?}] with the GPUs first; always ends with the CPU."""
    _quiet_tensorflow()
    import tensorflow as tf

    out = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:
            details = {}
        out.append({
            "kind": "GPU",
            "name": details.get("device_name", gpu.name),
            "compute_capability": details.get("compute_capability"),
            "id": gpu.name,
        })
    out.append({"kind": "CPU", "name": platform.processor() or platform.machine(),
                "cores": os.cpu_count(), "id": "/physical_device:CPU:0"})
    return out


def describe(devs: list[dict] | None = None) -> str:
    devs = devs if devs is not None else devices()
    gpus = [d for d in devs if d["kind"] == "GPU"]
    if gpus:
        return ", ".join(f"GPU: {d['name']}" for d in gpus)
    cpu = devs[-1]
    return f"CPU ({cpu.get('cores')} cores)"


def precision_policy(mode: str = "auto") -> str:
    """Keras dtype policy: mixed bfloat16 on GPUs that have it (compute capability 8+), else float32."""
    if mode == "off":
        return "float32"
    if mode == "bfloat16":
        return "mixed_bfloat16"
    if mode == "float16":
        return "mixed_float16"
    gpus = [d for d in devices() if d["kind"] == "GPU"]
    if gpus and all((d.get("compute_capability") or (0, 0))[0] >= 8 for d in gpus):
        return "mixed_bfloat16"
    return "float32"


def memory_in_use() -> int:
    """Resident memory of this process in bytes."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except Exception:
        return 0
