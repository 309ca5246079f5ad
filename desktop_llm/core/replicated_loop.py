"""The training loop for several replicas or machines (tf.distribute), beside `model.fit`.

Why not `model.fit`: under `MultiWorkerMirroredStrategy` it fails (keras-team/keras#20585); XLA
around `strategy.run` fails on logical CPU devices; and Keras clips gradients per replica,
before they are summed, so a clipped run on N replicas would not be the run on one device.
So each replica runs its forward and backward pass in an XLA-compiled function that returns the
loss and dense gradients; the gradients are summed across replicas and machines, and the
optimizer (global-norm clipping, weight decay, loss scaling) applies the sum once, outside XLA.
The result is the single-device run, step for step, at any replica count.

The loop reports to the trainer's `TrainingContext` exactly as the `model.fit` callback does, so
checkpoints, metrics, evaluation and samples are shared code. Across machines, a stop request
(on the chief) is summed into every step so all workers stop at the same step; pausing is not
offered there (a paused chief would make the others' collectives time out).
"""

from __future__ import annotations

import hashlib
import time


def fit_replicated(ctx, model, optimizer, dist, ds, val_ds, start_step: int, max_steps: int, k: int,
                   validation_every: int, jit_compile: bool, global_tokens: int) -> None:
    import keras
    import tensorflow as tf

    strategy = dist.strategy
    SUM = tf.distribute.ReduceOp.SUM
    loss_obj = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    variables = model.trainable_variables
    with strategy.scope():
        if not optimizer.built:
            optimizer.build(variables)  # its slots are mirrored variables, made under the strategy

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(ds.with_options(options)))
    val_batches = strategy.experimental_distribute_dataset(val_ds.with_options(options))

    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            # Summed over this replica's tokens and divided by the global count: the sum over
            # replicas is the mean over the global batch, as on one device.
            loss = tf.reduce_sum(loss_obj(y, tf.cast(logits, "float32"))) / global_tokens
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else itself
        grads = tape.gradient(scaled, variables)
        return loss, [tf.convert_to_tensor(g) for g in grads]  # embeddings give IndexedSlices

    if jit_compile:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(x, y):
        # One all-reduce of the loss and every gradient together (the replica context packs them),
        # not one `strategy.reduce` per variable: under MultiWorkerMirroredStrategy TensorFlow
        # leaves "collective_ops" threads behind per collective, and with ~70 collectives a step
        # two workers of the small preset died of thread exhaustion at about step 110 (and ran at
        # half the speed). Still about 5 threads a step are left (TensorFlow's; measured by the test).
        loss, grads = forward_backward(x, y)
        return tf.distribute.get_replica_context().all_reduce(SUM, [loss, *grads])

    @tf.function
    def train_chunk(iterator, stop_flag):
        total = tf.constant(0.0)
        for _ in tf.range(k):
            x, y = next(iterator)
            summed = strategy.run(replica_step, args=(x, y))
            loss, *grads = (strategy.experimental_local_results(t)[0] for t in summed)
            optimizer.apply(grads, variables)
            total += loss
        flags = strategy.run(tf.identity, args=(stop_flag,))  # one per replica, on every machine
        return total / k, strategy.reduce(SUM, flags, axis=None)

    def val_step(x, y):
        logits = model(x, training=False)
        return (tf.reduce_sum(loss_obj(y, tf.cast(logits, "float32"))),
                tf.cast(tf.size(y), tf.float32))

    @tf.function
    def val_fn(x, y):
        s, n = strategy.run(val_step, args=(x, y))
        return strategy.reduce(SUM, s, axis=None), strategy.reduce(SUM, n, axis=None)

    def evaluate() -> float:
        s = n = 0.0
        for x, y in val_batches:
            bs, bn = val_fn(x, y)
            s, n = s + float(bs), n + float(bn)
        return s / max(n, 1.0)

    multi_worker = dist.kind == "multi_worker"
    control = ctx.control
    if multi_worker:
        ctx.control = None  # stop requests travel through the step (below), pauses are refused
    step, epoch = start_step, start_step // k
    model.stop_training = False
    ctx.t_begin = time.perf_counter()  # then on_chunk_end moves it on
    while step < max_steps:
        want_stop = float(control is not None and control.stop.is_set())
        loss, stops = train_chunk(iterator, tf.constant(want_stop))
        loss = float(loss)
        ctx.t_train_end = time.perf_counter()
        step += k
        logs = {"loss": loss}
        if (epoch + 1) % validation_every == 0 or step >= ctx.cfg.training.max_steps:  # and the last step
            logs["val_loss"] = evaluate()
        ctx.on_chunk_end(epoch, logs, model)
        epoch += 1
        if model.stop_training:
            break
        if multi_worker and float(stops) > 0:
            ctx.stop_here()
            break


def weights_digest(model) -> str:
    """SHA-256 of the model's weights: equal on every worker of a synchronous run."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()
