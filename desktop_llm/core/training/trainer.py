"""`train_run`: a run folder in, checkpoints and a metrics stream out.

It prepares what the run's family needs (tokenizer, data) if the run lacks it, builds (or
restores) the model and AdamW state, and trains with Keras' `fit` through this process's backend
runner (core/runners: tf.data and k steps fused in one XLA program on TensorFlow, `tf.distribute`
for several devices; NumPy batches and `steps_per_execution` on JAX and PyTorch): a warm-up +
cosine schedule, weight decay and global gradient clipping, in phases where a family freezes part
of its model first. The callback in `context.py` turns each call of k steps into typed events
(core/events.py), validates, writes checkpoints and obeys pause/stop requests.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from desktop_llm.core import atomic, probes, snapshots, speed_probe, tensorboard_log
from desktop_llm.core import events as ev
from desktop_llm.core.checkpoints import CheckpointManager
from desktop_llm.core.config import ConfigError, RunConfig
from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.tokenizers import TokenizerError
from desktop_llm.core.training.advice import learned_little
from desktop_llm.core.training.context import TrainingContext, json_line, make_callback
from desktop_llm.core.training.control import Control
from desktop_llm.core.training.failures import (
    TrainingFailed,
    classify_failure,
    explain,
    fail,
    first_line,
)
from desktop_llm.core.training.preparation import Emit, ensure_tokenizer
from desktop_llm.core.training.schedule import fused_steps, make_optimizer


def train_run(run, emit: Emit = lambda e: None, control: Control | None = None, store=None,
              cluster: tuple[str, ...] = (), worker_index: int = 0) -> dict:
    """Train (or resume) `run` to its configured number of steps. Returns the final status dict.

    Never raises for training problems: they end the run with status "failed", a message and a
    suggestion, and the last good checkpoint is kept. With `cluster` (host:port of every worker)
    this process is worker `worker_index` of a multi-machine run; only worker 0 (the chief)
    writes the run folder.
    """
    if worker_index > 0:
        return _train_worker(run, emit, cluster, worker_index)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from desktop_llm.core import backend

    backend.current()  # this process's choice (the CLI's --backend, else auto), settled before Keras loads
    cfg = run.config
    prev = run.status()
    try:
        run.write_status(status="starting", pid=os.getpid(), host=platform.node(), message="",
                         created=prev.get("created", time.time()))
        _sync(store, run)
        cfg.validate()
        result = _train(run, cfg, emit, control, store, cluster)
    except (ConfigError, CorpusError, TokenizerError) as e:
        result = fail(run, str(e), "Change the settings and start again.", emit)
    except TrainingFailed as e:
        result = fail(run, str(e), e.suggestion, emit)
    except Exception as e:  # noqa: BLE001 - the run must end cleanly whatever happened
        result = classify_failure(run, e, emit)
    tensorboard_log.close_log(run.folder)  # flushed and closed however training ended
    _sync(store, run)
    return result


class _WorkerScratch:
    """A non-chief worker's view of the run folder: it reads the chief's tokenizer and token data
    where they are complete, and otherwise makes its own in a temporary folder, because only the
    chief writes the run folder (two writers of a shared folder would race). `scratch` is removed
    when the worker ends (`_train_worker`)."""

    def __init__(self, run, scratch: Path, family):
        self._run = run
        ready = (run.tokenizer_dir / "tokenizer.json").exists() and family.data_ready(run.data_dir)
        self.tokenizer_dir = run.tokenizer_dir if ready else scratch / "tokenizer"
        self.data_dir = run.data_dir if ready else scratch / "data"

    def __getattr__(self, name):
        return getattr(self._run, name)


def _train_worker(run, emit: Emit, cluster, worker_index: int) -> dict:
    """A non-chief worker of a multi-machine run: trains in step with the chief and writes
    nothing to the run folder (the chief does); ends with an event like the chief's."""
    try:
        with tempfile.TemporaryDirectory(prefix="desktop_llm-worker-", ignore_cleanup_errors=True) as scratch:
            return _train(run, run.config, emit, None, None, cluster, worker_index, Path(scratch))
    except Exception as e:  # noqa: BLE001 - end cleanly with a message whatever happened
        message, suggestion = explain(e)
        emit(ev.Failed(message=message, suggestion=suggestion).to_dict())
        return {"status": "failed", "message": message, "suggestion": suggestion}


def _worker_end(ctx, model, emit: Emit) -> dict:
    from desktop_llm.core.replicated_loop import weights_digest

    if ctx.failure is not None:
        raise ctx.failure
    status = "stopped" if ctx.stopped else "completed"
    end = ev.Stopped if ctx.stopped else ev.Completed
    emit(end(step=ctx.step, worker=True, weights_sha256=weights_digest(model)).to_dict())
    return {"status": status, "step": ctx.step}


def _sync(store, run) -> None:
    if store is not None:
        try:
            store.sync(run)
        except Exception:  # noqa: BLE001, S110 - a catalog that cannot be updated never ends training
            pass  # the catalog is a cache of the run folders: `runs rebuild` repairs it; training goes on


def _train(run, cfg: RunConfig, emit: Emit, control: Control | None, store, cluster=(),
           worker_index: int = 0, scratch: Path | None = None) -> dict:
    from desktop_llm.core import backend, distribute, runners

    t = cfg.training
    chosen = backend.current()
    runner = runners.get(chosen.name)
    # Before any other framework op (the tokenizer may run some): devices, memory growth, strategy.
    dist = runner.setup(t.devices, cluster, worker_index, model_parallel=t.model_parallel,
                        layout=lambda mesh: _layout(cfg, mesh))
    if control is not None and dist.workers > 1:  # again: JAX's multi-process setup takes SIGTERM (preemption)
        control.install_signal_handlers()
    advice = distribute.batch_split_advice(t.batch_size, dist.replicas)
    if advice:
        raise ConfigError(f"The batch ({t.batch_size}) must split evenly over {dist.replicas} replicas: {advice}.")

    import keras

    from desktop_llm.core import device
    from desktop_llm.core.models import get_family, lora

    family = get_family(cfg.family)

    source = run if dist.is_chief else _WorkerScratch(run, scratch, family)
    tok = ensure_tokenizer(source, cfg, emit)
    data = family.prepare_data(source, cfg, tok, emit)
    mcfg = replace(cfg.model, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, cfg))

    devs = runners.devices()
    policy = device.precision_policy(t.mixed_precision, devs)
    fastest = _fastest_on_this_cpu(chosen.name, dist, devs, family, data, cfg, mcfg, emit,
                                   build=lambda: family.build_for_run(source, cfg, mcfg, seed=t.seed))
    if fastest is not None:  # XLA or not, float32 or bfloat16, as measured here (core/speed_probe.py)
        policy = fastest["policy"]
        cfg = replace(cfg, training=replace(t, jit_compile=fastest["jit_compile"]))
        t = cfg.training
    keras.mixed_precision.set_global_policy(policy)
    k = fused_steps(cfg)
    manager = CheckpointManager(run.checkpoints_dir)
    ckpt = manager.find("latest")
    for note in manager.notes:
        emit(ev.Warning(message=note).to_dict())
    options = runner.compile_options(t, k)
    with dist.scope():
        model = family.build_for_run(source, cfg, mcfg, seed=t.seed)
        optimizer = make_optimizer(cfg, fused=dist.kind not in ("mirrored", "multi_worker"))  # tf.distribute updates per weight
        if family.probes and t.probes and hasattr(optimizer, "track_gradients"):  # Health's gradient norms
            from desktop_llm.core import health

            optimizer.track_gradients(*health.group_index(model), every=t.eval_interval)
        if policy == "mixed_float16":
            # Dynamic loss scaling keeps float16 gradients from underflowing; its scale is
            # optimizer state, saved and restored with the checkpoint.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, **family.compile_args(), **options, auto_scale_loss=False)
        start_step, best, elapsed0 = 0, None, 0.0
        if ckpt is not None:
            model.load_weights(str(ckpt.weights_path))
            if t.lora_rank:  # its factors came back folded into the kernels: new ones learn on
                lora.restart_factors(model, seed=t.seed + ckpt.step)
            manager.restore_optimizer(optimizer, model.trainable_variables, ckpt)
            start_step = ckpt.step
            best = ckpt.state.get("best_val_loss")
            elapsed0 = float(ckpt.state.get("elapsed", 0.0))
        else:
            family.initialise(model, cfg, mcfg, emit)
        if t.freeze_steps and not optimizer.built:
            # built on every weight while none is frozen, so the thawed phase finds its slots
            optimizer.build(model.trainable_variables)
    chief = dist.is_chief
    if ckpt is not None:
        if chief:
            _truncate_metrics(run, start_step)
            probes.truncate(run, start_step)
            snapshots.truncate(run, start_step)
        emit(ev.ResumedFrom(step=start_step).to_dict())
    elif chief and run.metrics_path.exists():
        run.metrics_path.unlink()  # a run that never checkpointed starts over
    if chief and ckpt is None and probes.records_path(run).exists():
        probes.records_path(run).unlink()
    if chief and ckpt is None:
        snapshots.truncate(run, 0)

    where = device.describe(devs) + (f", {dist.describe()}" if dist.distributed else "")
    found = _baselines(run, family, data, tok, emit) if chief else None
    trained = {"trainable_parameters": lora.trainable_parameters(model)} if t.lora_rank else {}
    if chief:
        run.write_status(status="running", step=start_step, pid=os.getpid(), message="",
                         device=where, policy=policy, replicas=dist.replicas, workers=dist.workers,
                         machine=speed_probe.machine(), **chosen.to_dict(),
                         parameters=model.count_params(), vocabulary_size=tok.vocabulary_size,
                         leaked=getattr(data, "leaked", 0), leaks_kept=getattr(data, "leaks_kept", False),
                         **trained, **({"baselines": found} if found else {}))
        _sync(store, run)
    emit(ev.Start(run=run.id, step=start_step, max_steps=t.max_steps, device=where, policy=policy,
                  backend=chosen.name, backend_reason=chosen.reason, xla=bool(options.get("jit_compile")),
                  parameters=model.count_params(), vocabulary_size=tok.vocabulary_size, **trained,
                  train_tokens=len(data.train), val_tokens=len(data.val), steps_per_execution=k,
                  replicas=dist.replicas, per_replica_batch=t.batch_size // dist.replicas, workers=dist.workers,
                  worker_index=dist.worker_index).to_dict())
    if dist.kind == "multi_worker" and control is not None and chief:
        emit(ev.Warning(message="Pausing is not available across machines: stop, then resume.").to_dict())

    ctx = TrainingContext(run, cfg, tok, data, emit, control, store, model, optimizer, k, start_step,
                   manager, best, time.perf_counter(), elapsed0)
    ctx.writes = chief
    ctx.runner = runner
    if dist.kind == "multi_worker" and hasattr(runner, "alone"):  # JAX: see runners/jax_runner.Machines
        ctx.local_build = lambda: family.build_for_run(source, cfg, mcfg, seed=t.seed)
        ctx.local_scope = runner.alone
        ctx.agree = runner.agree
    ctx.vocabulary = tok.vocabulary_size
    ctx.baselines = found
    if chief and family.probes and t.probes:  # chosen once, kept in the run folder: a resumed run probes the same
        ctx.probe_tokens = family.probe_tokens(data, tok)
        ctx.probe_spec = probes.ensure_spec(run, tok, ctx.probe_tokens, cfg.model.sequence_length,
                                            family.probe_prompts(data), family.probe_extra(data))
    ctx.selection = family.selection_metric
    ctx.best_score = ckpt.state.get("best_score") if ckpt is not None else None  # (a resumed run's)
    if chief and start_step < t.max_steps:
        if chosen.name == "tensorflow":
            ctx.tensorboard = tensorboard_log.open_log(run.folder, emit)
        else:
            emit(ev.Warning(message=f"TensorBoard logs need TensorFlow: none are written on the {chosen.name} "
                                    "backend (metrics.jsonl has every figure).").to_dict())
    if start_step < t.max_steps:
        T = cfg.model.sequence_length
        V = tok.vocabulary_size
        ctx.val_ds = runner.validation(family.val_arrays(data, t.eval_batches, t.batch_size, T, V), t.batch_size)
        validation_every = max(1, t.eval_interval // k)
        # Phases: with `freeze_steps`, the pretrained part is frozen up to that step, then thawed
        # (recompiled: the same optimizer, built on every weight, carries on).
        phases = [(t.freeze_steps, True)] if start_step < t.freeze_steps else []
        phases.append((t.max_steps, False))
        begin = start_step
        for end, frozen in phases:
            if t.freeze_steps:
                family.set_frozen(model, frozen)
                model.compile(optimizer=optimizer, **family.compile_args(), **options, auto_scale_loss=False)
                emit(ev.Phase(phase="frozen" if frozen else "thawed",
                              message=f"Training only the head up to step {end}" if frozen
                              else "Training every weight").to_dict())
            runner.fit(ctx, model, dist, family, data, begin, end, k, validation_every, [make_callback(ctx)])
            if ctx.stopped or ctx.failure is not None:
                break
            begin = end
    if ctx.tensorboard is not None:  # closed before the final event (train_run closes it after an error)
        ctx.tensorboard.close()
    if not chief:
        return _worker_end(ctx, model, emit)
    if ctx.failure is not None:
        raise ctx.failure
    if ctx.stopped:
        note = "" if ctx.last_saved == ctx.step else f" (the last checkpoint that could be saved is step {ctx.last_saved})"
        st = run.write_status(status="stopped", step=ctx.step, duration=ctx.elapsed,
                              message=f"Stopped at step {ctx.step}{note}; resume to continue.")
        emit(ev.Stopped(step=ctx.step).to_dict())
        return st
    if ctx.last_attempt != ctx.step or (ckpt is None and ctx.step == 0):
        ctx.save()
    if ctx.last_saved != ctx.step:
        kept = (f"The last checkpoint saved is step {ctx.last_saved}." if ctx.last_saved
                else "No checkpoint of this run could be saved.")
        raise TrainingFailed(
            f"The final checkpoint (step {ctx.step}) could not be written ({ctx.save_error}): "
            f"the disk is full or a file size limit was reached. {kept}",
            f"Free some disk space, then resume the run: it continues from step {ctx.last_saved}.")
    with ctx.alone():  # several JAX processes: the chief alone, on a copy of the weights
        _export(run, manager, ctx.model, emit)
    st = run.write_status(status="completed", step=ctx.step, duration=ctx.elapsed,
                          best_val_loss=ctx.best, message="",
                          **({"best_score": ctx.best_score} if ctx.best_score is not None else {}))
    if (chief and family.loss_over_tokens and (note := learned_little(ctx.best, tok.vocabulary_size, ctx.step))) or (chief and (note := _losing(ctx, family))):
        emit(ev.Warning(message=note).to_dict())
    done = ev.Completed(step=ctx.step, best_val_loss=ctx.best, elapsed=ctx.elapsed)
    if dist.workers > 1:
        from desktop_llm.core.replicated_loop import weights_digest

        done.weights_sha256 = weights_digest(model)  # the same on every worker
    emit(done.to_dict())
    return st


def _layout(cfg, mesh):
    """The run's family's LayoutMap for `mesh` (--model-parallel), for the model's own shape."""
    from desktop_llm.core.models import get_family

    return get_family(cfg.family).layout_map(mesh, cfg.model)


def _fastest_on_this_cpu(backend_name, dist, devs, family, data, cfg, mcfg, emit: Emit, build) -> dict | None:
    """The probe's choice where the settings are left to `auto` on one CPU that has bfloat16
    instructions (core/speed_probe.py); None where there is nothing to choose. `build()`: the
    run's own model (a classifier's has the run's classes: a two-class one failed on seven)."""
    from desktop_llm.core import speed_probe

    t = cfg.training
    if (dist.distributed or any(d["kind"] == "GPU" for d in devs) or t.mixed_precision != "auto"
            or not t.jit_compile or not speed_probe.enabled()):
        return None
    timed = speed_probe.backend_setting(replace(cfg, model=mcfg), backend_name)
    if timed is not None:  # the backends were timed on this model (`--backend auto`): this one's best setting
        times = " · ".join(f"{label} {ms:.1f} ms" for label, ms in timed["all"].items())
        emit(ev.Phase(phase="speed", message=f"Fastest on this CPU with {backend_name}: {timed['label']} "
                                             f"({times} per step)").to_dict())
        return timed
    if backend_name != "tensorflow" or not speed_probe.has_bfloat16(speed_probe.cpu_flags()):
        return None
    batch = next(iter(family.train_batches(data, 0, t.max_steps, t.batch_size, cfg.model.sequence_length, t.seed,
                                           mcfg.vocabulary_size)))
    try:
        answer = speed_probe.choose(build, family.compile_args(), batch,
                                    replace(cfg, model=mcfg),
                                    say=lambda text: emit(ev.Phase(phase="speed", message=text).to_dict()))
    except Exception as e:  # noqa: BLE001 - a probe that fails leaves the default settings
        emit(ev.Warning(message=f"Timing the CPU's settings failed ({first_line(e)}); training with XLA in float32.").to_dict())
        return None
    times = " · ".join(f"{label} {ms:.1f} ms" for label, ms in answer["ms"].items())
    emit(ev.Phase(phase="speed", message=f"Fastest on this CPU: {answer['label']} ({times} per step"
                                         f"{', measured earlier' if answer['cached'] else ''})").to_dict())
    return answer


def _baselines(run, family, data, tok, emit: Emit) -> dict | None:
    """The family's baselines on this run's split (core/baselines.py), made once and kept in its
    data folder, so a resumed run reads them; announced in a `baselines` event."""
    path = run.data_dir / "baselines.json"
    try:
        found = json.loads(path.read_text("utf-8")) if path.exists() else None
    except (OSError, ValueError):
        found = None
    if found is None:
        emit(ev.Phase(phase="baselines", message="Computing the baselines the model must beat").to_dict())
        try:
            found = family.baselines(data, tok)
        except Exception as e:  # noqa: BLE001 - a baseline is a yardstick: it never ends a run
            emit(ev.Warning(message=f"The baselines could not be computed ({first_line(e)}).").to_dict())
            return None
        if not found:
            return None
        try:
            atomic.write_json(path, found)
        except OSError:  # a full disk: the figures are still shown for this session
            pass
    emit(ev.Baselines(**found).to_dict())
    return found


def _losing(ctx, family) -> str | None:
    """A finished run that does not beat all its baselines says so, with which."""
    from desktop_llm.core.baselines import beaten, compared_figure

    figures = (ctx.baselines or {}).get("figures") or {}
    metric = family.baseline_metric
    value = compared_figure(family, ctx.best, ctx.best_score, ctx.last_eval)
    if value is None or not figures:
        return None
    _, losses = beaten(value, figures, metric)
    if not losses:
        return None
    name = "validation loss" if metric == "loss" else f"validation {metric.replace('_', '-')}"
    theirs = ", ".join(f"{n} {figures[n][metric]:.3f}" for n in losses)
    return (f"The model does not beat its baseline{'s' if len(losses) > 1 else ''} ({name} {value:.3f}; {theirs}): "
            "train longer, or a larger model or base, before trusting its output.")


def _export(run, manager: CheckpointManager, model, emit: Emit) -> None:
    """Write model.keras (best weights) beside the checkpoints: a self-contained Keras model."""
    best = manager.find("best")
    if best is None:
        return
    model.load_weights(str(best.weights_path))
    tmp = run.folder / ".model.keras.tmp.keras"
    try:
        model.save(str(tmp))
        os.replace(tmp, run.folder / "model.keras")
    except Exception as e:  # noqa: BLE001 - h5py reports a full disk as several error types
        tmp.unlink(missing_ok=True)
        emit(ev.Warning(message=f"Could not write model.keras ({first_line(e)}). The checkpoints are complete: "
                                "the run resumes, evaluates, exports and runs inference from them.").to_dict())
        return
    emit(ev.Exported(path=str(run.folder / "model.keras"), step=best.step).to_dict())


def _truncate_metrics(run, step: int) -> None:
    """Drop metrics past the checkpoint we resume from, so no step appears twice."""
    rows = [r for r in run.metrics() if r.get("step", 0) <= step]
    atomic.write_text(run.metrics_path, "".join(json_line(r) + "\n" for r in rows))
