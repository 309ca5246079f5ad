"""k training steps in one compiled program, for `model.fit`.

Keras' `steps_per_execution` loops over steps in a TensorFlow graph and launches one XLA program
per step, which hands every weight and optimizer slot in and out each time. Here the dataset hands
over k steps' batches at once ([k, batch, ...]) and `train_step` loops over them inside the
program (a `tf.while_loop`, compiled with the step), so XLA keeps the weights in place for all k
steps. Same batches, same updates, same logs (Keras' metrics average over the k steps, as they
did over an "epoch" of k steps). Measured on the reference workload (benchmarks/README.md):
32.1-32.6 ms per step against 35.3-35.6 for Keras' loop, three pairs, back to back.
"""

from __future__ import annotations


def batch_steps(ds, k: int):
    """The training dataset with k consecutive steps' batches stacked into one element."""
    return ds.batch(k, drop_remainder=True) if k > 1 else ds


def fuse_train_steps(model, k: int) -> None:
    """Make `model.train_step` run k steps over an element of `batch_steps(ds, k)`."""
    import tensorflow as tf

    cls_step = type(model).train_step
    if k <= 1:
        model.__dict__.pop("train_step", None)  # back to the class's own
        return

    def one(data, i):
        return cls_step(model, tf.nest.map_structure(lambda t: None if t is None else t[i], data))

    def train_k_steps(data):
        # The step is traced once, inside the loop, and the logs are read after it: the metrics'
        # values after the k-th step are what that step returns (Keras' train_step ends with
        # `compute_metrics`, i.e. `get_metrics_result()`). Peeling step 0 out of the loop to get
        # the logs' structure put two copies of the step in the program: 14 -> 22 s to compile.
        def body(i):
            logs = one(data, i)
            with tf.control_dependencies(tf.nest.flatten(logs)):  # the step runs before the count moves
                return (i + 1,)

        (n,) = tf.while_loop(lambda i: i < k, body, (tf.constant(0),))
        with tf.control_dependencies([n]):
            return tf.nest.map_structure(tf.identity, model.get_metrics_result())

    model.train_step = train_k_steps
