"""The training loop for several replicas or machines (tf.distribute), beside `model.fit`.

Why not `model.fit`: under `MultiWorkerMirroredStrategy` it fails (keras-team/keras#20585); XLA
around `strategy.run` fails on logical CPU devices; and Keras clips gradients per replica,
before they are summed, so a clipped run on N replicas would not be the run on one device.
So each replica runs its forward and backward pass in an XLA-compiled function that returns the
loss and dense gradients; the gradients are summed across replicas and machines, and the
optimizer (global-norm clipping, weight decay, loss scaling) applies the sum once, outside XLA.
The result is the single-device run, step for step, at any replica count.

Every family's batches go through it: (inputs, targets) or (inputs, targets, weights), with the
family's own compiled loss. Each replica returns the weighted sum of its losses and its share of
the divisor (the count of its elements, or the sum of its weights for a loss reduced with
`mean_with_sample_weight`, as the translator's); both are summed with the gradients, and the sum
of gradients is divided by the global divisor: the mean over the global batch, exactly. A
variable that gets no gradient (BERT's pooler under a masked-LM head) gets zeros.

The loop reports to the trainer's `TrainingContext` exactly as the `model.fit` callback does, so
checkpoints, metrics, evaluation and samples are shared code. Across machines, a stop request
(on the chief) is summed into every step so all workers stop at the same step; pausing is not
offered there (a paused chief would make the others' collectives time out).
"""

from __future__ import annotations

import hashlib
import time


def _loss_terms(model):
    """(per-element loss, weighted_mean): the compiled loss of the family, unreduced, and whether
    it divides by the sum of the weights (else by the number of elements, Keras' default)."""
    import keras

    loss = model.loss
    if isinstance(loss, str) or loss is None:
        loss = keras.losses.get(loss or "sparse_categorical_crossentropy")
    return loss.call, getattr(loss, "reduction", None) == "mean_with_sample_weight"


def fit_replicated(ctx, model, optimizer, dist, ds, val_ds, start_step: int, max_steps: int, k: int,
                   validation_every: int, jit_compile: bool) -> None:
    import tensorflow as tf

    strategy = dist.strategy
    SUM = tf.distribute.ReduceOp.SUM
    per_element, weighted_mean = _loss_terms(model)
    variables = model.trainable_variables
    with strategy.scope():
        if not optimizer.built:
            optimizer.build(variables)  # its slots are mirrored variables, made under the strategy

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(ds.with_options(options)))
    val_batches = strategy.experimental_distribute_dataset(val_ds.with_options(options))

    def summed_loss(x, y, w=None, training=True):
        """(sum of this replica's weighted losses, its share of the divisor)."""
        values = per_element(y, tf.cast(model(x, training=training), "float32"))
        if w is None:
            return tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32)
        w = tf.cast(w, tf.float32)
        w = tf.broadcast_to(w, tf.shape(values)) if w.shape.rank == values.shape.rank else w
        divisor = tf.reduce_sum(w) if weighted_mean else tf.cast(tf.size(values), tf.float32)
        return tf.reduce_sum(values * w), divisor

    def forward_backward(*batch):
        with tf.GradientTape() as tape:
            total, divisor = summed_loss(*batch)
            scaled = optimizer.scale_loss(total)  # loss scaling under mixed_float16, else itself
        grads = tape.gradient(scaled, variables)
        # embeddings give IndexedSlices; a variable the loss does not reach (BERT's pooler) None
        return total, divisor, [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                                for g, v in zip(grads, variables)]

    if jit_compile:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(*batch):
        # One all-reduce of the loss, the divisor and every gradient together (the replica context
        # packs them), not one `strategy.reduce` per variable: under MultiWorkerMirroredStrategy
        # TensorFlow leaves "collective_ops" threads behind per collective, and with ~70
        # collectives a step two workers of the small preset died of thread exhaustion at about
        # step 110 (and ran at half the speed). Still about 5 threads a step are left (TensorFlow's;
        # measured by the test).
        total, divisor, grads = forward_backward(*batch)
        return tf.distribute.get_replica_context().all_reduce(SUM, [total, divisor, *grads])

    @tf.function
    def train_chunk(iterator, stop_flag):
        mean = tf.constant(0.0)
        for _ in tf.range(k):
            batch = next(iterator)
            summed = strategy.run(replica_step, args=tuple(batch))
            total, divisor, *grads = (strategy.experimental_local_results(t)[0] for t in summed)
            divisor = tf.maximum(divisor, 1.0)
            optimizer.apply([g / tf.cast(divisor, g.dtype) for g in grads], variables)
            mean += total / divisor
        flags = strategy.run(tf.identity, args=(stop_flag,))  # one per replica, on every machine
        return mean / k, strategy.reduce(SUM, flags, axis=None)

    def val_step(*batch):
        return summed_loss(*batch, training=False)

    @tf.function
    def val_fn(batch):
        s, n = strategy.run(val_step, args=tuple(batch))
        return strategy.reduce(SUM, s, axis=None), strategy.reduce(SUM, n, axis=None)

    def evaluate() -> float:
        s = n = 0.0
        for batch in val_batches:
            bs, bn = val_fn(batch)
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
