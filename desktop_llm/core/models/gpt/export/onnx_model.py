"""ONNX: the forward pass (token_ids int32 [batch, time] -> logits float32 [batch, time, vocabulary])
as `model.onnx`, converted by Keras' `model.export(format="onnx")` (tf2onnx).

Forward pass only: the key/value-cache generation loop uses XlaDynamicUpdateSlice, which tf2onnx
cannot convert. Our exact GELU compiles to TensorFlow's `Erfc`, which tf2onnx has no handler for
either; ONNX has `Erf`, so `Erfc` is registered here as `1 - Erf(x)` (accurate to float32
rounding: the logits match Keras within 1e-6 on the tiny test models). The graph's output is
renamed from tf2onnx's `Identity:0` to `logits`.
"""

from __future__ import annotations

from pathlib import Path

_registered = False


def _register_erfc() -> None:
    global _registered
    if _registered:
        return
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class _Erfc:
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name("erfc_one"), np.array(1, dtype=dtype))
            erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
            shapes, dtypes = node.output_shapes, node.output_dtypes
            ctx.remove_node(node.name)
            ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=node.output, name=node.name,
                          shapes=shapes, dtypes=dtypes)

    _registered = True


def _rename_output(path: Path, name: str = "logits") -> None:
    import onnx

    m = onnx.load(str(path))
    old = m.graph.output[0].name
    for node in m.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    m.graph.output[0].name = name
    onnx.save(m, str(path))


def write(model, folder: Path) -> dict:
    from desktop_llm.errors import ExportError

    try:
        import onnx  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs tf2onnx and onnx: pip install \"desktop_llm[onnx]\".") from None
    import warnings

    _register_erfc()
    path = folder / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's numpy 2 shims warn about np.object
        model.export(str(path), format="onnx", verbose=False)
    _rename_output(path)
    return {
        "files": {"onnx": "model.onnx"},
        "inputs": {"token_ids": "int32 [batch, time <= context]"},
        "outputs": {"logits": "float32 [batch, time, vocabulary]"},
        "generation": "none: the forward pass only (the key/value-cache loop does not convert to ONNX); "
                      "run your own loop over the last position's logits",
        "usage": [
            "s = onnxruntime.InferenceSession(folder + '/model.onnx')",
            "logits = s.run(['logits'], {'token_ids': numpy.array([[1, 2, 3]], 'int32')})[0]",
        ],
        "notes": ["forward pass only: ONNX carries no generation loop"],
    }
