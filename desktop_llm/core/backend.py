"""Which Keras backend this process computes with: TensorFlow, JAX or PyTorch, chosen once.

Keras reads its backend when it is first imported, so the choice is made here, before anything
imports Keras, and kept for the process's life (`apply`). Each backend reaches GPUs the others
cannot (README, "Backends"): TensorFlow has no native Windows GPU since 2.11 and no working Metal
plugin for TF >= 2.20; JAX reaches Linux CUDA only; PyTorch reaches Windows CUDA and Apple's MPS.
`auto` takes the backend that reaches this machine's GPU, and TensorFlow on a CPU, where it is
the fastest on this project's reference machines (benchmarks/README.md); `train` then times the
installed backends on the run's own model and may pick another (core/backend_probe.py). The reason is kept with
the choice: the start event, the run's status and the Train page say what was chosen and why.
Nothing here imports a framework: the checks are installed packages and `nvidia-smi`.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from dataclasses import dataclass

from desktop_llm.core.config import ConfigError

BACKENDS = ("tensorflow", "jax", "torch")
CHOICES = ("auto", *BACKENDS)
EXTRA = {"tensorflow": "", "jax": "jax", "torch": "torch"}  # pip install "desktop_llm[jax]"


@dataclass(frozen=True)
class Choice:
    name: str  # tensorflow | jax | torch
    reason: str  # one line: why this backend ("asked for", "reaches the NVIDIA GPU on Windows"...)
    cpu: bool = False  # auto's choice for a CPU, where timing the backends can choose (core/backend_probe.py)

    def to_dict(self) -> dict:
        return {"backend": self.name, "backend_reason": self.reason}


_applied: Choice | None = None


def installed(name: str) -> bool:
    """Whether a backend's framework is installed (found, not imported: imports take seconds)."""
    return importlib.util.find_spec(name) is not None


def available() -> list[str]:
    return [b for b in BACKENDS if installed(b)]


def _has_nvidia_gpu() -> bool:
    from desktop_llm.core.device import gpu_memory

    return bool(gpu_memory())


def _jax_reaches_cuda() -> bool:
    # jax[cuda12] / jax[cuda13] install their plugin as a package of its own
    return any(importlib.util.find_spec(p) is not None for p in ("jax_cuda12_plugin", "jax_cuda13_plugin",
                                                                   "jax_plugins.xla_cuda12"))


def _tensorflow_reaches_cuda() -> bool:
    # tensorflow[and-cuda] brings NVIDIA's libraries as pip packages; a system CUDA is not seen here
    return importlib.util.find_spec("nvidia.cudnn") is not None and installed("tensorflow")


def choose(requested: str | None = "auto", system: str | None = None, nvidia: bool | None = None,
           machine: str | None = None) -> Choice:
    """The backend for `requested` (auto, tensorflow, jax or torch) on this machine, with why.

    A backend that is not installed is a ConfigError naming the extra that installs it.
    `system`, `nvidia` and `machine` stand in for this machine's in tests."""
    want = (requested or "auto").strip().lower()
    if want not in CHOICES:
        raise ConfigError(f"--backend {requested}: use one of {', '.join(CHOICES)}.")
    if want != "auto":
        if not installed(want):
            extra = f'pip install "desktop_llm[{EXTRA[want]}]"' if EXTRA[want] else "pip install tensorflow"
            raise ConfigError(f"The {want} backend is not installed here: {extra}, or pick another backend.")
        return Choice(want, "asked for")
    env = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if env in BACKENDS and installed(env):
        return Choice(env, "KERAS_BACKEND says so")
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    nvidia = _has_nvidia_gpu() if nvidia is None else nvidia
    have = available()

    def pick(order, reason):
        for b in order:
            if b in have:
                return Choice(b, reason(b))
        return None

    found = None
    if nvidia and system == "Linux":
        if _tensorflow_reaches_cuda():
            found = Choice("tensorflow", "reaches the NVIDIA GPU (TensorFlow's CUDA libraries are installed)")
        else:
            found = pick(("jax", "torch"), lambda b: f"reaches the NVIDIA GPU ({'JAX' if b == 'jax' else 'PyTorch'} "
                                                     "with CUDA; TensorFlow's CUDA libraries are not installed)")
    elif nvidia and system == "Windows":
        found = pick(("torch",), lambda b: "reaches the NVIDIA GPU on Windows (TensorFlow and JAX cannot)")
    elif system == "Darwin" and machine in ("arm64", "aarch64"):
        found = pick(("torch",), lambda b: "reaches the Apple GPU (MPS; TensorFlow and JAX cannot)")
    # A GPU that no installed backend reaches: say which would, and train on the CPU meanwhile.
    missing = ("torch" if system in ("Windows", "Darwin") else "jax") if (nvidia or system == "Darwin") else ""
    if found is None and missing and (nvidia or machine in ("arm64", "aarch64")):
        found = pick(("tensorflow", "jax", "torch"),
                     lambda b: f"the GPU here needs {missing} (pip install \"desktop_llm[{missing}]\"): "
                               "training on the CPU")
    if found is None:
        found = pick(("tensorflow", "jax", "torch"),
                     lambda b: "no GPU it could reach: TensorFlow with XLA, the fastest on the CPUs measured"
                     if b == "tensorflow" else "TensorFlow is not installed")
        found = found and Choice(found.name, found.reason, cpu=True)
    if found is None:
        raise ConfigError("No Keras backend is installed: pip install tensorflow (or jax, or torch).")
    return found


def apply(requested: str | None = "auto", choice: Choice | None = None) -> Choice:
    """Choose the backend (or take `choice`, made by timing them: core/backend_probe.py) and make
    it Keras' for this process. Call before Keras is imported; once Keras is loaded, asking for
    another backend is a ConfigError (restart the process)."""
    global _applied
    choice = choice or choose(requested)
    if "keras" in sys.modules:
        import keras

        loaded = keras.backend.backend()
        if loaded != choice.name:
            if (requested or "auto") == "auto":
                choice = Choice(loaded, "Keras was already loaded with it in this process")
            else:
                raise ConfigError(f"This process already computes with {loaded}: --backend {choice.name} "
                                  "needs a new process.")
    os.environ["KERAS_BACKEND"] = choice.name
    _applied = choice
    return choice


def current() -> Choice:
    """The backend this process computes with: `apply`'s, else `auto`'s, applied now (Keras' own
    where it was loaded first)."""
    return _applied if _applied is not None else apply("auto")


def require_tensorflow(what: str) -> None:
    """One line for a feature only TensorFlow has (SavedModel, LiteRT and ONNX export, WordPiece
    training, TensorBoard logs), on a process that computes with another backend."""
    name = current().name
    if name != "tensorflow":
        raise ConfigError(f"{what} needs TensorFlow: this process computes with {name}. "
                          "Use --backend tensorflow.")
