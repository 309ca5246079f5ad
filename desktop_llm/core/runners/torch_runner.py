"""PyTorch: Keras' own step, one step per call (Keras' torch trainer allows no more), eager by
default (`torch.compile` took minutes per shape here and recompiled between training and
evaluation), NumPy feeding (keras_fit.py), one device: Keras 3.15 has no data parallelism for
torch (keras#23418 came later). The device is Keras' choice: CUDA, MPS, XPU, else the CPU
(`KERAS_TORCH_DEVICE` overrides it)."""

from __future__ import annotations

from desktop_llm.core.runners.keras_fit import OneDevice, evaluate, validation  # noqa: F401 - the runner's API


def setup(devices, cluster=(), worker_index: int = 0, model_parallel: int = 1, layout=None):
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.distribute import parse_devices
    from desktop_llm.core.runners import refuse_model_parallel

    refuse_model_parallel("torch", model_parallel)

    if cluster:
        raise ConfigError("The torch backend trains on one machine (Keras has no data parallelism for it yet): "
                          "use --backend tensorflow or jax for several.")
    import torch

    gpus = torch.cuda.device_count()
    kind, which = parse_devices(devices, gpus)
    if kind in ("cpu:", "gpu:") or (kind == "gpu" and len(which) > 1):
        raise ConfigError(f"--devices {devices}: the torch backend trains on one device (Keras has no data "
                          "parallelism for it yet); use --backend jax or tensorflow for several.")
    return OneDevice(1, 1, 0, [_keras_torch_device()])


def _keras_torch_device() -> str:
    """The device Keras' torch backend picks, by the same rule (its choice is not public API)."""
    import os

    import torch

    if os.environ.get("KERAS_TORCH_DEVICE"):
        return os.environ["KERAS_TORCH_DEVICE"]
    if torch.backends.mps.is_available():
        return "mps"
    if torch.cuda.is_available():
        return "cuda"
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return "xpu"
    return "cpu"


def devices() -> list[dict]:
    import torch

    from desktop_llm.core.runners import cpu_entry

    out = []
    for i in range(torch.cuda.device_count()):
        out.append({"kind": "GPU", "name": torch.cuda.get_device_name(i), "id": f"cuda:{i}",
                    "compute_capability": tuple(torch.cuda.get_device_capability(i))})
    if torch.backends.mps.is_available():
        out.append({"kind": "GPU", "name": "Apple GPU (MPS)", "id": "mps", "compute_capability": None})
    return out + [cpu_entry()]


def compile_options(training, k: int) -> dict:
    return {"jit_compile": False, "steps_per_execution": 1}


def fit(ctx, model, dist, family, data, begin: int, end: int, k: int, validation_every: int, callbacks) -> None:
    from desktop_llm.core.runners import keras_fit

    keras_fit.fit(ctx, model, family, data, begin, end, k, validation_every, callbacks)


def compiled(model, fn, jit_compile: bool = False):
    """fn(*arrays) over `model`'s weights, without gradients (probes, inference); eager."""
    import torch

    def call(*args):
        with torch.no_grad():
            return fn(*args)

    return call


def gradients(model, fn):
    """g(*arrays): the gradient of the scalar fn(*arrays) for each of `model.trainable_variables`
    (None where it gets none), as NumPy; eager, and the weights' own `.grad` are left as they were."""
    import torch

    def call(*args):
        params = [v.value for v in model.trainable_variables]
        with torch.enable_grad():
            grads = torch.autograd.grad(fn(*args), params, allow_unused=True)
        return [None if g is None else g.detach().float().cpu().numpy() for g in grads]

    return call
