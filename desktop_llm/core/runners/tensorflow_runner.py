"""TensorFlow: `tf.data` feeding, k steps fused into one XLA program (tensorflow_fused.py), and
`tf.distribute` for several devices or machines (core/distribute.py, core/replicated_loop.py)."""

from __future__ import annotations

import numpy as np

STARTS_BLOCK = 2048  # steps whose window starts are drawn at once, in tf.data's own thread


def setup(devices, cluster=(), worker_index: int = 0, model_parallel: int = 1, layout=None):
    from desktop_llm.core import distribute
    from desktop_llm.core.runners import refuse_model_parallel

    refuse_model_parallel("tensorflow", model_parallel)

    return distribute.setup(devices, cluster, worker_index)


def devices() -> list[dict]:
    """The GPUs TensorFlow sees, then the CPU."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from desktop_llm.core.runners import cpu_entry

    out = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - the details are a nicety; TensorFlow fails here in several ways
            details = {}
        out.append({"kind": "GPU", "name": details.get("device_name", gpu.name),
                    "compute_capability": details.get("compute_capability"), "id": gpu.name})
    return out + [cpu_entry()]


def compile_options(training, k: int) -> dict:
    return {"jit_compile": training.jit_compile}  # k steps per call: fused.py, not steps_per_execution


def train_dataset(family, data, begin: int, max_steps: int, batch: int, T: int, seed: int, vocabulary: int):
    """The family's batches for steps begin.. as a prefetched tf.data pipeline. Random windows of
    a token split (`family.token_windows`) are cut inside the graph instead: any Python in the
    pipeline, even a generator called once per 64 steps, cost 4-7 of 40 ms per step on the
    reference workload (the step and tf.data share two cores)."""
    import tensorflow as tf

    from desktop_llm.core.data import IN_GRAPH_MAX_TOKENS

    if family.token_windows and len(data.train) <= IN_GRAPH_MAX_TOKENS:
        end = max_steps + 1024

        def block(first):  # the windows' starts for STARTS_BLOCK steps (50 us a step: 0.1 s a block)
            first = int(first)
            return np.stack([data.train_starts(s, batch, T, seed)
                             for s in range(first, min(first + STARTS_BLOCK, end))]).astype(np.int32)

        # Drawn a block at a time, ahead of the step, rather than all up front: a run of a million
        # steps waited 50 s for its starts before its first step.
        starts = tf.data.Dataset.range(begin, end, STARTS_BLOCK).map(
            lambda first: tf.ensure_shape(tf.numpy_function(block, [first], tf.int32), [None, batch])).unbatch()
        tokens = tf.constant(np.asarray(data.train))  # uint16/uint32, as stored; int32 per window
        offsets = tf.range(T + 1)

        def windows(first):
            w = tf.cast(tf.gather(tokens, first[:, None] + offsets[None, :]), tf.int32)
            return w[:, :-1], w[:, 1:]

        return starts.map(windows).prefetch(tf.data.AUTOTUNE)
    batches = family.train_batches(data, begin, max_steps, batch, T, seed, vocabulary)
    first = next(batches)

    def again():
        yield first
        yield from batches

    spec = tf.nest.map_structure(lambda a: tf.TensorSpec(np.shape(a), tf.as_dtype(np.asarray(a).dtype)), first)
    return tf.data.Dataset.from_generator(again, output_signature=spec).prefetch(tf.data.AUTOTUNE)


def validation(arrays, batch: int):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch).cache()


def evaluate(model, val) -> dict:
    return model.evaluate(val, verbose=0, return_dict=True)


def fit(ctx, model, dist, family, data, begin: int, end: int, k: int, validation_every: int, callbacks) -> None:
    t, T = ctx.cfg.training, ctx.cfg.model.sequence_length
    ds = train_dataset(family, data, begin, t.max_steps, t.batch_size, T, t.seed, ctx.vocabulary)
    if dist.distributed:
        from desktop_llm.core.replicated_loop import fit_replicated

        fit_replicated(ctx, model, ctx.optimizer, dist, ds, ctx.val_ds, begin, end, k, validation_every,
                       t.jit_compile and dist.xla_ok)
        return
    from desktop_llm.core.runners.tensorflow_fused import batch_steps, fuse_train_steps

    fuse_train_steps(model, k)
    model.fit(batch_steps(ds, k), epochs=end // k, steps_per_epoch=1, initial_epoch=begin // k,
              validation_data=ctx.val_ds, validation_freq=validation_every, callbacks=callbacks, verbose=0)


def compiled(model, fn, jit_compile: bool = True):
    """fn(*arrays) over `model`'s current weights, compiled once per input shape (probes, inference)."""
    import tensorflow as tf

    return tf.function(fn, jit_compile=jit_compile, autograph=False)


def gradients(model, fn):
    """g(*arrays): the gradient of the scalar fn(*arrays) for each of `model.trainable_variables`
    (None where it gets none), as NumPy. A graph without XLA, traced once per input shape (on the
    reference model an eager call took 0.2-0.4 s)."""
    import tensorflow as tf

    @tf.function(autograph=False)
    def graph(*args):
        with tf.GradientTape() as tape:
            loss = fn(*args)
        return [None if g is None else tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]

    return lambda *args: [None if g is None else np.asarray(g) for g in graph(*args)]
