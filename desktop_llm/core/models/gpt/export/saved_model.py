"""TensorFlow SavedModel with two signatures, written by `keras.export.ExportArchive`:

- `serve` (also `serving_default`): token_ids int32 [batch, time] -> logits float32
  [batch, time, vocabulary]; time at most the context length.
- `generate`: token_ids int32 [batch, prompt], max_new_tokens, temperature (0: greedy), top_k
  (0: off) and seed -> ids int32 [batch, prompt + max_new_tokens].

`generate` runs the model's own forward pass on the last `context` tokens for each new token
(no key/value cache): a little slower than the app's cached loop, but it is exactly what
`model(ids)` computes, so greedy output matches Keras token for token, and it stays a plain
`tf.while_loop` that TF Serving and any TensorFlow runtime run. Past the context the window
slides by one token. Sampling uses TF's stateless sampler: the same seed gives the same text,
but not the same draws as the app's keras-hub samplers.
"""

from __future__ import annotations

from pathlib import Path


def _endpoints(model):
    import tensorflow as tf

    length = int(model.backbone.max_sequence_length)
    vocabulary = int(model.backbone.vocabulary_size)

    def logits(token_ids):
        return tf.cast(model(token_ids, training=False), tf.float32)

    def next_token(ids, step, temperature, top_k, seed):
        last = tf.cast(model(ids[:, -length:], training=False)[:, -1, :], tf.float32)
        greedy = tf.argmax(last, axis=-1, output_type=tf.int32)
        k = tf.where(top_k > 0, tf.minimum(top_k, vocabulary), vocabulary)
        kth = tf.math.top_k(last, k=k).values[:, -1:]
        scaled = tf.where(last < kth, tf.fill(tf.shape(last), -1e9), last) / tf.maximum(temperature, 1e-6)
        sampled = tf.random.stateless_categorical(scaled, 1, seed=tf.stack([seed, step]), dtype=tf.int32)[:, 0]
        return tf.where(temperature > 0, sampled, greedy)

    def generate(token_ids, max_new_tokens, temperature, top_k, seed):
        def body(step, ids):
            new = next_token(ids, step, temperature, top_k, seed)
            return step + 1, tf.concat([ids, new[:, None]], axis=1)

        _, ids = tf.while_loop(
            lambda step, ids: step < max_new_tokens, body, [tf.constant(0), token_ids],
            shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None])],
        )
        return ids

    ids = tf.TensorSpec([None, None], tf.int32, name="token_ids")

    def scalar(dtype, name):
        return tf.TensorSpec([], dtype, name=name)

    return [
        ("serve", logits, [ids]),
        ("generate", generate, [ids, scalar(tf.int32, "max_new_tokens"), scalar(tf.float32, "temperature"),
                                scalar(tf.int32, "top_k"), scalar(tf.int32, "seed")]),
    ]


def write(model, folder: Path) -> dict:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn, signature in _endpoints(model):
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(str(folder), verbose=False)
    return {
        "files": {"savedmodel": "saved_model.pb, variables/"},
        "signatures": {
            "serve": "token_ids int32 [batch, time <= context] -> logits float32 [batch, time, vocabulary]",
            "generate": "token_ids int32 [batch, prompt], max_new_tokens int32, temperature float32 (0: greedy), "
                        "top_k int32 (0: off), seed int32 -> ids int32 [batch, prompt + max_new_tokens]",
        },
        "generation": "the generate signature (no key/value cache; greedy matches Keras exactly)",
        "usage": [
            "m = tf.saved_model.load(folder)",
            "logits = m.serve(tf.constant([[1, 2, 3]], tf.int32))",
            "ids = m.generate(tf.constant([[1, 2, 3]], tf.int32), 50, 0.8, 40, 1)",
        ],
        "notes": [],
    }
