"""One runner per Keras backend: the only training code that differs between TensorFlow, JAX and
PyTorch (feeding the batches, steps per compiled call, devices and distribution).

Everything else (the model, the loss and metrics, AdamW, the schedule, the callback that turns
steps into events, checkpoints) is Keras' or `keras.ops` and the same on every backend. A runner
is a module with:

    setup(devices, cluster, worker_index, model_parallel, layout) -> Distribution   where the run trains
    devices() -> [dict]                                     the GPUs it reaches, then the CPU
    compile_options(training, k) -> dict                    `compile`'s jit_compile and steps per call
    fit(ctx, model, dist, family, data, begin, end, k, validation_every, callbacks)
    validation(arrays, batch) / evaluate(model, validation) -> dict
    compiled(model, fn, jit_compile) -> fn over the model's current weights (probes, generation)
    gradients(model, fn) -> g(*arrays) -> [array | None]    d fn / d each trainable weight, compiled (probes)
"""

from __future__ import annotations

import importlib
import os
import platform

from desktop_llm.core.backend import current

MODEL_PARALLEL_BACKEND = "jax"  # the one backend that shards weights (keras.distribution.ModelParallel)


def refuse_model_parallel(backend_name: str, model_parallel: int) -> None:
    """One line where `--model-parallel` meets a backend that cannot shard weights (the rule the
    CLI checks before a run exists and each runner's setup checks again)."""
    from desktop_llm.core.config import ConfigError

    if model_parallel > 1 and backend_name != MODEL_PARALLEL_BACKEND:
        raise ConfigError(f"Splitting the model (--model-parallel, the Train page's Model split) shards the weights "
                          f"on the {MODEL_PARALLEL_BACKEND} backend only (keras.distribution): choose it "
                          f"(--backend {MODEL_PARALLEL_BACKEND}, or JAX in the Backend box).")


def refuse_uneven_split(model_parallel: int, count: int, devices) -> None:
    """One line where `--model-parallel` does not divide the devices of a machine (`count`): each
    weight is sharded over devices of one machine, never across machines (jax_runner). The CLI
    checks `cpu:N` before a run exists; the runner checks what it finds (GPUs, other machines)."""
    from desktop_llm.core.config import ConfigError

    if model_parallel > 1 and count % model_parallel:
        raise ConfigError(f"--model-parallel {model_parallel} shards each weight over the devices of one machine: "
                          f"--devices {devices or 'auto'} gives {count} here; choose a number that divides it.")


def get(name: str | None = None):
    """The runner of backend `name` (default: this process's, core/backend.py)."""
    name = name or current().name
    return importlib.import_module(f"desktop_llm.core.runners.{name}_runner")


def inference(model, jit_compile: bool | None = False):
    """`model(x, training=False)` compiled once by this process's runner (the classifier's
    predictions, the translator's decoding, the probes). Not Keras' `predict_on_batch`: under
    tf.distribute it split a batch over the replicas and gave back twice the rows."""
    return get().compiled(model, lambda x: model(x, training=False), jit_compile)


def devices() -> list[dict]:
    """[{kind, name, memory?, memory_used?, compute_capability?}]: the GPUs this process's backend
    reaches, then the CPU. A GPU's memory (bytes, total and in use) comes from nvidia-smi, where
    there is one."""
    from desktop_llm.core.device import gpu_memory, match_rows, visible_rows

    out = get().devices()
    gpus = [d for d in out if d["kind"] == "GPU"]
    smi = match_rows([d["name"] for d in gpus], visible_rows(gpu_memory())) if gpus else []
    for d, row in zip(gpus, smi):
        if row is not None:
            d.update(memory=row["memory"], memory_used=row["memory_used"])
    return out


def cpu_entry() -> dict:
    return {"kind": "CPU", "name": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "id": "/physical_device:CPU:0"}
