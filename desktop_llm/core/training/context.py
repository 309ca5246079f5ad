"""A running fit's state and its Keras callback: each fused call becomes events, validation,
checkpoints, pause and stop (shared by `model.fit` and the replicated loop)."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections import deque

from desktop_llm.core import atomic
from desktop_llm.core import events as ev
from desktop_llm.core.baselines import bits_per_byte
from desktop_llm.core.training.failures import TrainingFailed, first_line
from desktop_llm.core.training.schedule import learning_rate_at

SAMPLE_XLA_EVALUATIONS = 5  # a run evaluated more often than this samples with XLA (causal_generator)


def make_callback(ctx):
    import keras

    class Monitor(keras.callbacks.Callback):
        """Turns each fused call into events; validates, checkpoints, pauses and stops."""

        def on_train_begin(self, logs=None):
            ctx.t_begin = time.perf_counter()  # each fit (phase) starts a measured span

        def on_train_batch_end(self, batch, logs=None):
            ctx.t_train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            ctx.on_chunk_end(epoch, logs or {}, self.model)

    return Monitor()


class TrainingContext:
    def __init__(self, run, cfg, tok, data, emit, control, store, model, optimizer, k, start_step,
                 manager, best, t_start, elapsed0):
        self.run, self.cfg, self.tok, self.data = run, cfg, tok, data
        self.emit, self.control, self.store = emit, control, store
        self.model, self.optimizer, self.k = model, optimizer, k
        self.val_ds = None  # the validation batches, for the evaluation at the last step (trainer sets it)
        self.step = start_step
        self.manager = manager
        self.best = best
        self.t_start = t_start
        self.elapsed0 = elapsed0
        self.t_begin = self.t_train_end = time.perf_counter()  # the current call's span (on_chunk_end)
        self.busy = False
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
        self.baselines: dict | None = None  # the family's baselines on this split (trainer._baselines)
        self.last_eval: dict = {}  # the last evaluation's event, for the verdict at the end
        # The "best" checkpoint is chosen by the family's own figure (a classifier's macro-F1: its
        # validation loss climbed while its F1 still rose); `best` stays the validation loss of it.
        self.selection = "loss"
        self.best_score: float | None = None
        self.stopped = False
        self.generator = None  # what samples at evaluations (a family's; `causal_generator` for GPTs)
        self.probe_spec = None  # the run's probe (core/probes.py), where its family has one
        self.probe_tokens = None  # the validation token ids it reads (`Family.probe_tokens`, made once)
        self.prober = None
        self.lr_at = learning_rate_at(cfg)
        self.runner = None  # this backend's runner (core/runners), for the last evaluation
        self.vocabulary = 0  # the tokenizer's size (a family's batches may need it)
        # Several JAX processes: the views one worker computes alone (figures, sample, probe) run
        # on a copy of the weights on its own devices (runners/jax_runner.Machines); `local_build`
        # makes that model, `local_scope` leaves the shared distribution while it computes.
        self.local_build = None
        self.local_scope = None
        self._local = None
        self.agree = None  # flag -> the chief's flag, on every worker (runners/jax_runner.agree)

    def causal_generator(self):
        """One core.generation.Generator on the training model, reused at every evaluation. It
        compiles with XLA only where the run has the evaluations to repay the compile: on the
        reference model 120 tokens took 4.0 s the first time with XLA and 0.07 s after, against
        2.6 s and 0.35 s as a plain graph, so XLA wins from about the sixth evaluation."""
        if self.generator is None:
            from desktop_llm.core.generation import Generator

            self.generator = Generator(self.model, self.tok, jit_compile=self.cfg.training.xla_repays(SAMPLE_XLA_EVALUATIONS))
        return self.generator

    @property
    def elapsed(self) -> float:
        return self.elapsed0 + (time.perf_counter() - self.t_start)

    def state(self, val_loss=None) -> dict:
        return {"step": self.step, "best_val_loss": self.best, "val_loss": val_loss,
                "elapsed": self.elapsed, "best_score": self.best_score}

    def improves(self, val: float, extra: dict) -> bool:
        """Whether this evaluation is the best so far by the selection figure (lower loss, or a
        higher score such as macro-F1; the loss decides where the score is missing, and between
        equal scores: a small validation split's macro-F1 reaches 1.0 early and stays there, and the
        checkpoint of its lowest loss is then the one more sure of the same right answers)."""
        score = extra.get(f"val_{self.selection}") if self.selection != "loss" else None
        if score is None:
            return self.best is None or val < self.best
        tie = self.best_score is not None and abs(score - self.best_score) < 1e-12
        if self.best_score is None or score > self.best_score or (tie and self.best is not None and val < self.best):
            self.best_score = float(score)
            return True
        return False

    def record(self, event: dict) -> None:
        if not self.writes:
            self.emit(event)
            return
        try:
            atomic.append_line(self.run.metrics_path, json_line(event))
        except OSError as e:  # a full disk: the event still reaches the user; training goes on
            if not self.metrics_warned:
                self.metrics_warned = True
                self.emit(ev.Warning(message=f"Could not append to metrics.jsonl ({e.strerror or e}); the curve "
                                             "on disk has a gap from here. Free some disk space.").to_dict())
        if self.tensorboard is not None:
            self.tensorboard.record(event)  # never raises: a failure is one warning
        self.emit(event)

    def save(self, val_loss=None, best=False) -> None:
        self.busy = True
        self.last_attempt = self.step
        if not self.writes:  # only the chief writes checkpoints
            self.last_saved = self.step
            return
        try:
            with self.local_scope() if self.local_scope else contextlib.nullcontext():  # the chief alone
                self.manager.save(self.model, self.optimizer, self.state(val_loss), best=best)
            self.last_saved = self.step
            self.emit(ev.Checkpoint(step=self.step, best=best).to_dict())
        except (OSError, RuntimeError) as e:  # h5py reports a failed write as either
            self.save_error = getattr(e, "strerror", None) or first_line(e)
            # Disk full or read-only: the previous checkpoint is intact; tell the user, go on.
            self.emit(ev.Warning(message=f"Could not write the checkpoint at step {self.step} ({self.save_error}); "
                                         "the previous one is kept. Free some disk space.").to_dict())

    def on_chunk_end(self, epoch: int, logs: dict, model) -> None:
        """Events, validation, checkpoints, pauses and stops after a fused call.

        The step time of a call runs from where the previous call's span ended to the end of this
        call, so it includes the loop's own work between calls (events, status, Keras' epoch
        bookkeeping), as nanoGPT's per-iteration time does; only evaluations, checkpoint writes and
        pauses are left out (nanoGPT leaves out its evaluation iterations)."""
        self.busy = False  # set by an evaluation, a checkpoint write or a pause
        try:
            self._chunk_end(epoch, logs, model)
        finally:
            self.t_begin = time.perf_counter() if self.busy else self.t_train_end

    def _chunk_end(self, epoch: int, logs: dict, model) -> None:
        t = self.cfg.training
        self.step = (epoch + 1) * self.k
        if self.step >= t.max_steps and "val_loss" not in logs and self.val_ds is not None:
            # The last steps are evaluated too (every `eval_interval` steps alone would leave them
            # out, and the best checkpoint, which every later command uses, could predate them).
            logs = {**logs, **{f"val_{k}": v for k, v in self.runner.evaluate(model, self.val_ds).items()}}
        dt = max(1e-9, self.t_train_end - self.t_begin)
        self.train_time += dt
        self.train_steps += self.k
        self.chunks += 1
        if self.chunks > 1:
            self.recent_step_times.append(dt / self.k)
        loss = float(logs.get("loss", float("nan")))
        tokens_per_sec = self.k * t.batch_size * self.cfg.model.sequence_length / dt
        eta = self.eta()
        self.record(ev.Step(step=self.step, loss=loss, lr=self.lr_at(self.step),
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
            self.busy = True
            t0 = self.t_train_end  # the validation pass ran between the last step and now
            val = float(logs["val_loss"])
            extra = {k: float(v) for k, v in logs.items() if k.startswith("val_") and k != "val_loss"}
            with self.alone():
                try:
                    from desktop_llm.core.models import get_family

                    extra.update(get_family(self.cfg.family).eval_extras(self))
                except Exception as e:  # noqa: BLE001 - extra figures are a nicety: never end a run
                    extra["extras_error"] = first_line(e)
                sample = self.sample()
                self.probe()
            improved = self.improves(val, extra)
            if improved:
                self.best = val
            per = (self.baselines or {}).get("bytes_per_token")
            if per:  # a loss over the text's tokens: per byte too, comparable across tokenizers
                extra["val_bits_per_byte"] = bits_per_byte(val, per)
            self.last_eval = ev.parse({**ev.Eval(step=self.step, val_loss=val, val_ppl=math.exp(min(val, 50)),
                                                 best_val_loss=self.best, sample=sample,
                                                 elapsed=self.elapsed).to_dict(),
                                       **extra}).to_dict()  # the family's figures: typed where Eval names them
            self.record(self.last_eval)
            if self.step % t.checkpoint_every == 0 or improved:
                self.save(val, best=improved)
            self.eval_times.append(time.perf_counter() - t0)
        elif self.step % t.checkpoint_every == 0:
            self.save()
        if self.agree is not None:  # several JAX processes: the chief's stop reaches every worker at this step
            if self.agree(self.control is not None and self.control.stop.is_set()):  # (pauses: refused there)
                self.stop_here()
                model.stop_training = True
            return
        if self.control is not None:
            if self.control.paused and not self.control.stop.is_set():
                self.run.write_status(status="paused", step=self.step)
                self.emit(ev.Paused(step=self.step).to_dict())
                self.busy = True
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

    @contextlib.contextmanager
    def alone(self):
        """`self.model` as this worker computes by itself: the model, or (several JAX processes)
        a local copy of its weights, outside the shared distribution."""
        if self.local_build is None:
            yield
            return
        shared = self.model
        with self.local_scope():
            weights = shared.get_weights()
            if self._local is None:
                self._local = self.local_build()
            self._local.set_weights(weights)
            self.model = self._local
            try:
                yield
            finally:
                self.model = shared

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

    def probe(self) -> None:
        """The fixed probe at this evaluation, appended to the run's probes (chief only)."""
        if not (self.writes and self.probe_spec):
            return
        try:
            from desktop_llm.core import probes
            from desktop_llm.core.models import get_family

            started = time.perf_counter()
            family = get_family(self.cfg.family)
            if self.prober is None:
                from desktop_llm.core.prober import compiles_with_xla

                self.prober = family.prober(self.model, jit_compile=compiles_with_xla(self.cfg.training))
            spec = {**self.probe_spec, "prompts": probes.prompts(self.run, self.probe_spec)}  # the user's, if edited
            record = probes.measure(self.prober, self.tok, self.probe_tokens, spec, step=self.step,
                                    training_gradients=self.gradient_stats())
            budget = self.cfg.training.snapshot_budget_mb
            if budget:  # the model at this step, for the views that read weights (the embedding space)
                from desktop_llm.core import snapshots

                try:
                    snapshots.save(self.run, self.model, self.step, budget * 1024 * 1024)
                except OSError as e:  # the record is still worth keeping
                    self.emit(ev.Warning(message=f"The weight snapshot at step {self.step} was not kept: "
                                                 f"{first_line(e)}").to_dict())
            record["seconds"] = round(time.perf_counter() - started, 3)  # its cost (benchmarks/probes_cost.py)
            probes.append(self.run, self.step, record)
        except Exception as e:  # noqa: BLE001 - a probe is a nicety: never let it end a run
            self.emit(ev.Warning(message=f"The probe at step {self.step} failed: {first_line(e)}").to_dict())

    def gradient_stats(self) -> dict | None:
        """The training step's gradient norms since the previous evaluation, where its optimizer
        keeps them (core/training/fused_adamw.py; under a loss-scale optimizer, its inner one)."""
        opt = getattr(self.model, "optimizer", None)
        opt = getattr(opt, "inner_optimizer", opt)
        stats = opt.gradient_stats() if hasattr(opt, "gradient_stats") else None
        return None if stats is None else {**stats, "clip": self.cfg.training.grad_clip}

    def sample(self) -> str:
        if self.cfg.training.sample_tokens <= 0:
            return ""
        try:
            from desktop_llm.core.models import get_family

            return get_family(self.cfg.family).sample(self)
        except Exception as e:  # noqa: BLE001 - a sample is a nicety: never let it end a run
            return f"(no sample: {e})"


def json_line(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, allow_nan=True)
