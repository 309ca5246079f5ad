"""The Train page's choice of devices in figures: the choices the device probe allows, replicas and
per-replica batch, and the training memory of one replica against the chosen device's memory.

Pure functions over the probe's list (`desktop-llm devices --json`, see core/device.py): nothing
here imports TensorFlow, so the window can use them from its first frame.
"""

from __future__ import annotations

import math
from dataclasses import replace

from desktop_llm.core.config import ConfigError, ModelConfig, estimate, human_bytes
from desktop_llm.core.distribute import LOGICAL_GPU_MB, batch_split_advice, parse_devices

CPU_SPLIT = "cpu:2"  # two logical CPU devices: data parallelism to try without the hardware


def gpus(devices: list[dict] | None) -> list[dict]:
    return [d for d in devices or [] if d.get("kind") == "GPU"]


def gpu_spec(i: int) -> str:
    """TrainConfig.devices for GPU i alone. A bare number is a count of GPUs (`2`: the first two),
    so one GPU by its number is a list of one (`1,`)."""
    return f"{i},"


def choices(devices: list[dict] | None) -> list[tuple[str, str, str]]:
    """(label, TrainConfig.devices, tooltip) for the device picker, in the order shown."""
    g = gpus(devices)
    auto = ("Auto (all GPUs)" if g else "Auto (all GPUs, else the CPU)" if devices is None
            else "Auto (the CPU: no GPU here)")  # the probe has run and found none: say what auto is
    out = [(auto, "auto",
            "Every GPU this machine has, one replica each" + ("" if g or devices is None else
                                                              ": none here, so the CPU"))]
    for i, d in enumerate(g):
        mem = f" · {d['memory'] / 2**30:.0f} GB" if d.get("memory") else ""
        out.append((f"GPU {i} · {d.get('name', '')}{mem}", gpu_spec(i), _gpu_tip(i, d)))
    out.append(("CPU", "cpu", "The processor, one replica (slower; no GPU memory used)"))
    out.append(("CPU split in 2 (test)", CPU_SPLIT,
                ("Two logical CPU devices, two replicas: tries data parallelism (MirroredStrategy) "
                 "on any machine; not faster")))
    return out


def _gpu_tip(i: int, d: dict) -> str:
    bits = [f"GPU {i}: {d.get('name', '')}"]
    if d.get("memory"):
        bits.append(f"{human_bytes(d['memory'])} of memory")
    cc = d.get("compute_capability")
    if cc:
        bits.append(f"compute capability {cc[0]}.{cc[1]}")
    return ", ".join(bits)


def replicas(spec: str, devices: list[dict] | None) -> int:
    """How many replicas `spec` trains on with these devices; ConfigError if it cannot be."""
    kind, which = parse_devices(spec, len(gpus(devices)))
    return len(which) if kind == "gpu" else int(which)


def batch_split(batch: int, n: int) -> tuple[bool, str]:
    """(splits evenly, the line shown next to the batch size)."""
    advice = batch_split_advice(batch, n)
    if advice:
        return False, f"{batch} does not split over {n} replicas: {advice}"
    return True, f"{n} replica{'s' if n > 1 else ''} × {batch // n} = {batch}"


def chosen_gpus(spec: str, devices: list[dict] | None) -> list[dict]:
    """The GPUs `spec` trains on ([] for the CPU)."""
    g = gpus(devices)
    kind, which = parse_devices(spec, len(g))
    if kind == "gpu":
        return [g[i] for i in which]
    return g[:1] if kind == "gpu:" else []


def half_precision(spec: str, devices: list[dict] | None) -> bool:
    """Whether TrainConfig.mixed_precision "auto" trains these devices in bfloat16 (GPUs of compute
    capability 8+, as core.device.precision_policy decides), i.e. activations of 2 bytes."""
    chosen = chosen_gpus(spec, devices)
    return bool(chosen) and all((d.get("compute_capability") or (0, 0))[0] >= 8 for d in chosen)


def memory_per_replica(model: ModelConfig, batch: int, n: int, half: bool = False, family=None) -> int:
    """Training memory of one replica: each holds the whole model (weights, gradients, the two AdamW
    moments, float32) and its share of the batch's activations (half the bytes in bfloat16/float16).
    `family`: whose model it is (core.models; default the GPT's)."""
    m = replace(model, vocabulary_size=max(1, model.vocabulary_size))
    e = family.estimate(m, math.ceil(batch / max(1, n))) if family is not None else estimate(m, math.ceil(batch / max(1, n)))
    fixed = 4 * e.weights_bytes
    acts = e.training_bytes - fixed
    return fixed + (acts // 2 if half else acts)


def device_memory(spec: str, devices: list[dict] | None) -> tuple[int | None, str]:
    """(bytes one replica may use, what that is) for the chosen devices: the smallest chosen GPU's
    memory (None when the probe could not read it), or this machine's RAM for the CPU."""
    chosen = chosen_gpus(spec, devices)
    if chosen and spec.strip().lower().startswith("gpu:"):
        return LOGICAL_GPU_MB * 2**20, f"the {LOGICAL_GPU_MB // 1024} GiB of each logical GPU"
    if chosen:
        mems = [d.get("memory") for d in chosen]
        if not all(mems):
            return None, ""
        d = min(chosen, key=lambda x: x["memory"])
        return d["memory"], f"the {human_bytes(d['memory'])} of {d.get('name') or 'the GPU'}"
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001 - no figure, no warning
        return None, ""
    return ram, f"this machine's {human_bytes(ram)} of memory"


def memory_warning(model: ModelConfig, batch: int, spec: str, devices: list[dict] | None, family=None) -> str:
    """A line to show when one replica's estimated training memory exceeds its device's memory;
    "" when it fits, or when a figure is unknown."""
    try:
        model.validate()
        n = replicas(spec, devices)
    except ConfigError:
        return ""
    if devices is None and spec == "auto":
        return ""  # not known yet which device "auto" is
    half = half_precision(spec, devices)
    need = memory_per_replica(model, batch, n, half, family)
    limit, what = device_memory(spec, devices)
    if limit is None:
        return ""
    shared = not chosen_gpus(spec, devices)  # logical CPU devices share the one RAM
    total = need * n if shared else need
    if total <= limit:
        return ""
    details = f"batch {math.ceil(batch / n)} per replica, {'bfloat16' if half else 'float32'} activations"
    if shared and n > 1:
        amount = f"about {human_bytes(total)} for its {n} replicas together ({human_bytes(need)} each, {details})"
    else:
        amount = f"about {human_bytes(need)}{'' if shared else ' per replica'} ({details})"
    advice = ("Lower the batch or the context length." if shared else
              "Lower the batch or the context length, or split the batch over more GPUs.")
    return f"Training may run out of memory: it needs {amount}, more than {what}. {advice}"
