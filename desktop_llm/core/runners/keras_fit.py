"""Keras' own `fit` on NumPy batches: the JAX and PyTorch runners' common part.

The family's batches come from a Python generator, one per step (a pure function of the seed and
the step: a resumed run sees the same batches), which Keras' data adapters feed to either backend
without `tf.data`. An "epoch" is k steps, so the callback sees the same calls as on TensorFlow.
`keras.Model.fit` is called rather than keras-hub's `CausalLM.fit`, which converts its inputs with
tf.data or grain: the batches here are already token ids (the models have no preprocessor)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field


@dataclass
class OneDevice:
    """A run on one device (or on several through `keras.distribution`, which needs no scope)."""

    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    devices: list[str] = field(default_factory=list)
    kind: str = "default"

    is_chief = property(lambda self: self.worker_index == 0)
    distributed = property(lambda self: self.kind != "default")
    xla_ok = True

    def scope(self):
        return contextlib.nullcontext()

    def describe(self) -> str:
        if self.kind == "model_parallel":
            shards = len(self.devices) // max(1, self.replicas)
            return (f"{len(self.devices)} devices ({', '.join(self.devices)}): each weight sharded over {shards}, "
                    f"the batch split {self.replicas} ways")
        return f"{self.replicas} replicas ({', '.join(self.devices)})" if self.distributed else ""


def validation(arrays, batch: int):
    import keras

    class Batches(keras.utils.PyDataset):
        """The validation arrays in batches of `batch` (the last one shorter), in order."""

        def __init__(self):
            super().__init__()
            self.n = len(keras.tree.flatten(arrays)[0])

        def __len__(self):
            return (self.n + batch - 1) // batch

        def __getitem__(self, i):
            return tuple(keras.tree.map_structure(lambda a: a[i * batch:(i + 1) * batch], part) for part in arrays)

    return Batches()


def evaluate(model, val) -> dict:
    import keras

    return keras.Model.evaluate(model, val, verbose=0, return_dict=True)


def fit(ctx, model, family, data, begin: int, end: int, k: int, validation_every: int, callbacks,
        share: tuple[int, int] = (0, 1)) -> None:
    """`share`: (this worker, workers): each worker of a multi-process run feeds its rows of
    every batch, which JAX puts together into the global batch (the same as one process's)."""
    import keras

    t, T = ctx.cfg.training, ctx.cfg.model.sequence_length
    batches = family.train_batches(data, begin, t.max_steps, t.batch_size, T, t.seed, ctx.vocabulary)
    i, n = share
    if n > 1:
        rows = t.batch_size // n
        batches = (keras.tree.map_structure(lambda a: a[i * rows:(i + 1) * rows], b) for b in batches)
    keras.Model.fit(model, batches, epochs=end // k, steps_per_epoch=k, initial_epoch=begin // k, shuffle=False,
                    validation_data=ctx.val_ds, validation_freq=validation_every, callbacks=callbacks, verbose=0)
