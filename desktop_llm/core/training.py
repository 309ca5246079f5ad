"""Training: a run folder in, checkpoints and a metrics stream out.

`train_run` prepares the tokenizer and token data if the run lacks them, builds (or restores)
the model and AdamW state, and trains with `model.fit` on a tf.data pipeline: XLA-compiled,
`steps_per_execution` steps fused per call, a warmup + cosine schedule, weight decay and global
gradient clipping. A Keras callback turns each fused call into a metrics event, validates,
writes checkpoints and obeys pause/stop requests. Events are plain dicts (documented in
README.md) so the CLI can print them as JSON lines and the GUI can follow them.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import platform
import signal
import statistics
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from desktop_llm.core import atomic, tensorboard_log
from desktop_llm.core import events as ev
from desktop_llm.core.checkpoints import CheckpointManager
from desktop_llm.core.config import ConfigError, RunConfig
from desktop_llm.core.corpus import Corpus, CorpusError
from desktop_llm.core.data import TokenData, prepare
from desktop_llm.core.tokenizers import Tokenizer, TokenizerError, load_tokenizer, train_tokenizer
from desktop_llm.errors import DesktopLLMError

Emit = Callable[[dict], None]


class Control:
    """Pause/resume/stop requests from another thread, a signal, or lines on stdin."""

    def __init__(self):
        self.stop = threading.Event()
        self.resume = threading.Event()
        self.resume.set()

    def request_stop(self) -> None:
        self.stop.set()
        self.resume.set()

    def pause(self) -> None:
        self.resume.clear()

    def unpause(self) -> None:
        self.resume.set()

    @property
    def paused(self) -> bool:
        return not self.resume.is_set()

    def listen_stdin(self) -> None:
        """Read `pause`, `resume`, `stop` lines from stdin (how the GUI steers the child)."""

        def loop():
            for line in sys.stdin:
                cmd = line.strip().lower()
                if cmd == "stop":
                    self.request_stop()
                elif cmd == "pause":
                    self.pause()
                elif cmd == "resume":
                    self.unpause()
            # stdin closed: the application that steered us is gone (closed or killed). Stop
            # cleanly (checkpoint, status "stopped") rather than train on unseen; resume later.
            self.request_stop()

        threading.Thread(target=loop, daemon=True, name="stdin-control").start()

    def install_signal_handlers(self) -> None:
        def handler(signum, frame):
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass


class TrainingFailed(DesktopLLMError, RuntimeError):
    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.suggestion = suggestion


def fused_steps(cfg: RunConfig) -> int:
    """Steps per compiled call: divides the eval, checkpoint and total step counts."""
    t = cfg.training
    k = math.gcd(math.gcd(t.log_interval, t.eval_interval), math.gcd(t.checkpoint_every, t.max_steps))
    return max(1, math.gcd(k, t.freeze_steps) if t.freeze_steps else k)  # a call never spans a thaw


def learning_rate_schedule(cfg: RunConfig):
    import keras

    t = cfg.training
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if t.warmup_steps else t.learning_rate,
        decay_steps=max(1, t.max_steps - t.warmup_steps),
        alpha=t.min_learning_rate / t.learning_rate,
        warmup_target=t.learning_rate if t.warmup_steps else None,
        warmup_steps=t.warmup_steps,
    )


def make_optimizer(cfg: RunConfig):
    import keras

    t = cfg.training
    opt = keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(cfg),
        weight_decay=t.weight_decay,
        beta_1=t.beta_1,
        beta_2=t.beta_2,
        global_clipnorm=t.grad_clip or None,
    )
    # As in GPT-2/nanoGPT: no decay on biases and LayerNorm scales/offsets.
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def ensure_tokenizer(run, cfg: RunConfig, emit: Emit) -> Tokenizer:
    from desktop_llm.core.models import get_family

    if not (run.tokenizer_dir / "tokenizer.json").exists():
        given = get_family(cfg.family).tokenizer_source(cfg) or cfg.tokenizer.path
        if given:
            emit(ev.Phase(phase="tokenizer", message="Copying the tokenizer").to_dict())
            src = load_tokenizer(given)
            src.save(run.tokenizer_dir)
        else:
            emit(ev.Phase(phase="tokenizer", message=f"Training a {cfg.tokenizer.kind} tokenizer").to_dict())
            texts = get_family(cfg.family).tokenizer_texts(cfg)
            if texts is None:
                corpus = corpus_of(cfg)
                corpus.require_text()
                texts = corpus.iter_text()
            tok = train_tokenizer(cfg.tokenizer.kind, texts, cfg.tokenizer.vocabulary_size)
            tok.save(run.tokenizer_dir)
    return load_tokenizer(run.tokenizer_dir)


def corpus_of(cfg: RunConfig) -> Corpus:
    return Corpus(paths=list(cfg.data.paths), texts=list(cfg.data.texts), column=cfg.data.column,
                  encodings=dict(cfg.data.encodings))


def ensure_data(run, cfg: RunConfig, tok: Tokenizer, emit: Emit) -> TokenData:
    if not TokenData.exists(run.data_dir):
        emit(ev.Phase(phase="data", message="Tokenizing the corpus").to_dict())
        corpus = corpus_of(cfg)
        last = [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] > 0.5:
                last[0] = now
                emit(ev.Phase(phase="data", progress=done / max(1, total), message="Tokenizing the corpus").to_dict())

        info = prepare(corpus, tok, run.data_dir, cfg.data.val_fraction, progress=progress)
        bad = [s for s in corpus.sources if not s.ok or s.unsure]  # unsure: read, but say so
        for s in bad:
            emit(ev.Warning(message=f"{s.path}: {s.reason}").to_dict())
        emit(ev.Data(**info.to_dict()).to_dict())
    return TokenData(run.data_dir)


def _make_callback(ctx):
    import keras

    class Monitor(keras.callbacks.Callback):
        """Turns each fused call into events; validates, checkpoints, pauses and stops."""

        def on_epoch_begin(self, epoch, logs=None):
            ctx.t_begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            ctx.t_train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            ctx.on_chunk_end(epoch, logs or {}, self.model)

    return Monitor()


class _Context:
    def __init__(self, run, cfg, tok, data, emit, control, store, model, optimizer, k, start_step,
                 manager, best, t_start, elapsed0):
        self.run, self.cfg, self.tok, self.data = run, cfg, tok, data
        self.emit, self.control, self.store = emit, control, store
        self.model, self.optimizer, self.k = model, optimizer, k
        self.step = start_step
        self.manager = manager
        self.best = best
        self.t_start = t_start
        self.elapsed0 = elapsed0
        self.t_begin = self.t_train_end = time.perf_counter()
        self.train_time = 0.0
        self.train_steps = 0
        # For the ETA: seconds per step of recent calls and seconds per evaluation, leaving out
        # the first call and the first evaluation after a (re)start: they include compilation.
        self.recent_step_times: deque[float] = deque(maxlen=20)
        self.eval_times: list[float] = []
        self.chunks = 0
        self.last_saved = start_step
        self.failure: TrainingFailed | None = None
        self.metrics_warned = False
        self.last_attempt = start_step  # the step of the last checkpoint write tried
        self.writes = True  # False on the non-chief workers of a multi-machine run
        self.tensorboard = None  # the chief's core.tensorboard_log.TensorBoardLog (set in _train)
        self.save_error = ""
        self.stopped = False
        self.generator = None
        self.schedule = learning_rate_schedule(cfg)

    @property
    def elapsed(self) -> float:
        return self.elapsed0 + (time.perf_counter() - self.t_start)

    def state(self, val_loss=None) -> dict:
        return {"step": self.step, "best_val_loss": self.best, "val_loss": val_loss,
                "elapsed": self.elapsed}

    def record(self, event: dict) -> None:
        if not self.writes:
            self.emit(event)
            return
        try:
            atomic.append_line(self.run.metrics_path, _json(event))
        except OSError as e:  # a full disk: the event still reaches the user; training goes on
            if not self.metrics_warned:
                self.metrics_warned = True
                self.emit(ev.Warning(message=f"Could not append to metrics.jsonl ({e.strerror or e}); the curve "
                                             "on disk has a gap from here. Free some disk space.").to_dict())
        if self.tensorboard is not None:
            self.tensorboard.record(event)  # never raises: a failure is one warning
        self.emit(event)

    def save(self, val_loss=None, best=False) -> None:
        self.last_attempt = self.step
        if not self.writes:  # only the chief writes checkpoints
            self.last_saved = self.step
            return
        try:
            self.manager.save(self.model, self.optimizer, self.state(val_loss), best=best)
            self.last_saved = self.step
            self.emit(ev.Checkpoint(step=self.step, best=best).to_dict())
        except (OSError, RuntimeError) as e:  # h5py reports a failed write as either
            self.save_error = getattr(e, "strerror", None) or _first_line(e)
            # Disk full or read-only: the previous checkpoint is intact; tell the user, go on.
            self.emit(ev.Warning(message=f"Could not write the checkpoint at step {self.step} ({self.save_error}); "
                                         "the previous one is kept. Free some disk space.").to_dict())

    def on_chunk_end(self, epoch: int, logs: dict, model) -> None:
        t = self.cfg.training
        self.step = (epoch + 1) * self.k
        dt = max(1e-9, self.t_train_end - self.t_begin)
        self.train_time += dt
        self.train_steps += self.k
        self.chunks += 1
        if self.chunks > 1:
            self.recent_step_times.append(dt / self.k)
        loss = float(logs.get("loss", float("nan")))
        tokens_per_sec = self.k * t.batch_size * self.cfg.model.sequence_length / dt
        eta = self.eta()
        self.record(ev.Step(step=self.step, loss=loss, lr=float(self.schedule(self.step)),
                            tokens_per_sec=tokens_per_sec, ms_per_step=1000 * dt / self.k, elapsed=self.elapsed,
                            eta=eta, max_steps=t.max_steps,
                            accuracy=float(logs["accuracy"]) if "accuracy" in logs else None).to_dict())
        if self.writes:
            self.run.write_status(status="running", step=self.step, tokens_per_sec=tokens_per_sec,
                                  duration=self.elapsed, pid=os.getpid())
        if not math.isfinite(loss):
            self.failure = TrainingFailed(
                f"The loss became {loss} at step {self.step}: training diverged.",
                "Lower the learning rate (e.g. halve it), keep gradient clipping on, or add warm-up steps.")
            model.stop_training = True
            return
        if "val_loss" in logs:
            t0 = self.t_train_end  # the validation pass ran between the last step and now
            val = float(logs["val_loss"])
            improved = self.best is None or val < self.best
            if improved:
                self.best = val
            sample = self.sample()
            extra = {k: float(v) for k, v in logs.items() if k.startswith("val_") and k != "val_loss"}
            try:
                from desktop_llm.core.models import get_family

                extra.update(get_family(self.cfg.family).eval_extras(self))
            except Exception as e:  # noqa: BLE001 - extra figures are a nicety: never end a run
                extra["extras_error"] = _first_line(e)
            self.record(ev.parse({**ev.Eval(step=self.step, val_loss=val, val_ppl=math.exp(min(val, 50)),
                                            best_val_loss=self.best, sample=sample, elapsed=self.elapsed).to_dict(),
                                  **extra}).to_dict())  # the family's figures: typed where Eval names them
            if self.step % t.checkpoint_every == 0 or improved:
                self.save(val, best=improved)
            self.eval_times.append(time.perf_counter() - t0)
        elif self.step % t.checkpoint_every == 0:
            self.save()
        if self.control is not None:
            if self.control.paused and not self.control.stop.is_set():
                self.run.write_status(status="paused", step=self.step)
                self.emit(ev.Paused(step=self.step).to_dict())
                paused_at = time.perf_counter()
                self.control.resume.wait()
                self.t_start += time.perf_counter() - paused_at  # pauses do not count as training
                self.run.write_status(status="running", step=self.step)
                self.emit(ev.Resumed(step=self.step).to_dict())
            if self.control.stop.is_set():
                if self.last_saved != self.step:
                    self.save()
                self.stopped = True
                model.stop_training = True

    def stop_here(self) -> None:
        """End training at this step as a stop request does: checkpoint (chief), then stop."""
        if self.last_saved != self.step:
            self.save()
        self.stopped = True

    def eta(self) -> float | None:
        """Seconds left, from the recent throughput; None until one call after the first (which
        compiles) has been timed, rather than an estimate several times too high."""
        if not self.recent_step_times:
            return None
        t = self.cfg.training
        remaining = t.max_steps - self.step
        per_step = statistics.median(self.recent_step_times)
        steady_evals = self.eval_times[1:]  # the first one compiled the validation and sampling
        per_eval = statistics.median(steady_evals) if steady_evals else 0.0
        return remaining * per_step + (remaining // t.eval_interval) * per_eval

    def sample(self) -> str:
        if self.cfg.training.sample_tokens <= 0:
            return ""
        try:
            from desktop_llm.core.models import get_family

            return get_family(self.cfg.family).sample(self)
        except Exception as e:  # a sample is a nicety: never let it end a run
            return f"(no sample: {e})"


def _json(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, allow_nan=True)


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
    cfg = run.config
    prev = run.status()
    try:
        run.write_status(status="starting", pid=os.getpid(), host=platform.node(), message="",
                         created=prev.get("created", time.time()))
        _sync(store, run)
        cfg.validate()
        result = _train(run, cfg, emit, control, store, cluster)
    except (ConfigError, CorpusError, TokenizerError) as e:
        result = _fail(run, str(e), "Change the settings and start again.", emit)
    except TrainingFailed as e:
        result = _fail(run, str(e), e.suggestion, emit)
    except Exception as e:  # noqa: BLE001 - the run must end cleanly whatever happened
        result = _classify_failure(run, e, emit)
    tensorboard_log.close_log(run.folder)  # flushed and closed however training ended
    _sync(store, run)
    return result


class _WorkerScratch:
    """A non-chief worker's view of the run folder: it reads the chief's tokenizer and token data
    where they are complete, and otherwise makes its own in a temporary folder, because only the
    chief writes the run folder (two writers of a shared folder would race)."""

    def __init__(self, run):
        import tempfile
        from pathlib import Path

        self._run = run
        scratch = Path(tempfile.mkdtemp(prefix="desktop_llm-worker-"))
        from desktop_llm.core.models.classifier.examples import LabelledData

        ready = (run.tokenizer_dir / "tokenizer.json").exists() and (
            TokenData.exists(run.data_dir) or LabelledData.exists(run.data_dir))
        self.tokenizer_dir = run.tokenizer_dir if ready else scratch / "tokenizer"
        self.data_dir = run.data_dir if ready else scratch / "data"

    def __getattr__(self, name):
        return getattr(self._run, name)


def _train_worker(run, emit: Emit, cluster, worker_index: int) -> dict:
    """A non-chief worker of a multi-machine run: trains in step with the chief and writes
    nothing to the run folder (the chief does); ends with an event like the chief's."""
    try:
        return _train(run, run.config, emit, None, None, cluster, worker_index)
    except Exception as e:  # noqa: BLE001 - end cleanly with a message whatever happened
        message, suggestion = _explain(e)
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


def _explain(e: Exception) -> tuple[str, str]:
    """(message, suggestion) for an error that ended training, in the user's terms."""
    import tensorflow as tf

    text = f"{type(e).__name__}: {e}"
    collective = ("collective", "Collective", "peer", "Socket closed", "Connection reset", "failed to connect")
    if isinstance(e, (tf.errors.DeadlineExceededError, tf.errors.UnavailableError)) or (
            isinstance(e, (tf.errors.CancelledError, tf.errors.InternalError, tf.errors.AbortedError))
            and any(w in text for w in collective)):
        return ("Another worker of this run stopped answering (it died, or the network failed): training stopped.",
                "Start the workers again, or resume the run on this machine alone: it continues from the "
                "chief's last checkpoint.")
    if isinstance(e, ConfigError):
        return str(e), "Change the settings and start again."
    return f"Training stopped with an error: {text.splitlines()[0][:500]}", ""


def _fail(run, message: str, suggestion: str, emit: Emit) -> dict:
    try:
        st = run.write_status(status="failed", message=message, suggestion=suggestion)
    except OSError as e:  # even the status cannot be written (a full disk): still end cleanly
        message += f" (status.json could not be written: {e.strerror or e})"
        st = {**run.status(), "status": "failed", "message": message, "suggestion": suggestion}
    emit(ev.Failed(message=message, suggestion=suggestion).to_dict())
    return st


def _classify_failure(run, e: Exception, emit: Emit) -> dict:
    import tensorflow as tf

    text = f"{type(e).__name__}: {e}"
    # An allocation can fail in TensorFlow (ResourceExhaustedError), in XLA's buffer allocation
    # ("Out of memory while trying to allocate") or in NumPy inside the data pipeline, where
    # tf.data re-raises it under another error type with "MemoryError" in its text.
    memory_words = ("OOM", "MemoryError", "out of memory", "Out of memory", "bad_alloc")
    if isinstance(e, (tf.errors.ResourceExhaustedError, MemoryError)) or any(w in text for w in memory_words):
        # TensorFlow's allocation-failure path can leave the heap corrupt: measured here, a real
        # OOM under a memory cap ended in "double free or corruption" at the next garbage
        # collection. Collect nothing more, record the failure, and tell the caller to exit now.
        gc.disable()
        st = _fail(run, "Out of memory: this batch does not fit on the device.",
                   "Use a smaller batch size, a shorter context or a smaller model.", emit)
        return {**st, "exit_now": True}
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return _fail(run, f"The disk is full ({e.filename or 'the workspace'}).",
                     "Free some disk space, then resume the run: it continues from its last checkpoint.", emit)
    try:
        with open(run.log_path, "a", encoding="utf-8") as f:
            f.write(traceback.format_exc())
    except OSError:
        pass  # a full disk: the failure is still reported by the event and status.json below
    message, suggestion = _explain(e)
    return _fail(run, message, suggestion or f"The full traceback is in {run.log_path}.", emit)


def _sync(store, run) -> None:
    if store is not None:
        try:
            store.sync(run)
        except Exception:
            pass


def _train(run, cfg: RunConfig, emit: Emit, control: Control | None, store, cluster=(),
           worker_index: int = 0) -> dict:
    from desktop_llm.core import distribute

    t = cfg.training
    # Before any other TensorFlow op (the tokenizer may run some): devices, memory growth, strategy.
    dist = distribute.setup(t.devices, cluster, worker_index)
    if t.batch_size % dist.replicas:
        lo = t.batch_size // dist.replicas * dist.replicas
        raise ConfigError(f"The batch ({t.batch_size}) must split evenly over {dist.replicas} replicas: "
                          f"use {lo or dist.replicas} or {lo + dist.replicas}.")

    import keras

    from desktop_llm.core import device
    from desktop_llm.core.models import get_family

    family = get_family(cfg.family)

    source = run if dist.is_chief else _WorkerScratch(run)
    tok = ensure_tokenizer(source, cfg, emit)
    data = family.prepare_data(source, cfg, tok, emit)
    mcfg = replace(cfg.model, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, cfg))

    policy = device.precision_policy(t.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    k = fused_steps(cfg)
    manager = CheckpointManager(run.checkpoints_dir)
    ckpt = manager.find("latest")
    for note in manager.notes:
        emit(ev.Warning(message=note).to_dict())
    with dist.strategy.scope():
        model = family.build_for_run(source, cfg, mcfg, seed=t.seed)
        optimizer = make_optimizer(cfg)
        if policy == "mixed_float16":
            # Dynamic loss scaling keeps float16 gradients from underflowing; its scale is
            # optimizer state, saved and restored with the checkpoint.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, **family.compile_args(),
                      jit_compile=t.jit_compile, steps_per_execution=k, auto_scale_loss=False)
        start_step, best, elapsed0 = 0, None, 0.0
        if ckpt is not None:
            model.load_weights(str(ckpt.weights_path))
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
        emit(ev.ResumedFrom(step=start_step).to_dict())
    elif chief and run.metrics_path.exists():
        run.metrics_path.unlink()  # a run that never checkpointed starts over

    devs = device.devices()
    where = device.describe(devs) + (f", {dist.describe()}" if dist.distributed else "")
    if chief:
        run.write_status(status="running", step=start_step, pid=os.getpid(), message="",
                         device=where, policy=policy, replicas=dist.replicas, workers=dist.workers)
        _sync(store, run)
    emit(ev.Start(run=run.id, step=start_step, max_steps=t.max_steps, device=where, policy=policy,
                  parameters=model.count_params(), vocabulary_size=tok.vocabulary_size,
                  train_tokens=len(data.train), val_tokens=len(data.val), steps_per_execution=k,
                  replicas=dist.replicas, per_replica_batch=t.batch_size // dist.replicas, workers=dist.workers,
                  worker_index=dist.worker_index).to_dict())
    if dist.kind == "multi_worker" and control is not None and chief:
        emit(ev.Warning(message="Pausing is not available across machines: stop, then resume.").to_dict())

    ctx = _Context(run, cfg, tok, data, emit, control, store, model, optimizer, k, start_step,
                   manager, best, time.perf_counter(), elapsed0)
    ctx.writes = chief
    if chief and start_step < t.max_steps:
        ctx.tensorboard = tensorboard_log.open_log(run.folder, emit)
    if start_step < t.max_steps:
        T = cfg.model.sequence_length
        V = tok.vocabulary_size
        val_ds = family.val_dataset(data, t.eval_batches, t.batch_size, T, V)
        validation_every = max(1, t.eval_interval // k)
        # Phases: with `freeze_steps`, the pretrained part is frozen up to that step, then thawed
        # (recompiled: the same optimizer, built on every weight, carries on).
        phases = [(t.freeze_steps, True)] if start_step < t.freeze_steps else []
        phases.append((t.max_steps, False))
        begin = start_step
        for end, frozen in phases:
            if t.freeze_steps:
                family.set_frozen(model, frozen)
                model.compile(optimizer=optimizer, **family.compile_args(), jit_compile=t.jit_compile,
                              steps_per_execution=k, auto_scale_loss=False)
                emit(ev.Phase(phase="frozen" if frozen else "thawed",
                              message=f"Training only the head up to step {end}" if frozen
                              else "Training every weight").to_dict())
            ds = family.train_dataset(data, begin, t.max_steps, t.batch_size, T, t.seed, V)
            if dist.distributed:
                from desktop_llm.core.replicated_loop import fit_replicated

                fit_replicated(ctx, model, optimizer, dist, ds, val_ds, begin, end, k,
                               validation_every, t.jit_compile and dist.xla_ok,
                               t.batch_size * family.targets_per_window(T))
            else:
                model.fit(ds, epochs=end // k, steps_per_epoch=k, initial_epoch=begin // k,
                          validation_data=val_ds, validation_freq=validation_every,
                          callbacks=[_make_callback(ctx)], verbose=0)
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
    if ctx.last_attempt != ctx.step or ckpt is None and ctx.step == 0:
        ctx.save()
    if ctx.last_saved != ctx.step:
        kept = (f"The last checkpoint saved is step {ctx.last_saved}." if ctx.last_saved
                else "No checkpoint of this run could be saved.")
        raise TrainingFailed(
            f"The final checkpoint (step {ctx.step}) could not be written ({ctx.save_error}): "
            f"the disk is full or a file size limit was reached. {kept}",
            f"Free some disk space, then resume the run: it continues from step {ctx.last_saved}.")
    _export(run, manager, model, emit)
    st = run.write_status(status="completed", step=ctx.step, duration=ctx.elapsed,
                          best_val_loss=ctx.best, message="")
    done = ev.Completed(step=ctx.step, best_val_loss=ctx.best, elapsed=ctx.elapsed)
    if dist.workers > 1:
        from desktop_llm.core.replicated_loop import weights_digest

        done.weights_sha256 = weights_digest(model)  # the same on every worker
    emit(done.to_dict())
    return st


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
        emit(ev.Warning(message=f"Could not write model.keras ({_first_line(e)}); the checkpoints are complete "
                                "and everything (generate, evaluate, export) works from them.").to_dict())
        return
    emit(ev.Exported(path=str(run.folder / "model.keras"), step=best.step).to_dict())


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _truncate_metrics(run, step: int) -> None:
    """Drop metrics past the checkpoint we resume from, so no step appears twice."""
    rows = [r for r in run.metrics() if r.get("step", 0) <= step]
    atomic.write_text(run.metrics_path, "".join(_json(r) + "\n" for r in rows))
