"""LiteRT (TFLite): the forward pass (token_ids int32 [batch, time] -> logits float32
[batch, time, vocabulary]) as `model.tflite`, converted by Keras' `model.export(format="litert")`.

Forward pass only: the key/value-cache generation loop needs a 6-D StridedSlice, which LiteRT
does not have. Converted with LiteRT's builtin ops only (no Flex/SELECT_TF_OPS fallback), so the
file runs in any LiteRT interpreter, not only one linked with TensorFlow's kernels.
"""

from __future__ import annotations

from pathlib import Path


def write(model, folder: Path) -> dict:
    import tensorflow as tf

    path = folder / "model.tflite"
    model.export(str(path), format="litert", verbose=False,
                 target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    return {
        "files": {"litert": "model.tflite"},
        "inputs": {"token_ids": "int32 [batch, time <= context] (resize the input tensor to your shape)"},
        "outputs": {"output_0": "float32 [batch, time, vocabulary] (logits)"},
        "generation": "none: the forward pass only (the key/value-cache loop does not convert to LiteRT); "
                      "run your own loop over the last position's logits",
        "usage": [
            "it = ai_edge_litert.interpreter.Interpreter(folder + '/model.tflite')  # or tf.lite.Interpreter",
            "it.resize_tensor_input(it.get_input_details()[0]['index'], ids.shape); it.allocate_tensors()",
            "it.set_tensor(it.get_input_details()[0]['index'], ids); it.invoke()",
            "logits = it.get_tensor(it.get_output_details()[0]['index'])",
        ],
        "notes": ["forward pass only: LiteRT carries no generation loop"],
    }
