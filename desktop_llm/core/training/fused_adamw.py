"""AdamW over all weights at once: one flat moment buffer each, one update for the whole model.

Keras' AdamW updates each weight on its own (clipping, decay, moments, step), so a GPT of 4
layers puts 211 x several small kernels in the compiled step, and XLA compiles each one. Here
the gradients are concatenated into one vector; the global-norm clip and the Adam moments run
on it as one kernel, and each weight takes its slice (with its decay). The same arithmetic as
`keras.optimizers.AdamW` (the reference run's losses agree to every printed digit). Measured on
the reference model (4 x 4 x 128, 10 fused steps, three alternated pairs): the first call
compiles in 6.3-6.9 s instead of 12.1-19.4 s, and steps take as long (36.1-37.7 vs 35.7-38.4
ms). PyTorch's `fused`/`foreach` AdamW exist for the same reason; Keras has no multi-tensor
optimizer, hence this class. Written with `keras.ops`: the same update on every backend.

It also keeps each group of weights' gradient norm over the steps since the last evaluation
(`track_gradients`: mean, largest and the step of the largest), read by the trainer at each
evaluation for the Health view (core/health.py): the training step's own gradients, every step,
at the cost of one more reduction over a vector the clip already reduces, where a separate
backward pass at each evaluation cost 1.0 s to trace and 0.04 s a call on the reference model
and saw only the evaluations' steps. These statistics are not optimizer state: checkpoints
leave them out.

Checkpoints keep Keras' layout ([iteration, (learning rate,) m_0, v_0, m_1, v_1, ...]):
`state_arrays` and `load_state_arrays` convert, so a checkpoint moves between this optimizer
and Keras' own, which the multi-replica loop keeps (there every variable update goes through
the tf.distribute strategy, one variable at a time).
"""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="desktop_llm")
class FusedAdamW(keras.optimizers.AdamW):
    _track = None  # (the group of each weight by path, the number of groups, steps per interval)
    _stats = None  # (4, groups + 1): the interval's sum, largest, step of largest, count; the last column all weights'

    def track_gradients(self, group_of: dict[str, int], groups: int, every: int) -> None:
        """Keep each group's gradient norm over intervals of `every` steps (the evaluations'):
        `group_of` maps a weight's path to its group's index. Called before the first step."""
        self._track = (dict(group_of), int(groups), max(1, int(every)))

    def build(self, var_list):
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, var_list)  # iteration (and learning rate); not Adam's slots
        self._shapes = [tuple(v.shape) for v in var_list]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        total = sum(self._sizes)
        self._flat_m = self.add_variable((total,), name="flat_momentum")
        self._flat_v = self.add_variable((total,), name="flat_velocity")
        self._decays = [self._use_weight_decay(v) for v in var_list]
        if self._track is not None:
            group_of, n, self._every = self._track
            # each group's runs of the flat gradient (weights are laid out group by group, so one
            # or two runs each): a few slice reductions per step, not one per weight (the reference
            # model, benchmarks/gradient_stats_cost.py: x1.007 and x1.026 per step with one per
            # weight, x0.97 and x1.01 with runs; this machine's noise is about 3%)
            self._runs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
            at = 0
            for v, size in zip(var_list, self._sizes):
                g = group_of.get(v.path)
                if g is not None:
                    runs = self._runs[g]
                    if runs and runs[-1][1] == at:
                        runs[-1] = (runs[-1][0], at + size)
                    else:
                        runs.append((at, at + size))
                at += size
            self._stats = self.add_variable((4, n + 1), name="gradient_stats")

    def _not_state(self, v) -> bool:
        return v is self._flat_m or v is self._flat_v or v is self._stats

    def _keep_stats(self, g) -> None:
        """This step's norms (before clipping) into the interval's statistics; an interval starts
        at every `every`-th step, so the evaluation after it reads exactly its steps. `g`: the
        flat gradient."""
        ops = keras.ops
        zero = ops.zeros((), "float32")
        per_group = [sum((ops.sum(ops.square(g[a:b])) for a, b in runs), zero) for runs in self._runs]
        norms = ops.sqrt(ops.stack([*per_group, ops.sum(ops.square(g))]))  # the last: as the clip computes it
        s = self._stats.value
        start = ops.equal(ops.mod(self.iterations, self._every), 0)
        higher = ops.logical_or(start, norms > s[1])
        step = ops.cast(self.iterations + 1, "float32")
        self._stats.assign(ops.stack([
            ops.where(start, norms, s[0] + norms),
            ops.where(higher, norms, s[1]),
            ops.where(higher, step, s[2]),
            ops.where(start, ops.ones_like(norms), s[3] + 1.0)]))

    def gradient_stats(self) -> dict | None:
        """{"mean", "max", "at": per group then all weights, "steps"}: the gradient norms of the
        steps since the current interval began; None when not tracked or no step was taken."""
        if self._stats is None:
            return None
        s = np.asarray(keras.ops.convert_to_numpy(self._stats.value), np.float64)
        if s[3, 0] < 1:
            return None
        return {"mean": (s[0] / s[3, 0]).tolist(), "max": s[1].tolist(), "at": s[2].astype(int).tolist(),
                "steps": int(s[3, 0])}

    # The global-norm clip and the decay happen inside the one update below (Keras allows one
    # kind of clipping; per-tensor ones stay Keras').
    def _clip_gradients(self, grads):
        return grads if self.global_clipnorm else super()._clip_gradients(grads)

    def _apply_weight_decay(self, variables):
        return

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        ops = keras.ops
        order = [self._get_variable_index(v) for v in trainable_variables]
        live, subset = set(order), len(order) < len(self._sizes)
        if order != list(range(len(self._sizes))):
            # Another order, or frozen weights without a gradient: zeros for those, which keep
            # their weights and moments (`keep` below).
            given = dict(zip(order, grads))
            grads = [given.get(i, ops.zeros(s)) for i, s in enumerate(self._shapes)]
        variables = self._trainable_variables
        lr = ops.cast(learning_rate, "float32")
        g = ops.concatenate([ops.reshape(ops.cast(x, "float32"), [-1]) for x in grads], 0)
        if self._stats is not None:
            self._keep_stats(g)
        if self.global_clipnorm:  # keras' clip_by_global_norm: a NaN norm makes every update NaN
            norm = ops.sqrt(ops.sum(ops.square(g)))
            c = self.global_clipnorm
            g = g * (c * ops.minimum(1.0 / norm, 1.0 / c) + (norm - norm))
        step = ops.cast(self.iterations + 1, "float32")
        alpha = lr * ops.sqrt(1 - ops.power(self.beta_2, step)) / (1 - ops.power(self.beta_1, step))
        m0, v0 = self._flat_m.value, self._flat_v.value
        m = m0 + (g - m0) * (1 - self.beta_1)
        v = v0 + (ops.square(g) - v0) * (1 - self.beta_2)
        if not subset:
            self._flat_m.assign(m)
            self._flat_v.assign(v)
        else:
            keep = np.concatenate([np.full(n, i in live) for i, n in enumerate(self._sizes)])
            self._flat_m.assign(ops.where(keep, m, m0))
            self._flat_v.assign(ops.where(keep, v, v0))
        # Each weight takes its slice, with its decay (in the same small kernel, no concatenation
        # of the weights); frozen ones are left alone.
        decay = (self.weight_decay or 0.0) * lr
        steps = ops.split((m * alpha) / (ops.sqrt(v) + self.epsilon), np.cumsum(self._sizes)[:-1].tolist())
        for i, (var, part, shape) in enumerate(zip(variables, steps, self._shapes)):
            if i in live:
                update = ops.reshape(part, shape)
                var.assign_sub(update + var.value * decay if self._decays[i] else update)

    # ------------------------------------------------------------------ checkpoints in Keras' layout
    def state_size(self) -> int:
        """len(state_arrays()), without reading the state."""
        return sum(not self._not_state(v) for v in self.variables) + 2 * len(self._shapes)

    def state_arrays(self) -> list[np.ndarray]:
        """The state as `keras.optimizers.AdamW.variables` lists it."""
        head = [np.asarray(v.numpy()) for v in self.variables if not self._not_state(v)]
        ms = np.split(np.asarray(self._flat_m.numpy()), np.cumsum(self._sizes)[:-1])
        vs = np.split(np.asarray(self._flat_v.numpy()), np.cumsum(self._sizes)[:-1])
        out = head
        for m, v, shape in zip(ms, vs, self._shapes):
            out += [m.reshape(shape), v.reshape(shape)]
        return out

    def load_state_arrays(self, values: list[np.ndarray]) -> None:
        """Inverse of `state_arrays`; raises ValueError when they do not fit this model."""
        head = [v for v in self.variables if not self._not_state(v)]
        slots = values[len(head):]
        if len(slots) != 2 * len(self._shapes) or any(
                np.shape(s) != shape for s, shape in zip(slots, [s for s in self._shapes for _ in (0, 1)])):
            raise ValueError("The optimizer state does not match this model.")
        for var, val in zip(head, values):
            var.assign(val)
        self._flat_m.assign(np.concatenate([np.ravel(s) for s in slots[0::2]]))
        self._flat_v.assign(np.concatenate([np.ravel(s) for s in slots[1::2]]))
