"""JAX: Keras' own step, k steps per compiled call (`steps_per_execution`: the weights stay on the
device between them), NumPy feeding (keras_fit.py), and several devices through
`keras.distribution.DataParallel` (logical CPU devices by XLA's host device count); several
machines through `keras.distribution.initialize` (JAX's multi-controller runtime: every worker
runs the same program on its own share of each batch), the devices of each machine sharing each
weight with `--model-parallel`."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from desktop_llm.core.runners import refuse_uneven_split
from desktop_llm.core.runners.keras_fit import OneDevice, evaluate, validation  # noqa: F401 - the runner's API


def setup(devices, cluster=(), worker_index: int = 0, model_parallel: int = 1, layout=None):
    """The devices, and how they share the work: one; several splitting the batch (DataParallel);
    or, with `model_parallel` > 1, a (batch x model) mesh whose "model" axis shards each weight
    as `layout(mesh)` (the family's LayoutMap) says (ModelParallel)."""
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.distribute import parse_devices

    spec = (devices or "auto").strip().lower()
    if spec.startswith("cpu:"):  # before JAX starts its CPU backend: it reads the count once
        n = parse_devices(spec, 0)[1]
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={n}").strip()
    # Like TensorFlow's memory growth: take GPU memory as needed, not 75% of it at start, so the
    # window's own inference and a trainer can share a GPU.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    if cluster:
        return _machines(spec, devices, cluster, worker_index, model_parallel, layout)

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    kind, which = parse_devices(spec, len(gpus))
    if kind == "gpu:":
        raise ConfigError(f"--devices {devices}: splitting one GPU is for the tensorflow backend.")
    if kind == "cpu:":
        chosen = jax.devices("cpu")[:which]
        if len(chosen) < which:
            raise ConfigError(f"--devices {devices}: logical devices must be set before JAX starts; run the "
                              "trainer in a new process (the CLI does).")
    elif kind == "cpu":
        chosen = jax.devices("cpu")[:1]
    else:
        chosen = [gpus[i] for i in which]
    names = [f"{d.platform}:{d.id}" for d in chosen]
    if model_parallel > 1:
        import keras

        refuse_uneven_split(model_parallel, len(chosen), devices)
        batch = len(chosen) // model_parallel
        mesh = keras.distribution.DeviceMesh((batch, model_parallel), ["batch", "model"], devices=names)
        layout_map = layout(mesh) if layout else None
        if layout_map is None:
            raise ConfigError("This family's model is not sharded yet: leave out --model-parallel.")
        keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout_map,
                                                                             batch_dim_name="batch"))
        return OneDevice(batch, 1, 0, names, "model_parallel")
    if len(chosen) > 1:
        import keras

        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=names))
        return OneDevice(len(chosen), 1, 0, names, "data_parallel")
    return OneDevice(1, 1, 0, names)


@dataclass
class Machines(OneDevice):
    """A run trained by several processes (machines), each feeding its share of every batch.
    Its distribution is entered around the model's building and training only (`scope`), so a
    model built outside it (`TrainingContext.alone`) lives on this process's devices alone: the
    views that one worker computes by itself (samples, probes, a family's figures, the chief's
    checkpoints) run on that copy, which JAX's multi-controller runtime needs (a computation on
    the shared weights must run on every worker)."""

    distribution: object = None
    shards: int = 1  # devices of one machine that share each weight (--model-parallel)

    def scope(self):
        return self.distribution.scope()

    def describe(self) -> str:
        each = len(self.devices) // max(1, self.workers)
        return (f"{self.workers} workers x {each} device(s) ({', '.join(self.devices)})"
                + (f": each weight sharded over {self.shards} devices of a machine, the batch split "
                   f"{self.replicas} ways" if self.shards > 1 else ""))


def _machines(spec, devices, cluster, worker_index: int, model_parallel: int, layout=None) -> Machines:
    import jax
    import keras

    from desktop_llm.core.config import ConfigError

    if not spec.startswith("cpu") and spec not in ("auto", "all"):
        raise ConfigError(f"--devices {devices} with --cluster: each machine trains on all its GPUs (or its CPU); "
                          "choose GPUs with CUDA_VISIBLE_DEVICES.")
    if not 0 <= worker_index < len(cluster):
        raise ConfigError(f"--worker-index {worker_index} is not a position in --cluster ({len(cluster)} workers).")
    if spec.startswith("cpu"):
        jax.config.update("jax_platforms", "cpu")
    # JAX's CPU devices reach other processes through Gloo (its default is none on a CPU)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(job_addresses=",".join(cluster), num_processes=len(cluster), process_id=worker_index)
    # machine by machine, so that a row of the mesh below is one machine's devices
    everywhere = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    names = [f"{d.platform}:{d.id}" for d in everywhere]
    if model_parallel > 1:
        # Each weight is sharded over the devices of one machine and copied across machines: the
        # "model" axis's collectives run at every layer, too often to cross a network, while the
        # "batch" axis's gradient sum runs once a step (Megatron's tensor parallelism likewise
        # stays inside a node). So each machine holds whole copies, as the chief's checkpoints need.
        refuse_uneven_split(model_parallel, len(jax.local_devices()), devices)
        mesh = keras.distribution.DeviceMesh((len(names) // model_parallel, model_parallel), ["batch", "model"],
                                             devices=names)
        layout_map = layout(mesh) if layout else None
        if layout_map is None:
            raise ConfigError("This family's model is not sharded yet: leave out --model-parallel.")
        distribution = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    else:
        distribution = keras.distribution.DataParallel(devices=names)
    distribution.auto_shard_dataset = False  # each worker feeds its own share (keras_fit.fit)
    return Machines(len(everywhere) // model_parallel, len(cluster), worker_index, names, "multi_worker",
                    distribution=distribution, shards=model_parallel)


def agree(flag: bool) -> bool:
    """The chief's `flag` on every worker (a stop request, which only the chief receives): one
    small collective per call of k steps, so all stop at the same step."""
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


@contextlib.contextmanager
def alone():
    """No distribution inside: what one worker of several computes by itself (see `Machines`)."""
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def devices() -> list[dict]:
    import jax

    from desktop_llm.core.runners import cpu_entry

    out = []
    for d in jax.devices():
        if d.platform == "gpu":
            cc = getattr(d, "compute_capability", None)
            out.append({"kind": "GPU", "name": getattr(d, "device_kind", str(d)), "id": f"gpu:{d.id}",
                        "compute_capability": tuple(int(x) for x in str(cc).split(".")) if cc else None})
    return out + [cpu_entry()]


def compile_options(training, k: int) -> dict:
    return {"jit_compile": training.jit_compile, "steps_per_execution": k}


def fit(ctx, model, dist, family, data, begin: int, end: int, k: int, validation_every: int, callbacks) -> None:
    from desktop_llm.core.runners import keras_fit

    with dist.scope():
        keras_fit.fit(ctx, model, family, data, begin, end, k, validation_every, callbacks,
                      share=(dist.worker_index, dist.workers))


def compiled(model, fn, jit_compile: bool = True):
    """fn(*arrays) over `model`'s current weights, compiled once per input shape (probes, inference).
    The weights go in as arguments (a `StatelessScope`, as keras-hub's own generate does on JAX),
    so the compiled function sees them as training moves them."""
    import jax
    import keras

    variables = model.variables

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    run = jax.jit(pure)  # always: JAX op by op is slow, and XLA is JAX's only compiler (the flag is TensorFlow's)
    return lambda *args: run([v.value for v in variables], *args)


def gradients(model, fn):
    """g(*arrays): the gradient of the scalar fn(*arrays) for each of `model.trainable_variables`,
    as NumPy: `jax.grad` of the function over the weights passed in (a `StatelessScope`), compiled
    once per input shape."""
    import jax
    import keras
    import numpy as np

    trainable = model.trainable_variables
    ids = {id(v) for v in trainable}
    others = [v for v in model.variables if id(v) not in ids]

    def pure(values, rest, *a):
        with keras.StatelessScope(state_mapping=list(zip(trainable, values)) + list(zip(others, rest))):
            return fn(*a)

    run = jax.jit(jax.grad(pure))
    return lambda *args: [np.asarray(g) for g in run([v.value for v in trainable], [v.value for v in others], *args)]
