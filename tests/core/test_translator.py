"""The translator family: sentence pairs from TSV / JSONL, an encoder-decoder trained for real on
the bundled English-Chinese pairs (BLEU and exact match rise), streamed translation, and one-line
refusals of bad pairs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.models.translator.pairs import read_pairs
from desktop_llm.resources import parallel_example


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=900)


def test_pairs_from_tsv_and_jsonl(tmp_path):
    pairs = read_pairs([parallel_example()])
    assert len(pairs) == 5000 and pairs[0] == ("Hi.", "嗨。")  # the attribution column stays in the file
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in (
        {"en": "Hello.", "zh": "你好。", "id": 1}, {"en": "Thanks.", "zh": "谢谢。", "id": 2})), encoding="utf-8")
    assert read_pairs([tmp_path / "p.jsonl"]) == [("Hello.", "你好。"), ("Thanks.", "谢谢。")]
    assert read_pairs([tmp_path / "p.jsonl"], "zh", "en")[0] == ("你好。", "Hello.")
    with pytest.raises(CorpusError, match="no field 'de'"):
        read_pairs([tmp_path / "p.jsonl"], "en", "de")
    # a list or an object is not a sentence (it became "['你', '好']" and was learned as one)
    (tmp_path / "l.jsonl").write_text(json.dumps({"en": "Hello.", "zh": ["你", "好"]}, ensure_ascii=False), "utf-8")
    with pytest.raises(CorpusError, match=r"l.jsonl:1: field 'zh' holds a list, not a sentence"):
        read_pairs([tmp_path / "l.jsonl"])
    (tmp_path / "n.jsonl").write_text(json.dumps({"en": "Two.", "zh": 2}) + "\n" + json.dumps({"en": "Three.", "zh": 3}))
    assert read_pairs([tmp_path / "n.jsonl"]) == [("Two.", "2"), ("Three.", "3")]  # numbers are text


def test_a_line_without_a_tab_is_named(tmp_path):
    (tmp_path / "bad.tsv").write_text("Hi.\t嗨。\nno tab here\nBye.\t再见。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.tsv:2: no tab"):
        read_pairs([tmp_path / "bad.tsv"])
    out = cli(tmp_path / "h", "train", tmp_path / "bad.tsv", "--family", "translator", "--preset", "tiny")
    assert out.returncode == 2 and out.stderr.startswith("error:") and "bad.tsv:2" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    runs = tmp_path / "h" / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run was made


def test_a_translator_learns_the_bundled_pairs(tmp_path):
    from desktop_llm.core import events as ev

    pairs = tmp_path / "pairs.tsv"  # the 1,000 shortest pairs: a few minutes of learning on a CPU
    pairs.write_text("".join(parallel_example().read_text("utf-8").splitlines(keepends=True)[:1000]), "utf-8")
    home = tmp_path / "h"
    out = cli(home, "train", pairs, "--family", "translator", "--preset", "tiny", "--context", "16",
              "--steps", "400", "--eval-interval", "200", "--lr", "3e-3", "--batch-size", "32", "--json")
    assert out.returncode == 0, out.stderr
    events = [ev.parse(json.loads(line)) for line in out.stdout.splitlines() if line.startswith("{")]
    data = next(e for e in events if isinstance(e, ev.Data))
    # the split's 100, less the validation pairs that repeat training ones (left out: issue 25)
    assert data.leaked and data.examples + data.leaked == 1000 and data.val_examples + data.leaked == 100
    evals = [e for e in events if isinstance(e, ev.Eval)]
    assert all(not e.extra for e in evals)  # BLEU and exact match are named fields of the event
    first, last = evals[0], evals[-1]
    assert last.val_bleu > first.val_bleu + 3, [e.val_bleu for e in evals]
    assert last.val_exact_match > first.val_exact_match, [e.val_exact_match for e in evals]
    assert "→" in last.sample and "reference" in last.sample

    out = cli(home, "translate", "--text", "I quit.", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[-1]["type"] == "done" and lines[-1]["translation"]
    assert "".join(x["text"] for x in lines[:-1]) == lines[-1]["translation"] and not lines[-1]["cut"]
    long = "I quit because the weather was far too cold for me."  # 51 characters, a context of 16
    out = cli(home, "translate", "--text", long)  # was translated from its first 16 tokens without a word
    assert out.returncode == 0 and "note: The text is 51 tokens long and this model reads 16" in out.stderr
    out = cli(home, "translate", "--text", long, "--json")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["type"] == "warning" and "a sentence at a time" in lines[0]["message"] and lines[-1]["cut"]
    out = cli(home, "generate", "--prompt", "x")
    assert out.returncode == 2 and "translate" in out.stderr

    # cross-attention: each token of the model's translation over the source's tokens
    out = cli(home, "attention", "--text", "I quit.", "--kind", "cross", "--json")
    assert out.returncode == 0, out.stderr
    maps = json.loads(out.stdout)
    w = np.array(maps["weights"])
    assert maps["kind"] == "cross" and maps["key_tokens"] == list("I quit.") and maps["tokens"][0] == "[BOS]"
    assert w.shape == (2, 2, len(maps["tokens"]), len("I quit."))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-4)
    out = cli(home, "attention", "--text", "I quit.", "--kind", "decoder", "--json")
    w = np.array(json.loads(out.stdout)["weights"])
    assert (w[..., np.triu_indices(w.shape[-1], 1)[0], np.triu_indices(w.shape[-1], 1)[1]] == 0).all()

    # a keras-hub preset that keras-hub's own BartSeq2SeqLM loads, giving the app's logits
    out = cli(home, "export", "--format", "keras-hub", "--out", tmp_path / "preset")
    assert out.returncode == 0, out.stderr
    _preset_gives_the_runs_logits(home, tmp_path / "preset")
    _maps_equal_keras_own_attention(home)


def _preset_gives_the_runs_logits(home, folder):
    import keras_hub

    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store import RunStore

    theirs = keras_hub.models.BartSeq2SeqLM.from_preset(str(folder))
    specials = json.loads((folder / "specials.json").read_text())
    store = RunStore(home)
    ours, tok, _ = load_for_inference(store.latest())
    T = ours.backbone.max_sequence_length
    src, tgt = tok.encode("I quit."), [specials["[BOS]"], *tok.encode("我")]
    x = {"encoder_token_ids": np.zeros((1, T), "int32"), "encoder_padding_mask": np.zeros((1, T), "int32"),
         "decoder_token_ids": np.zeros((1, T), "int32"), "decoder_padding_mask": np.zeros((1, T), "int32")}
    x["encoder_token_ids"][0, :len(src)], x["encoder_padding_mask"][0, :len(src)] = src, 1
    x["decoder_token_ids"][0, :len(tgt)], x["decoder_padding_mask"][0, :len(tgt)] = tgt, 1
    np.testing.assert_allclose(np.asarray(theirs(x)), np.asarray(ours(x)), atol=1e-5)


def _maps_equal_keras_own_attention(home):
    """The encoder, decoder and cross maps, computed by our code from the weights, equal what
    Keras' attention layers return (keras-hub's private sublayers: in this test only)."""
    from desktop_llm.core.inspection import probe, to_numpy
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store import RunStore

    model, tok, _ = load_for_inference(RunStore(home).latest())
    bb = model.backbone
    from desktop_llm.core.models import get_family

    translator = get_family("translator")
    maps = {k: translator.attention_maps(model, tok, "I quit.", k) for k in ("encoder", "decoder", "cross")}
    src, tgt = maps["encoder"].token_ids, maps["cross"].token_ids
    T = bb.max_sequence_length
    x = {k: np.zeros((1, T), "int32") for k in ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
                                                 "decoder_padding_mask")}
    x["encoder_token_ids"][0, :len(src)], x["encoder_padding_mask"][0, :len(src)] = src, 1
    x["decoder_token_ids"][0, :len(tgt)], x["decoder_padding_mask"][0, :len(tgt)] = tgt, 1
    e0, d0, enc_out = to_numpy(probe(bb, [], ["encoder_embeddings_dropout", "decoder_embeddings_dropout",
                                             bb.encoder_transformer_layers[-1].name])(x))
    e0, enc_out, d0 = e0[:, :len(src)], enc_out[:, :len(src)], d0[:, :len(tgt)]
    enc, dec = bb.encoder_transformer_layers[0], bb.decoder_transformer_layers[0]
    _, scores = enc._self_attention_layer(query=e0, value=e0, return_attention_scores=True)
    np.testing.assert_allclose(maps["encoder"].weights[0], np.asarray(scores[0]), atol=1e-5)
    causal = np.tril(np.ones((1, len(tgt), len(tgt)), bool))
    out, scores = dec._self_attention_layer(query=d0, value=d0, attention_mask=causal, return_attention_scores=True)
    np.testing.assert_allclose(maps["decoder"].weights[0], np.asarray(scores[0]), atol=1e-5)
    y = dec._self_attention_layer_norm(d0 + out)  # BART's blocks normalise after the residual
    _, scores = dec._cross_attention_layer(query=y, value=enc_out, return_attention_scores=True)
    np.testing.assert_allclose(maps["cross"].weights[0], np.asarray(scores[0]), atol=1e-5)


def test_separate_tokenizers_share_one_id_space(tmp_path):
    """Source and target each get their own vocabulary; the target's ids follow the source's, so
    one embedding table holds both, and the pair saves, loads and decodes either side."""
    from desktop_llm.core.models.translator.tokenizer import PairTokenizer, target_encoder, target_ids
    from desktop_llm.core.tokenizers import load_tokenizer

    pairs = read_pairs([parallel_example()])[:500]
    tok = PairTokenizer.train(pairs, "wordpiece", 300)
    assert tok.source.vocabulary_size <= 300 and tok.offset == tok.source.vocabulary_size
    tok.save(tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert isinstance(again, PairTokenizer) and again.vocabulary_size == tok.vocabulary_size
    src, tgt = again.encode("I quit."), target_encoder(again)("我不干了。")
    assert max(src) < again.offset <= min(tgt) and next(iter(target_ids(again))) == again.offset
    assert again.decode(tgt).replace(" ", "") == "我不干了。" and again.decode(src).lower() == "i quit."
    assert again.token_text(tgt[0]) == tok.target.token_text(tgt[0] - tok.offset)
    out = cli(tmp_path / "h", "train", parallel_example(), "--separate-tokenizers")
    assert out.returncode == 2 and "--family translator" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_pairs_cut_by_the_context_say_what_to_do(tmp_path):
    """The warning said what ("their ends were cut") but not what to do about it."""
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig
    from desktop_llm.core.models import get_family
    from desktop_llm.core.tokenizers import train_tokenizer
    from desktop_llm.store import RunStore

    pairs = tmp_path / "long.tsv"
    pairs.write_text("".join(f"a rather long source sentence number {i}\t目标句子很长很长很长 {i}\n" for i in range(20)),
                     "utf-8")
    cfg = RunConfig(name="t", family="translator", data=DataConfig(paths=(str(pairs),)),
                    tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=8))
    run = RunStore(tmp_path / "ws").create(cfg)
    tok = train_tokenizer("char", [pairs.read_text("utf-8")])
    events = []
    get_family("translator").prepare_data(run, cfg, tok, events.append)
    warning = next(e["message"] for e in events if e["type"] == "warning")
    assert "ends were cut" in warning and "--context" in warning and "tatoeba-cmn-eng-5k.tsv" in warning
