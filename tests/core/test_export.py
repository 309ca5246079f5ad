"""Exports that other tools load: each format is loaded in a fresh Python where desktop_llm cannot
be imported (`sys.modules["desktop_llm"] = None` makes every import of it fail, since the venv
has it installed in editable mode) and compared with the engine's own model on the same input."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.export import ExportError, default_path, export_run, read_info
from desktop_llm.store import RunStore

# The first line of every check: desktop_llm cannot be imported in the checking process.
BLOCK = "import sys; sys.modules['desktop_llm'] = None\n"
TOL = 1e-4
TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16)


def _config(corpus, steps, name="r", **model):
    """A tiny char run (as in test_robustness): one checkpoint at step 20."""
    t = TrainConfig(max_steps=steps, batch_size=8, eval_interval=20, eval_batches=2, log_interval=10,
                    warmup_steps=5, learning_rate=3e-3, min_learning_rate=3e-4, sample_tokens=0)
    return RunConfig(name=name, data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                     model=replace(TINY, **model), training=t)


def fresh(code: str, *args, cwd) -> str:
    """Run `code` in `python -I` (no PYTHONPATH, no user site, cwd not on sys.path) from `cwd`,
    with desktop_llm blocked; its stdout, or the failure with stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # float32 on the CPU, like the reference (no TF32 on a GPU)
    p = subprocess.run([sys.executable, "-I", "-c", BLOCK + textwrap.dedent(code), *map(str, args)],
                       capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr[-4000:]}"
    return p.stdout


def cli(home, *args):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def keras_logits(model, ids) -> np.ndarray:
    """The engine's own logits, on the CPU: a GPU would round float32 matmuls to TF32."""
    import tensorflow as tf

    with tf.device("/CPU:0"):
        return np.asarray(model(ids))


def greedy(model, prompt: np.ndarray, n: int) -> np.ndarray:
    """Keras' own greedy continuation: the model on the last `context` tokens, one token at a time."""
    length = model.backbone.max_sequence_length
    ids = prompt
    for _ in range(n):
        last = keras_logits(model, ids[:, -length:])[:, -1]
        ids = np.concatenate([ids, last.argmax(-1).astype("int32")[:, None]], axis=1)
    return ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shakespeare_small):
    """A tiny char run trained for real (20 steps), its model as the engine loads it, and an input."""
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.training import train_run

    home = tmp_path_factory.mktemp("export-ws")
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=20))
    assert train_run(run, store=store)["status"] == "completed"
    model, tok, _ = load_for_inference(run)
    ids = np.random.RandomState(0).randint(1, tok.vocabulary_size, (2, TINY.sequence_length)).astype("int32")
    work = tmp_path_factory.mktemp("export-check")
    np.save(work / "ids.npy", ids)
    return store, run, model, tok, ids, work


def test_keras_hub_preset_loads_in_plain_keras_hub_and_generates(trained):
    """A char run carries its preprocessor: plain keras-hub's `CausalLM.from_preset(folder)
    .generate("ROMEO:")` reads the prompt with the app's ids, adds no start token, and writes the
    text the app's tokenizer decodes from the app's own greedy continuation."""
    store, run, model, tok, ids, work = trained
    result = export_run(run, "keras-hub", exports_dir=store.exports_dir)
    assert result.path == default_path(run, "keras-hub", store.exports_dir) == store.exports_dir / f"{run.id}-keras-hub"
    names = {p.name for p in result.path.iterdir()}
    assert {"config.json", "task.json", "model.weights.h5", "preprocessor.json", "tokenizer.json",
            "vocabulary.json", "export.json"} <= names
    assert result.notes == []
    assert json.loads((result.path / "vocabulary.json").read_text("utf-8")) == tok.vocabulary()
    assert "RWKVTokenizer" in read_info(result.path)["keras_hub_tokenizer"]
    n = TINY.sequence_length
    out = fresh("""
        import json, numpy as np, keras_hub
        try:
            import desktop_llm
            raise SystemExit("desktop_llm is importable here")
        except ImportError:
            pass
        folder, ids, n = sys.argv[1], np.load(sys.argv[2]), int(sys.argv[3])
        lm = keras_hub.models.CausalLM.from_preset(folder)
        assert type(lm).__name__ == "GPT2CausalLM" and type(lm.backbone).__name__ == "GPT2Backbone"
        assert type(lm.preprocessor).__name__ == "GPT2CausalLMPreprocessor", type(lm.preprocessor)
        read = lambda text: [int(i) for i in np.asarray(lm.preprocessor.tokenizer(text))]
        sampled = lm.generate("ROMEO:", max_length=n)
        lm.compile(sampler="greedy")
        greedy = lm.generate("ROMEO:", max_length=n)
        json.dump({"prompt": read("ROMEO:"), "packed": np.asarray(lm.preprocessor.generate_preprocess(
                   "ROMEO:", sequence_length=n)["token_ids"]).tolist(), "sampled": sampled,
                   "sampled_ids": read(sampled), "greedy": greedy, "greedy_ids": read(greedy)},
                  open("kh_text.json", "w"))
        lm.preprocessor = None  # on token ids
        np.save("kh_logits.npy", np.asarray(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)})))
        length = lm.backbone.max_sequence_length
        x = np.zeros((1, length), "int32"); x[0, :5] = ids[0, :5]
        mask = np.zeros((1, length), bool); mask[0, :5] = True
        out = lm.generate({"token_ids": x, "padding_mask": mask}, stop_token_ids=None)
        np.save("kh_generated.npy", np.asarray(out["token_ids"]))
        print("generated", np.asarray(out["padding_mask"]).sum())
    """, result.path, work / "ids.npy", n, cwd=work)
    assert f"generated {n}" in out
    got = json.loads((work / "kh_text.json").read_text("utf-8"))
    prompt = tok.encode("ROMEO:")
    assert got["prompt"] == prompt and got["packed"][: len(prompt)] == prompt  # no start token
    ours = greedy(model, np.asarray([prompt], "int32"), n - len(prompt))[0].tolist()
    assert got["greedy_ids"] == ours and got["greedy"] == tok.decode(ours)  # to max_length: no stop token
    assert got["sampled"].startswith("ROMEO:") and got["sampled_ids"] == tok.encode(got["sampled"])
    assert tok.decode(got["sampled_ids"]) == got["sampled"]
    logits = np.load(work / "kh_logits.npy")
    assert np.abs(logits - keras_logits(model, ids)).max() < TOL
    generated = np.load(work / "kh_generated.npy")
    np.testing.assert_array_equal(generated, greedy(model, ids[:1, :5], TINY.sequence_length - 5))


def test_an_export_replaces_an_earlier_one_but_never_a_foreign_folder(trained, tmp_path):
    run = trained[1]
    out = tmp_path / "preset"
    export_run(run, "keras-hub", out=out)
    (out / "stale.txt").write_text("from the first export")
    export_run(run, "keras-hub", out=out)
    assert not (out / "stale.txt").exists() and (out / "model.weights.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty and is not an earlier export"):
        export_run(run, "keras-hub", out=foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_sentencepiece_run_ships_its_keras_hub_tokenizer(tmp_path, shakespeare_small):
    """A bpe (SentencePiece) tokenizer goes into the preset as keras-hub's SentencePieceTokenizer:
    plain keras-hub loads it and encodes and decodes exactly like the app."""
    from desktop_llm.core.models.backbones import gpt2_preset as keras_hub_preset
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.tokenizers import train_tokenizer

    text = shakespeare_small.read_text("utf-8")
    tok = train_tokenizer("bpe", [text[:100_000]], 400)
    model = build_model(replace(TINY, vocabulary_size=tok.vocabulary_size), seed=3)
    folder = tmp_path / "preset"
    folder.mkdir()
    info = keras_hub_preset.write(model, tok, folder)
    assert "SentencePieceTokenizer" in info["keras_hub_tokenizer"]
    # No preprocessor: every keras-hub SentencePiece tokenizer would add a start token. Said in one line.
    assert not (folder / "preprocessor.json").exists()
    [note] = info["notes"]
    assert "\n" not in note and "a bpe tokenizer cannot be attached" in note and "train a char run" in note
    sample = text[150_000:151_000] + " 床前明月光, naïve\n"
    (tmp_path / "sample.txt").write_text(sample, encoding="utf-8")
    ids = np.asarray([tok.encode(sample)[: TINY.sequence_length]], dtype="int32")
    np.save(tmp_path / "ids.npy", ids)
    fresh("""
        import json, numpy as np, keras_hub
        folder, sample = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
        tok = keras_hub.tokenizers.Tokenizer.from_preset(folder)
        assert type(tok).__name__ == "SentencePieceTokenizer", type(tok)
        ids = [int(i) for i in np.asarray(tok(sample))]
        text = tok.detokenize(ids)
        text = text if isinstance(text, str) else np.asarray(text).item().decode("utf-8")
        json.dump({"ids": ids, "text": text}, open("tok.json", "w"))
        lm = keras_hub.models.GPT2CausalLM.from_preset(folder)
        assert lm.preprocessor is None
        x = np.load(sys.argv[3])
        np.save("logits.npy", np.asarray(lm({"token_ids": x, "padding_mask": np.ones_like(x)})))
    """, folder, tmp_path / "sample.txt", tmp_path / "ids.npy", cwd=tmp_path)
    got = json.loads((tmp_path / "tok.json").read_text("utf-8"))
    assert got["ids"] == tok.encode(sample)
    assert got["text"] == sample
    assert np.abs(np.load(tmp_path / "logits.npy") - keras_logits(model, ids)).max() < TOL


@pytest.mark.parametrize("kind", ["byte", "wordpiece"])
def test_a_tokenizer_keras_hub_cannot_carry_is_exported_without_a_preprocessor_in_one_line(
        kind, tmp_path, shakespeare_small):
    """keras-hub has no preprocessor tokenizer with a byte or WordPiece run's ids and text: the
    backbone-only preset is written and one note says so, naming the kind that carries one."""
    from desktop_llm.core.models.backbones import gpt2_preset as keras_hub_preset
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.tokenizers import train_tokenizer

    tok = train_tokenizer(kind, [shakespeare_small.read_text("utf-8")[:20_000]], 256 if kind == "byte" else 300)
    model = build_model(replace(TINY, vocabulary_size=tok.vocabulary_size), seed=3)
    info = keras_hub_preset.write(model, tok, tmp_path)
    assert (tmp_path / "model.weights.h5").exists() and not (tmp_path / "preprocessor.json").exists()
    assert json.loads((tmp_path / "task.json").read_text("utf-8"))["config"]["preprocessor"] is None
    assert info["keras_hub_tokenizer"] is None and "GPT2CausalLMPreprocessor" not in info["keras_hub_classes"]
    [note] = info["notes"]
    assert "\n" not in note and f"a {kind} tokenizer cannot be attached" in note and "train a char run" in note


def test_savedmodel_serves_logits_and_generates_like_keras(trained):
    store, run, model, tok, ids, work = trained
    result = export_run(run, "savedmodel", exports_dir=store.exports_dir)
    n = 20  # 5 prompt tokens + 20 > the context of 16: the window slides
    fresh(f"""
        import numpy as np, tensorflow as tf
        m = tf.saved_model.load(sys.argv[1])
        ids = tf.constant(np.load(sys.argv[2]))
        np.save("sm_logits.npy", m.serve(ids).numpy())
        serving = m.signatures["serving_default"](token_ids=ids)
        np.save("sm_serving.npy", next(iter(serving.values())).numpy())
        np.save("sm_greedy.npy", m.generate(ids[:, :5], {n}, 0.0, 0, 0).numpy())
        a, b, c = (m.generate(ids[:, :5], 8, 0.9, 5, seed).numpy() for seed in (7, 7, 8))
        assert (a == b).all() and a.shape == (2, 13) and (a[:, :5] == ids.numpy()[:, :5]).all()
        assert (a >= 0).all() and (a < {tok.vocabulary_size}).all()
    """, result.path, work / "ids.npy", cwd=work)
    reference = keras_logits(model, ids)
    assert np.abs(np.load(work / "sm_logits.npy") - reference).max() < TOL
    assert np.abs(np.load(work / "sm_serving.npy") - reference).max() < TOL
    np.testing.assert_array_equal(np.load(work / "sm_greedy.npy"), greedy(model, ids[:, :5], n))


def test_onnx_forward_pass_matches_in_onnxruntime(trained):
    pytest.importorskip("tf2onnx", reason="ONNX export needs tf2onnx: pip install -e '.[onnx]'")
    pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime: pip install -e '.[onnx]'")
    store, run, model, _, ids, work = trained
    result = export_run(run, "onnx", exports_dir=store.exports_dir)
    assert any("forward pass only" in n for n in result.notes)
    fresh("""
        import numpy as np, onnxruntime
        s = onnxruntime.InferenceSession(sys.argv[1] + "/model.onnx")
        assert [i.name for i in s.get_inputs()] == ["token_ids"] and [o.name for o in s.get_outputs()] == ["logits"]
        ids = np.load(sys.argv[2])
        np.save("onnx_logits.npy", s.run(["logits"], {"token_ids": ids})[0])
        np.save("onnx_short.npy", s.run(["logits"], {"token_ids": ids[:1, :3]})[0])
    """, result.path, work / "ids.npy", cwd=work)
    assert np.abs(np.load(work / "onnx_logits.npy") - keras_logits(model, ids)).max() < TOL
    assert np.abs(np.load(work / "onnx_short.npy") - keras_logits(model, ids[:1, :3])).max() < TOL


def test_litert_forward_pass_matches(trained):
    store, run, model, _, ids, work = trained
    result = export_run(run, "litert", exports_dir=store.exports_dir)
    fresh("""
        import warnings; warnings.simplefilter("ignore")
        import numpy as np
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf
            Interpreter = tf.lite.Interpreter
        ids = np.load(sys.argv[2])
        it = Interpreter(model_path=sys.argv[1] + "/model.tflite")
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        it.resize_tensor_input(inp["index"], ids.shape)
        it.allocate_tensors()
        it.set_tensor(inp["index"], ids)
        it.invoke()
        np.save("litert_logits.npy", it.get_tensor(out["index"]))
    """, result.path, work / "ids.npy", cwd=work)
    assert np.abs(np.load(work / "litert_logits.npy") - keras_logits(model, ids)).max() < TOL


def test_untied_run_is_refused_for_keras_hub_in_one_line(tmp_path):
    """Refused from the config alone, before any checkpoint is needed or anything is written."""
    home = tmp_path / "ws"
    store = RunStore(home)
    run = store.create(_config("corpus.txt", steps=10, name="untied", tie_embeddings=False))
    with pytest.raises(ExportError, match="untied output layer") as e:
        export_run(run, "keras-hub", exports_dir=store.exports_dir)
    assert "\n" not in str(e.value)
    p = cli(home, "export", "untied", "--format", "keras-hub")
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "untied output layer" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not store.exports_dir.exists()


def test_a_run_of_another_family_is_refused_in_one_line(tmp_path):
    """A masked LM or a translator exports as a keras-hub preset only (tests/core/test_classifier.py
    and test_translator.py load one)."""
    store = RunStore(tmp_path / "ws")
    run = store.create(replace(_config("corpus.txt", steps=10), family="masked_lm"))
    for fmt in ("savedmodel", "onnx", "litert"):
        with pytest.raises(ExportError, match="is a masked_lm run: it exports as a keras-hub preset only"):
            export_run(run, fmt, exports_dir=store.exports_dir)
    run = store.create(replace(_config("corpus.txt", steps=10), family="translator"))
    with pytest.raises(ExportError, match="is a translator run: it exports as a keras-hub preset only"):
        export_run(run, "onnx", exports_dir=store.exports_dir)


def test_cli_bad_format_is_one_error_line(tmp_path):
    p = cli(tmp_path, "export", "whatever", "--format", "pickle")
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "keras-hub" in lines[0], p.stderr


def test_cli_exports_a_char_run_with_its_preprocessor(trained, tmp_path):
    store, run, *_ = trained
    out = tmp_path / "cli-preset"
    p = cli(store.home, "export", run.config.name, "--format", "keras-hub", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert f"exported keras-hub to {out}" in p.stdout and "note:" not in p.stdout
    assert (out / "model.weights.h5").exists() and (out / "vocabulary.json").exists()
    assert (out / "preprocessor.json").exists()


def test_a_checkpoint_that_does_not_fit_its_model_is_one_clear_error(trained, tmp_path):
    """A run whose weights no longer fit the model this version builds for it (a translator from
    before keras-hub's BART) is refused in one line, not a Keras traceback."""
    import shutil

    from desktop_llm.core.loading import NoCheckpoint, load_for_inference
    from desktop_llm.store.runs import Run

    _store, run, *_ = trained
    copy = tmp_path / run.folder.name
    shutil.copytree(run.folder, copy)
    other = Run(copy)
    other.save_config(replace(run.config, model=replace(run.config.model, hidden_dim=2 * run.config.model.hidden_dim)))
    with pytest.raises(NoCheckpoint, match=r"do not fit the gpt model its config.json describes .* Train the run again"):
        load_for_inference(Run(copy))
