"""Where a run trains: which devices, how many replicas, how many machines (tf.distribute).

`setup` is the trainer's seam to TensorFlow's distribution engine, and it must run before any
other TensorFlow op of the process: GPU memory growth, logical devices and the multi-worker
strategy can only be configured before TensorFlow initialises its devices.

- one device (a GPU, or the CPU): TensorFlow's default strategy, and the trainer's fast path
  (`model.fit`, XLA over fused steps);
- several local devices (`--devices all|N|0,2`, or `cpu:N` logical CPUs for testing and
  teaching): `tf.distribute.MirroredStrategy`;
- several machines (`--cluster host:port,... --worker-index i`, or `TF_CONFIG`):
  `tf.distribute.MultiWorkerMirroredStrategy`, whose collectives time out (a dead worker becomes
  an error in the others, never a hang).
Both distributed cases train with `replicated_loop.fit_replicated` (`model.fit` fails under the
multi-worker strategy: keras-team/keras#20585).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from desktop_llm.core.config import ConfigError
from desktop_llm.core.device import gpu_memory_growth

# A worker silent this long is taken as dead ($DESKTOP_LLM_COLLECTIVE_TIMEOUT overrides it).
COLLECTIVE_TIMEOUT_S = float(os.environ.get("DESKTOP_LLM_COLLECTIVE_TIMEOUT", "60"))


@dataclass
class Distribution:
    strategy: object
    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    devices: list[str] = field(default_factory=list)
    kind: str = "default"  # default | mirrored | multi_worker

    def scope(self):
        return self.strategy.scope()

    @property
    def is_chief(self) -> bool:
        """Only the chief (worker 0) writes the run folder: checkpoints, metrics, status."""
        return self.worker_index == 0

    @property
    def xla_ok(self) -> bool:
        """XLA cannot run a replica's step on a logical CPU device other than the first (its
        variables live on a device XLA's CPU backend does not address): measured, TF 2.21."""
        return not (self.kind == "mirrored" and any("CPU" in d for d in self.devices))

    @property
    def distributed(self) -> bool:
        return self.kind != "default"

    def describe(self) -> str:
        if self.kind == "multi_worker":
            return f"{self.workers} workers x {self.replicas // max(1, self.workers)} replica(s)"
        if self.kind == "mirrored":
            return f"{self.replicas} replicas ({', '.join(d.split('device:')[-1] for d in self.devices)})"
        return ""


LOGICAL_GPU_MB = 4096  # memory of each logical GPU when one GPU is split (--devices gpu:N)


def parse_devices(spec: str | None, gpu_count: int) -> tuple[str, list[int] | int]:
    """("gpu", [indices]), ("cpu", 1), or ("cpu:"/"gpu:", n logical devices) for a `--devices`
    value; ConfigError if impossible."""
    s = (spec or "auto").strip().lower()
    if s in ("auto", "all"):
        return ("gpu", list(range(gpu_count))) if gpu_count else ("cpu", 1)
    if s == "cpu":
        return "cpu", 1
    if s.startswith(("cpu:", "gpu:")):
        try:
            n = int(s[4:])
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--devices {spec}: give a number of logical devices, e.g. {s[:3]}:2.")
        if s.startswith("gpu:") and not gpu_count:
            raise ConfigError(f"--devices {spec}: this machine has no GPU; use cpu:{n}.")
        return s[:3] + ":", n
    if s == "0":
        s = "0,"  # "--devices 0" reads as GPU 0 (a count of none would mean nothing)
    if s.isdigit():
        n = int(s)
        if n < 1 or n > gpu_count:
            raise ConfigError(f"--devices {spec}: this machine has {gpu_count} GPU(s).")
        return "gpu", list(range(n))
    try:
        ids = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"--devices {spec}: use all, a count (2), GPU numbers (0,2), cpu or cpu:N.") from None
    bad = [i for i in ids if i < 0 or i >= gpu_count]
    if not ids or bad:
        raise ConfigError(f"--devices {spec}: this machine has GPUs 0..{gpu_count - 1}" if gpu_count
                          else f"--devices {spec}: this machine has no GPU; use cpu.")
    return "gpu", ids


def tf_config(cluster: list[str] | tuple[str, ...], worker_index: int) -> dict:
    if not 0 <= worker_index < len(cluster):
        raise ConfigError(f"--worker-index {worker_index}: the cluster has workers 0..{len(cluster) - 1}.")
    return {"cluster": {"worker": list(cluster)}, "task": {"type": "worker", "index": worker_index}}


def batch_split_advice(batch: int, replicas: int) -> str | None:
    """None when a global batch of `batch` splits evenly over `replicas`; otherwise the advice,
    "use 10 or 15" (the nearest sizes that do). The one rule the trainer, the Train page and the
    cluster dialog state, each in its own words around it."""
    n = max(1, int(replicas))
    if batch % n == 0:
        return None
    lo = batch // n * n
    return f"use {lo or n} or {lo + n}"


def setup(devices: str | None = "auto", cluster: list[str] | tuple[str, ...] = (), worker_index: int = 0,
          timeout_s: float = COLLECTIVE_TIMEOUT_S) -> Distribution:
    """Configure this process's devices and return its distribution. Call before any TF op."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if cluster:
        os.environ["TF_CONFIG"] = json.dumps(tf_config(cluster, worker_index))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    kind, which = parse_devices(devices, len(gpus))
    try:
        if kind == "gpu:":  # one GPU split into `which` logical GPUs: data parallelism on one card
            tf.config.set_visible_devices(gpus[0], "GPU")
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=LOGICAL_GPU_MB)] * which)
        else:
            gpu_memory_growth()  # (TensorFlow refuses memory growth on a split GPU)
        if kind in ("cpu", "cpu:"):
            tf.config.set_visible_devices([], "GPU")
        if kind == "cpu:":
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * which)
        elif kind == "gpu" and len(which) < len(gpus):
            tf.config.set_visible_devices([gpus[i] for i in which], "GPU")
    except RuntimeError:
        pass  # TensorFlow already started in this process (tests): checked below

    tf_cfg = os.environ.get("TF_CONFIG")
    if tf_cfg:
        cfg = json.loads(tf_cfg)
        workers = len(cfg.get("cluster", {}).get("worker", [])) + len(cfg.get("cluster", {}).get("chief", []))
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        task = cfg.get("task", {})
        index = int(task.get("index", 0)) + (1 if task.get("type") == "worker" and "chief" in cfg["cluster"] else 0)
        return Distribution(strategy, strategy.num_replicas_in_sync, workers, index, [], "multi_worker")

    if kind == "cpu":
        names = [d.name for d in tf.config.list_logical_devices("CPU")][:1]
    elif kind in ("cpu:", "gpu:"):
        names = [d.name for d in tf.config.list_logical_devices(kind[:3].upper())]
        if len(names) < which:
            raise ConfigError(f"--devices {devices}: logical devices must be set before TensorFlow "
                              "starts; run the trainer in a new process (the CLI does).")
        names = names[:which]
    else:
        names = [d.name for d in tf.config.list_logical_devices("GPU")][: len(which)]
    if len(names) > 1:
        # NCCL needs distinct physical GPUs; logical devices reduce through one device.
        ops = tf.distribute.ReductionToOneDevice() if kind != "gpu" else None
        strategy = tf.distribute.MirroredStrategy(devices=names, cross_device_ops=ops)
        return Distribution(strategy, len(names), 1, 0, names, "mirrored")
    return Distribution(tf.distribute.get_strategy(), 1, 1, 0, names, "default")
