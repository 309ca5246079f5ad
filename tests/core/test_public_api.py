"""The package uses only the public API of Keras and keras-hub: their private modules
(`keras.src...`, `keras_hub.src...`) change without notice between releases."""

import ast
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "desktop_llm"
PRIVATE = ("keras.src", "keras_hub.src")


def _private(name: str | None) -> bool:
    return bool(name) and any(name == p or name.startswith(p + ".") for p in PRIVATE)


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` for an attribute chain on a plain name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _private_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for each import of, or reference to, a private module of the two."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _private(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if _private(node.module):
                found.append((node.lineno, node.module))
            elif node.module in ("keras", "keras_hub"):  # from keras import src
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                          if _private(f"{node.module}.{a.name}")]
        elif isinstance(node, ast.Attribute) and _private(name := _dotted(node)):
            found.append((node.lineno, ".".join(name.split(".")[:2])))  # keras.src.x via `import keras`
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _private(node.args[0].value)
              and (_dotted(node.func) or "").split(".")[-1] in ("import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return sorted(set(found))


def test_the_scan_finds_each_way_of_reaching_a_private_module():
    source = "\n".join([  # noqa: FLY002 - one item per source line
        "import keras.src.saving.saving_lib",
        "from keras_hub.src.layers import x",
        "from keras import src",
        "import keras\nkeras.src.ops.add(1, 2)",
        "importlib.import_module('keras.src.backend')",
        "import keras.saving, keras_hub.layers, keras_source",  # public, and a name that only starts alike
        "from keras.layers import Dense",
    ])
    assert _private_uses(ast.parse(source)) == [
        (1, "keras.src.saving.saving_lib"), (2, "keras_hub.src.layers"), (3, "keras.src"),
        (5, "keras.src"), (6, "keras.src.backend")]


def test_no_module_of_the_package_uses_a_private_keras_or_keras_hub_module():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
                 for path in files
                 for line, name in _private_uses(ast.parse(path.read_text("utf-8"), str(path)))]
    assert not offenders, "private modules of dependencies:\n" + "\n".join(offenders)


def _h5_contents(data: bytes) -> dict:
    import io

    import h5py

    out = {}
    with h5py.File(io.BytesIO(data), "r") as h:
        out["/"] = dict(h.attrs)
        h.visititems(lambda name, obj: out.__setitem__(
            name, obj[()] if isinstance(obj, h5py.Dataset) else dict(obj.attrs)))
    return out


def test_weights_bytes_round_trip_through_load_weights_into_a_fresh_model(tmp_path):
    """`weights_bytes` (checkpoints: HDF5 written in memory) holds exactly what `save_weights`
    writes to a file, and a fresh model of the same shape loads it to identical weights."""
    from desktop_llm.core.checkpoints import weights_bytes
    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models.backbones.gpt import build_model

    cfg = ModelConfig(vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                      sequence_length=8)
    model, fresh = build_model(cfg, seed=1), build_model(cfg, seed=2)
    before = [np.array(w) for w in fresh.get_weights()]

    data = weights_bytes(model)
    assert data[:8] == b"\x89HDF\r\n\x1a\n"
    assert not list(tmp_path.iterdir()) and not Path("/dev/null/in-memory.weights.h5").exists()
    model.save_weights(tmp_path / "disk.weights.h5")
    expected, got = _h5_contents((tmp_path / "disk.weights.h5").read_bytes()), _h5_contents(data)
    assert sorted(got) == sorted(expected) and any("transformer_decoder" in k for k in got)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert got[key] == value, key
        else:
            np.testing.assert_array_equal(got[key], value, err_msg=key)

    path = tmp_path / "memory.weights.h5"
    path.write_bytes(data)
    fresh.load_weights(path)
    weights = model.get_weights()
    assert len(weights) == len(fresh.get_weights()) == len(before)
    assert any(not np.array_equal(a, b) for a, b in zip(weights, before))  # the load changed it
    for a, b in zip(weights, fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.arange(16, dtype="int32").reshape(2, 8)
    np.testing.assert_array_equal(np.asarray(fresh(x)), np.asarray(model(x)))


def test_weights_bytes_never_falls_back_to_a_file_on_disk():
    """Should Keras stop taking the in-memory file and use its name as a path, the name is one
    the system refuses to create: the save fails instead of writing HDF5 to a disk."""
    import h5py

    from desktop_llm.core.checkpoints import _InMemoryWeightsFile

    name = str(_InMemoryWeightsFile())
    assert name.endswith(".weights.h5")
    with pytest.raises(OSError):
        h5py.File(name, "w")


def test_the_causal_decoder_keeps_a_keras_mask_on_its_input(monkeypatch):
    """The decoder asks for `is_causal` only where keras-hub's mask would be the causal one alone:
    a Keras mask on the input (here an Embedding's `mask_zero`) still goes into keras-hub's
    explicit mask, with the output keras-hub's decoder gives from the same weights."""
    import keras
    import keras_hub
    from keras.src import ops as kops

    from desktop_llm.core.models.backbones import causal_decoder

    monkeypatch.setattr(causal_decoder, "CAUSAL_KERNEL", True)
    calls = []
    attend = kops.dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("is_causal"), kwargs.get("mask") is None))
        return attend(*args, **kwargs)

    monkeypatch.setattr(kops, "dot_product_attention", spy)
    ids = np.array([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 1]], "int32")  # 0: padding, on the left
    embed = keras.layers.Embedding(10, 8, mask_zero=True)
    masked, plain = embed(ids), keras.ops.convert_to_tensor(np.asarray(embed(ids)))
    ours = causal_decoder.TransformerDecoder(intermediate_dim=16, num_heads=2)
    stock = keras_hub.layers.TransformerDecoder(intermediate_dim=16, num_heads=2)
    ours.build(masked.shape)
    stock.build(masked.shape)
    stock.set_weights(ours.get_weights())

    with_mask = np.asarray(ours(masked))
    assert calls == [(False, False)]  # keras-hub's (batch, T, T) mask, padding included
    np.testing.assert_allclose(with_mask, np.asarray(stock(masked)), atol=1e-6)
    calls.clear()
    without = np.asarray(ours(plain))
    assert calls == [(True, True)]  # no mask anywhere: the causal kernel
    np.testing.assert_allclose(without, np.asarray(stock(plain)), atol=1e-5)
    assert np.abs(with_mask[0, 2:] - without[0, 2:]).max() > 1e-4  # the padding mask mattered
