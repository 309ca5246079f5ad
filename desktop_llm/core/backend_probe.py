"""On a CPU, which Keras backend trains this run's model fastest: each installed one timed on the
run's own model and first batch, in a process of its own, once per machine and shape.

Why: the fastest backend depends on the CPU and the shape (benchmarks/README.md, issue 27). On an
AMD EPYC with AVX-512, TensorFlow with XLA led on the reference model (1.33x nanoGPT; JAX 0.75x,
PyTorch 0.65x); on an Intel Xeon with AMX, XLA never reaches AMX and bfloat16 without XLA was
1.8x faster at the `base` preset; on an AVX2 CPU PyTorch's matrix products ran at twice
TensorFlow's. A backend is chosen once per process, before Keras loads (core/backend.py), so each
candidate runs in a child (`desktop-llm speed-probe`), which prints its best setting's time per
step. The answer is kept in speed_probe's cache (`speed.json`), beside the TensorFlow settings'.

It runs only where there is something to choose: `--backend auto`, no GPU (a GPU decides the
backend), one process on one device, the precision and XLA left to `auto`, more than one backend
installed. `DESKTOP_LLM_SPEED_PROBE=0` turns it off, as it does the settings probe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from desktop_llm.core import backend, speed_probe

# (label, jit_compile, Keras dtype policy) per backend; bfloat16 ones only on CPUs that have it.
SETTINGS = {
    "tensorflow": (("XLA, float32", True, "float32"), ("no XLA, bfloat16", False, "mixed_bfloat16")),
    "jax": (("XLA, float32", True, "float32"),),  # JAX compiles everything; its CPU bfloat16 is slow
    "torch": (("eager, float32", False, "float32"), ("eager, bfloat16", False, "mixed_bfloat16")),
}
PROBE_TIMEOUT_S = 600
PROBE_STEPS_PER_CALL = 5  # the trainer's k (often 10) caps at this: its gain is mostly there, at half the time


def settings(name: str, flags: set[str] | None = None) -> tuple:
    """The settings timed on backend `name` on a CPU with these instruction-set flags."""
    bf16 = speed_probe.has_bfloat16(speed_probe.cpu_flags() if flags is None else flags)
    return tuple(s for s in SETTINGS[name] if bf16 or s[2] == "float32")


def wanted(requested: str | None, cfg, cluster=()) -> bool:
    """Whether `auto` should time the backends for this run here (see the module docstring)."""
    t = cfg.training
    if (requested or "auto") != "auto" or not speed_probe.enabled():
        return False
    if cluster or t.model_parallel > 1 or (t.devices or "auto").strip().lower() not in ("auto", "all", "cpu"):
        return False
    if t.mixed_precision != "auto" or not t.jit_compile or "keras" in sys.modules:
        return False
    return len(backend.available()) > 1 and backend.current().cpu  # (False where $KERAS_BACKEND chose)


def choose(run, cfg, home, say=lambda text: None) -> backend.Choice | None:
    """The fastest installed backend for `run`'s model (`cfg` with its vocabulary size), timed now
    or earlier; None where no backend could be timed. A backend that fails is left out, with why."""
    hit = speed_probe.backends_cached(cfg)
    if hit is None:
        names = backend.available()
        say(f"Timing {', '.join(names)} on this CPU with this model (once per model shape)")
        found, failed = {}, {}
        for name in names:
            try:
                found[name] = _time_in_child(run, home, name)
            except (OSError, ValueError, subprocess.SubprocessError) as e:
                failed[name] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if not found:
            say("No backend could be timed (" + "; ".join(f"{n}: {w}" for n, w in failed.items()) + ")")
            return None
        winner = min(found, key=lambda n: found[n]["ms"])
        hit = {"backend": winner, "settings": found, "failed": failed}
        table = speed_probe._read()
        table[speed_probe.backends_key(cfg)] = hit
        if winner == "tensorflow":  # the trainer's own settings probe finds its answer here
            table[speed_probe.key(cfg)] = {k: found[winner][k] for k in ("jit_compile", "policy", "label")} | {
                "ms": found[winner]["all"]}
        speed_probe._write(table)
        again = False
    else:
        again = True
    s = hit["settings"]
    winner = hit["backend"]
    others = ", ".join(f"{n} {s[n]['ms']:.1f}" for n in sorted(s, key=lambda n: s[n]["ms"]) if n != winner)
    return backend.Choice(winner, f"the fastest on this CPU for this model: {s[winner]['ms']:.1f} ms per step "
                                  f"({s[winner]['label']})" + (f" against {others}" if others else "")
                                  + (" (measured earlier)" if again else ""), cpu=True)


def _time_in_child(run, home, name: str) -> dict:
    """{label, jit_compile, policy, ms, all}: `desktop-llm speed-probe` on backend `name`."""
    cmd = [sys.executable, "-m", "desktop_llm", "--home", str(home), "speed-probe", run.id,
           "--backend", name]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False,
                       env=dict(os.environ, DESKTOP_LLM_SPEED_PROBE="0"))  # the child times; it does not choose
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        raise ValueError((p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1])
    return json.loads(lines[-1])


def measure(run) -> dict:
    """In the child: this process's backend's settings, each timed on the run's model and first
    batch; the fastest, with every time (`all`)."""
    import keras

    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import ensure_tokenizer, fused_steps, make_optimizer

    cfg = run.config
    family = get_family(cfg.family)
    quiet = lambda event: None  # noqa: E731 - the run's data is already prepared (the parent did it)
    tok = ensure_tokenizer(run, cfg, quiet)
    data = family.prepare_data(run, cfg, tok, quiet)
    mcfg = replace(cfg.model, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, cfg))
    t = cfg.training
    batch = next(iter(family.train_batches(data, 0, t.max_steps, t.batch_size, cfg.model.sequence_length, t.seed,
                                           tok.vocabulary_size)))
    name = backend.current().name
    k = 1 if name == "torch" else min(PROBE_STEPS_PER_CALL, fused_steps(cfg))  # as the runners call them
    ms = {}
    for label, jit, policy in settings(name):
        keras.mixed_precision.set_global_policy(policy)
        model = family.build_for_run(run, cfg, mcfg, seed=t.seed)
        model.compile(optimizer=make_optimizer(cfg), **family.compile_args(), jit_compile=jit or name == "jax",
                      steps_per_execution=k)
        ms[label] = round(1000 * speed_probe.time_calls(model, batch, k), 2)
        del model
    label = min(ms, key=ms.get)
    _, jit, policy = next(s for s in SETTINGS[name] if s[0] == label)
    return {"label": label, "jit_compile": jit, "policy": policy, "ms": ms[label], "all": ms}


def prepare(run, emit):
    """The run's tokenizer and data, made here (the probes' children and the trainer read them),
    and its config with the model's vocabulary size, as the trainer builds it (the cache's key)."""
    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import ensure_tokenizer

    cfg = run.config
    family = get_family(cfg.family)
    tok = ensure_tokenizer(run, cfg, emit)
    family.prepare_data(run, cfg, tok, emit)
    return replace(cfg, model=replace(cfg.model, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, cfg)))
