"""Training: a run folder in, checkpoints and a metrics stream out.

`train_run` prepares the tokenizer and token data if the run lacks them, builds (or restores)
the model and AdamW state, and trains with `model.fit` on a tf.data pipeline: XLA-compiled,
`steps_per_execution` steps fused per call, a warmup + cosine schedule, weight decay and global
gradient clipping. A Keras callback turns each fused call into a metrics event, validates,
writes checkpoints and obeys pause/stop requests. Events are plain dicts (documented in
README.md) so the CLI can print them as JSON lines and the GUI can follow them.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace

from desktop_llm.core import atomic
from desktop_llm.core.checkpoints import CheckpointManager
from desktop_llm.core.config import ConfigError, RunConfig
from desktop_llm.core.corpus import Corpus, CorpusError
from desktop_llm.core.data import TokenData, prepare
from desktop_llm.core.tokenizers import Tokenizer, TokenizerError, load_tokenizer, train_tokenizer

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


class TrainingFailed(RuntimeError):
    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.suggestion = suggestion


def fused_steps(cfg: RunConfig) -> int:
    """Steps per compiled call: divides the eval, checkpoint and total step counts."""
    t = cfg.training
    return max(1, math.gcd(math.gcd(t.log_interval, t.eval_interval),
                           math.gcd(t.checkpoint_every, t.max_steps)))


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
    if not (run.tokenizer_dir / "tokenizer.json").exists():
        if cfg.tokenizer.path:
            emit({"type": "phase", "phase": "tokenizer", "message": "Copying the tokenizer"})
            src = load_tokenizer(cfg.tokenizer.path)
            src.save(run.tokenizer_dir)
        else:
            emit({"type": "phase", "phase": "tokenizer",
                  "message": f"Training a {cfg.tokenizer.kind} tokenizer"})
            corpus = corpus_of(cfg)
            corpus.require_text()
            tok = train_tokenizer(cfg.tokenizer.kind, corpus.iter_text(), cfg.tokenizer.vocabulary_size)
            tok.save(run.tokenizer_dir)
    return load_tokenizer(run.tokenizer_dir)


def corpus_of(cfg: RunConfig) -> Corpus:
    return Corpus(paths=list(cfg.data.paths), texts=list(cfg.data.texts), column=cfg.data.column)


def ensure_data(run, cfg: RunConfig, tok: Tokenizer, emit: Emit) -> TokenData:
    if not TokenData.exists(run.data_dir):
        emit({"type": "phase", "phase": "data", "message": "Tokenizing the corpus"})
        corpus = corpus_of(cfg)
        last = [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] > 0.5:
                last[0] = now
                emit({"type": "phase", "phase": "data", "progress": done / max(1, total),
                      "message": "Tokenizing the corpus"})

        info = prepare(corpus, tok, run.data_dir, cfg.data.val_fraction, progress=progress)
        bad = [s for s in corpus.sources if not s.ok]
        for s in bad:
            emit({"type": "warning", "message": f"{s.path}: {s.reason}"})
        emit({"type": "data", **info.to_dict()})
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
        self.eval_time = 0.0
        self.evals = 0
        self.last_saved = start_step
        self.failure: TrainingFailed | None = None
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
        atomic.append_line(self.run.metrics_path, _json(event))
        self.emit(event)

    def save(self, val_loss=None, best=False) -> None:
        try:
            self.manager.save(self.model, self.optimizer, self.state(val_loss), best=best)
            self.last_saved = self.step
            self.emit({"type": "checkpoint", "step": self.step, "best": best})
        except OSError as e:
            # Disk full or read-only: the previous checkpoint is intact; tell the user, go on.
            self.emit({"type": "warning", "message":
                       f"Could not write the checkpoint at step {self.step} ({e.strerror or e}); "
                       "the previous one is kept. Free some disk space."})

    def on_chunk_end(self, epoch: int, logs: dict, model) -> None:
        t = self.cfg.training
        self.step = (epoch + 1) * self.k
        dt = max(1e-9, self.t_train_end - self.t_begin)
        self.train_time += dt
        self.train_steps += self.k
        loss = float(logs.get("loss", float("nan")))
        tokens_per_sec = self.k * t.batch_size * self.cfg.model.sequence_length / dt
        sec_per_step = self.train_time / max(1, self.train_steps)
        remaining = t.max_steps - self.step
        evals_left = remaining // t.eval_interval
        eta = remaining * sec_per_step + evals_left * (self.eval_time / max(1, self.evals))
        self.record({"type": "step", "step": self.step, "loss": loss,
                     "lr": float(self.schedule(self.step)), "tokens_per_sec": tokens_per_sec,
                     "ms_per_step": 1000 * dt / self.k, "elapsed": self.elapsed, "eta": eta,
                     "max_steps": t.max_steps})
        self.run.write_status(status="running", step=self.step, tokens_per_sec=tokens_per_sec,
                              duration=self.elapsed, pid=os.getpid())
        if not math.isfinite(loss):
            self.failure = TrainingFailed(
                f"The loss became {loss} at step {self.step}: training diverged.",
                "Lower the learning rate (e.g. halve it), keep gradient clipping on, or add warm-up steps.")
            model.stop_training = True
            return
        if "val_loss" in logs:
            t0 = time.perf_counter()
            val = float(logs["val_loss"])
            improved = self.best is None or val < self.best
            if improved:
                self.best = val
            sample = self.sample()
            self.record({"type": "eval", "step": self.step, "val_loss": val,
                         "val_ppl": math.exp(min(val, 50)), "best_val_loss": self.best,
                         "sample": sample, "elapsed": self.elapsed})
            if self.step % t.checkpoint_every == 0 or improved:
                self.save(val, best=improved)
            self.eval_time += time.perf_counter() - t0
            self.evals += 1
        elif self.step % t.checkpoint_every == 0:
            self.save()
        if self.control is not None:
            if self.control.paused and not self.control.stop.is_set():
                self.run.write_status(status="paused", step=self.step)
                self.emit({"type": "paused", "step": self.step})
                paused_at = time.perf_counter()
                self.control.resume.wait()
                self.t_start += time.perf_counter() - paused_at  # pauses do not count as training
                self.run.write_status(status="running", step=self.step)
                self.emit({"type": "resumed", "step": self.step})
            if self.control.stop.is_set():
                if self.last_saved != self.step:
                    self.save()
                self.stopped = True
                model.stop_training = True

    def sample(self) -> str:
        n = self.cfg.training.sample_tokens
        if n <= 0:
            return ""
        try:
            from desktop_llm.core.generation import Generator, SamplingConfig

            if self.generator is None:
                self.generator = Generator(self.model, self.tok, jit_compile=self.cfg.training.jit_compile)
            prompt = self.tok.decode(list(self.data.val[: min(8, len(self.data.val))]))
            res = self.generator.generate(prompt, SamplingConfig(max_new_tokens=n, temperature=0.8,
                                                                 top_k=40, seed=self.step))
            return prompt + res.text
        except Exception as e:  # a sample is a nicety: never let it end a run
            return f"(no sample: {e})"


def _json(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, allow_nan=True)


def train_run(run, emit: Emit = lambda e: None, control: Control | None = None, store=None) -> dict:
    """Train (or resume) `run` to its configured number of steps. Returns the final status dict.

    Never raises for training problems: they end the run with status "failed", a message and a
    suggestion, and the last good checkpoint is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cfg = run.config
    prev = run.status()
    run.write_status(status="starting", pid=os.getpid(), message="",
                     created=prev.get("created", time.time()))
    _sync(store, run)
    try:
        cfg.validate()
        result = _train(run, cfg, emit, control, store)
    except (ConfigError, CorpusError, TokenizerError) as e:
        result = _fail(run, str(e), "Change the settings and start again.", emit)
    except TrainingFailed as e:
        result = _fail(run, str(e), e.suggestion, emit)
    except Exception as e:  # noqa: BLE001 - the run must end cleanly whatever happened
        result = _classify_failure(run, e, emit)
    _sync(store, run)
    return result


def _fail(run, message: str, suggestion: str, emit: Emit) -> dict:
    st = run.write_status(status="failed", message=message, suggestion=suggestion)
    emit({"type": "failed", "message": message, "suggestion": suggestion})
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
    with open(run.log_path, "a", encoding="utf-8") as f:
        f.write(traceback.format_exc())
    return _fail(run, f"Training stopped with an error: {text.splitlines()[0][:500]}",
                 f"The full traceback is in {run.log_path}.", emit)


def _sync(store, run) -> None:
    if store is not None:
        try:
            store.sync(run)
        except Exception:
            pass


def _train(run, cfg: RunConfig, emit: Emit, control: Control | None, store) -> dict:
    import keras

    from desktop_llm.core import device
    from desktop_llm.core.model import build_model

    tok = ensure_tokenizer(run, cfg, emit)
    data = ensure_data(run, cfg, tok, emit)
    data.check(cfg.model.sequence_length)
    mcfg = replace(cfg.model, vocabulary_size=tok.vocabulary_size)
    t = cfg.training

    policy = device.precision_policy(t.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    model = build_model(mcfg, seed=t.seed)
    optimizer = make_optimizer(cfg)
    k = fused_steps(cfg)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=t.jit_compile, steps_per_execution=k)

    manager = CheckpointManager(run.checkpoints_dir)
    ckpt = manager.find("latest")
    for note in manager.notes:
        emit({"type": "warning", "message": note})
    start_step, best, elapsed0 = 0, None, 0.0
    if ckpt is not None:
        model.load_weights(str(ckpt.weights_path))
        manager.restore_optimizer(optimizer, model.trainable_variables, ckpt)
        start_step = ckpt.step
        best = ckpt.state.get("best_val_loss")
        elapsed0 = float(ckpt.state.get("elapsed", 0.0))
        _truncate_metrics(run, start_step)
        emit({"type": "resumed_from", "step": start_step})
    elif run.metrics_path.exists():
        run.metrics_path.unlink()  # a run that never checkpointed starts over

    devs = device.devices()
    run.write_status(status="running", step=start_step, pid=os.getpid(), message="",
                     device=device.describe(devs), policy=policy)
    _sync(store, run)
    emit({"type": "start", "run": run.id, "step": start_step, "max_steps": t.max_steps,
          "device": device.describe(devs), "policy": policy, "parameters": model.count_params(),
          "vocabulary_size": tok.vocabulary_size, "train_tokens": len(data.train),
          "val_tokens": len(data.val), "steps_per_execution": k})

    ctx = _Context(run, cfg, tok, data, emit, control, store, model, optimizer, k, start_step,
                   manager, best, time.perf_counter(), elapsed0)
    if start_step < t.max_steps:
        T = cfg.model.sequence_length
        ds = data.train_dataset(start_step, t.max_steps, t.batch_size, T, t.seed)
        vx, vy = data.val_batches(t.eval_batches, t.batch_size, T)
        import tensorflow as tf

        val_ds = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(t.batch_size).cache()
        model.fit(ds, epochs=t.max_steps // k, steps_per_epoch=k, initial_epoch=start_step // k,
                  validation_data=val_ds, validation_freq=max(1, t.eval_interval // k),
                  callbacks=[_make_callback(ctx)], verbose=0)
    if ctx.failure is not None:
        raise ctx.failure
    if ctx.stopped:
        st = run.write_status(status="stopped", step=ctx.step, duration=ctx.elapsed,
                              message=f"Stopped at step {ctx.step}; resume to continue.")
        emit({"type": "stopped", "step": ctx.step})
        return st
    if ctx.last_saved != ctx.step or ckpt is None and ctx.step == 0:
        ctx.save()
    _export(run, manager, model, emit)
    st = run.write_status(status="completed", step=ctx.step, duration=ctx.elapsed,
                          best_val_loss=ctx.best, message="")
    emit({"type": "completed", "step": ctx.step, "best_val_loss": ctx.best, "elapsed": ctx.elapsed})
    return st


def _export(run, manager: CheckpointManager, model, emit: Emit) -> None:
    """Write model.keras (best weights) beside the checkpoints: a self-contained Keras model."""
    best = manager.find("best")
    if best is None:
        return
    model.load_weights(str(best.weights_path))
    tmp = run.folder / ".model.keras.tmp.keras"
    model.save(str(tmp))
    os.replace(tmp, run.folder / "model.keras")
    emit({"type": "exported", "path": str(run.folder / "model.keras"), "step": best.step})


def _truncate_metrics(run, step: int) -> None:
    """Drop metrics past the checkpoint we resume from, so no step appears twice."""
    rows = [r for r in run.metrics() if r.get("step", 0) <= step]
    atomic.write_text(run.metrics_path, "".join(_json(r) + "\n" for r in rows))
