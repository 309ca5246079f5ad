"""The classifier family: labelled data in three layouts, a stratified split, a frozen-then-thawed
fine-tune from a masked-LM run and from a GPT run, and the report and classify tools."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.models.classifier.examples import grouped_split, read_examples, stratified_split
from desktop_llm.core.models.classifier.report import scores
from desktop_llm.resources import labelled_example


def cli(home, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=timeout)


def test_three_layouts_and_their_labels(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nhello there,greet\nbye now,leave\nhi,greet\nfarewell,leave\n")
    assert [(e.text, e.label) for e in read_examples([tmp_path / "a.csv"])][:2] == [("hello there", "greet"),
                                                                                  ("bye now", "leave")]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps({"review": t, "stars": s}) for t, s in
                                                (("good", "5"), ("bad", "1"), ("fine", "5"), ("awful", "1"))))
    ex = read_examples([tmp_path / "b.jsonl"], text_column="review", label_column="stars")
    assert {e.label for e in ex} == {"1", "5"} and ex[0].text == "good"
    for cls in ("pos", "neg"):  # a folder of folders: the folder names the class, a file an example
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "f" / cls / f"{i}.txt").write_text(f"{cls} text {i}\n\nstill the same file")
    ex = read_examples([tmp_path / "f"])
    assert len(ex) == 6 and {e.label for e in ex} == {"pos", "neg"} and "still the same file" in ex[0].text
    # text files, one per class: a blank-line separated block is an example
    ex = read_examples([labelled_example()])
    counts = {c: sum(e.label == c for e in ex) for c in ("poem", "prose", "drama")}
    assert counts["poem"] == 320 and counts["prose"] == 222 and counts["drama"] > 1000


@pytest.mark.parametrize("content, args, message", [
    ("text,topic\na,x\nb,y\n", {}, "no label column"),
    ("text,label\na,x\nb,x\n", {}, "Only one class"),
    ("text,label\na,x\nb,x\nc,y\n", {}, "Class 'y' has 1 example"),
    ("text,label\na,x\n", {"label_column": "stars"}, "no label column 'stars'"),
])
def test_bad_labelled_data_is_one_clear_message(tmp_path, content, args, message):
    (tmp_path / "d.csv").write_text(content)
    with pytest.raises(CorpusError, match=message):
        read_examples([tmp_path / "d.csv"], **args)


def test_one_plain_text_file_is_refused_with_the_layouts_that_work(tmp_path):
    (tmp_path / "only.txt").write_text("one\n\ntwo\n")
    with pytest.raises(CorpusError, match="one plain text file"):
        read_examples([tmp_path / "only.txt"])


def test_stratified_split_keeps_every_class_in_both_parts():
    labels = np.array([0] * 100 + [1] * 10 + [2] * 2)
    is_val = stratified_split(labels, 0.1, seed=3)
    assert [int(is_val[labels == c].sum()) for c in range(3)] == [10, 1, 1]
    assert all((~is_val[labels == c]).any() for c in range(3))
    assert (stratified_split(labels, 0.1, seed=3) == is_val).all()  # the same split every time


def test_a_grouped_split_holds_out_whole_documents_and_keeps_one_of_each_class_to_train_on():
    """Paragraphs of one article on both sides let validation read the article's names: with a
    group column, validation holds out whole groups."""
    labels = np.array([0] * 40 + [1] * 12 + [2] * 5 + [0, 1])
    groups = np.array([f"a{i // 4}" for i in range(40)] + [f"b{i // 3}" for i in range(12)] + ["c"] * 5
                      + ["mixed", "mixed"])  # class 2 is one document; "mixed" holds classes 0 and 1
    for seed in range(20):
        is_val = grouped_split(labels, groups, 0.2, seed)
        for g in set(groups):  # no document on both sides
            assert len(set(is_val[groups == g])) == 1, (seed, g)
        for c in (0, 1):  # about a fifth of each class held out, and some of it left to train on
            assert 0.2 * (labels == c).sum() <= is_val[labels == c].sum() < (labels == c).sum() / 2
        assert not is_val[labels == 2].any()  # a class of one document is only trained on
        assert (grouped_split(labels, groups, 0.2, seed) == is_val).all()  # the same split every time
    # a document of two classes is never held out where it is one class's last to train on
    labels, groups = np.array([0, 0, 1, 1, 1]), np.array(["x", "y", "y", "z", "z"])
    for seed in range(20):
        is_val = grouped_split(labels, groups, 0.5, seed)
        assert all((~is_val[labels == c]).any() for c in (0, 1))


def test_a_group_column_is_read_and_its_mistakes_are_one_clear_message(tmp_path):
    (tmp_path / "d.csv").write_text("text,label,doc\na,x,d1\nb,x,d1\nc,y,\nd,y,d2\n")
    ex = read_examples([tmp_path / "d.csv"], group_column="doc")
    assert [e.group for e in ex][:2] == ["d1", "d1"] and ex[2].group not in ("d1", "d2", "")  # its own group
    assert read_examples([tmp_path / "d.csv"])[0].group is None
    with pytest.raises(CorpusError, match="no group column 'book'"):
        read_examples([tmp_path / "d.csv"], group_column="book")
    with pytest.raises(CorpusError, match="CSV / TSV / JSONL files only"):
        read_examples([labelled_example()], group_column="doc")


def test_corpus_stats_reads_labelled_files_with_the_label_and_group_columns_a_run_would_use(tmp_path):
    """`corpus stats` (and the Data page, through the same `describe_data`) read the classes by the
    label column's name only and split text by text, whatever columns the run would be given."""
    rows = [(f"line {i} of book {i // 4}", "poem" if i < 24 else "prose", f"b{i // 4}") for i in range(40)]
    (tmp_path / "shelf.csv").write_text("text,kind,book\n" + "".join(f"{t},{k},{b}\n" for t, k, b in rows))
    stats = ["corpus", "stats", str(tmp_path / "shelf.csv")]
    assert "labelled texts" not in cli(tmp_path, *stats).stdout  # no column named label, class...
    out = cli(tmp_path, *stats, "--label-column", "kind", "--group-column", "book").stdout
    line = next(x for x in out.splitlines() if x.startswith("as classifier data:"))
    held = re.search(r"train / validation (\d+) / (\d+) texts, (\d+) of 10 'book' groups held out whole", line)
    assert "40 labelled texts in 2 classes (poem 24 · prose 16)" in line and held, line
    assert int(held[2]) == 4 * int(held[3])  # whole books of four lines each
    out = cli(tmp_path, *stats, "--label-column", "genre").stdout  # a mistake is said, not a blank
    assert "cannot read these files as labelled texts" in out and "no label column 'genre' (columns: text, kind, book)" in out


def test_scores_match_a_hand_computed_confusion_matrix():
    s = scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3)
    assert s["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # precision 1, .5, .5; recall 2/3, .5, 1 -> f1 .8, .5, 2/3
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert [c["support"] for c in s["per_class"]] == [3, 2, 1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A masked-LM run on the bundled corpora, and a classifier fine-tuned from it."""
    home = tmp_path_factory.mktemp("home")
    task = labelled_example()
    out = cli(home, "train", task, "--family", "masked_lm", "--preset", "tiny",
              "--steps", "40", "--eval-interval", "20", "--log-interval", "10", "--name", "base", "--sample-tokens", "0")
    assert out.returncode == 0, out.stderr
    out = cli(home, "train", task, "--family", "classifier", "--base", "base", "--freeze-steps", "20",
              "--steps", "120", "--eval-interval", "60", "--lr", "1e-3",
              "--name", "genre", "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return home, events


def test_a_fine_tuned_classifier_tells_poem_prose_and_drama_apart(trained):
    _home, events = trained
    evals = [e for e in events if e["type"] == "eval"]
    assert evals[-1]["val_accuracy"] > 0.9, [e["val_accuracy"] for e in evals]
    assert evals[-1]["classes"] == ["drama", "poem", "prose"]
    confusion = np.array(evals[-1]["confusion"])
    data = next(e for e in events if e["type"] == "data")
    assert confusion.shape == (3, 3) and confusion.sum() == data["val_examples"]
    assert data["counts"]["poem"] == 320 and data["cut"] > 0  # the prose pieces outgrow the context
    assert 0 < evals[-1]["val_macro_f1"] <= 1
    phases = [e["phase"] for e in events if e["type"] == "phase"]
    assert phases.index("frozen") < phases.index("thawed")


def test_the_encoder_does_not_change_while_frozen(trained):
    """At the end of the frozen phase (step 20) the encoder is the base run's, exactly; after the
    thaw it is fine-tuned too. A short run keeps both checkpoints (the newest two are kept)."""
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store.runs import RunStore

    home, _ = trained
    out = cli(home, "train", labelled_example(), "--family", "classifier", "--base", "base", "--freeze-steps",
              "20", "--steps", "40", "--eval-interval", "20", "--log-interval", "10", "--name", "frozen")
    assert out.returncode == 0, out.stderr
    store = RunStore(home)
    base_model, _, _ = load_for_inference(store.resolve("base"))
    base = base_model.backbone.get_weights()
    run = store.resolve("frozen")
    model, _, _ = load_for_inference(run, "latest")
    manager = CheckpointManager(run.checkpoints_dir)
    by_step = {manager.verify(p)["step"]: p for p in manager.candidates("latest") if p.exists()}
    assert {20, 40} <= set(by_step)
    model.load_weights(str(by_step[20] / "model.weights.h5"))
    assert all(np.array_equal(a, b) for a, b in zip(base, model.backbone.get_weights()))
    head_init = model.output_dense.kernel.numpy().copy()
    model.load_weights(str(by_step[40] / "model.weights.h5"))
    assert any(not np.array_equal(a, b) for a, b in zip(base, model.backbone.get_weights()))
    assert not np.array_equal(head_init, model.output_dense.kernel.numpy())


def test_classify_and_report_from_the_command_line(trained):
    home, _ = trained
    out = cli(home, "classify", "genre", "--text", "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
              "--text", "ROMEO:\nBut, soft! what light through yonder window breaks?", "--report", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert [r["label"] for r in res["results"]] == ["poem", "drama"]
    for r in res["results"]:
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-6)
    rep = res["report"]
    assert rep["accuracy"] > 0.9 and len(rep["per_class"]) == 3
    assert all({"text", "true", "predicted", "p"} <= set(m) for m in rep["misclassified"])
    human = cli(home, "classify", "genre", "--report")
    assert human.returncode == 0 and "macro-F1" in human.stdout and "precision" in human.stdout


def test_a_held_out_file_is_scored_beside_the_baselines_fitted_on_the_training_split(trained, tmp_path):
    """`classify --data FILE`: a labelled file scored as the validation split is, with the majority
    class and naive Bayes beside it. Given the validation texts themselves, every figure equals the
    run's own (its report, its baselines event); texts that repeat training texts are left out and
    counted; a label the run never saw is one line."""
    import csv

    from desktop_llm.store.runs import RunStore

    home, events = trained
    run = RunStore(home).resolve("genre")
    val = set(json.loads((run.data_dir / "val_texts.json").read_text("utf-8")))
    examples = read_examples([labelled_example()])
    held = [e for e in examples if e.text in val]
    seen = sorted((e for e in examples if e.text not in val), key=lambda e: len(e.text))[:2]  # training texts
    test = tmp_path / "test.csv"
    with test.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((e.text, e.label) for e in held + seen)
    out = cli(home, "classify", "genre", "--data", test, "--json")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)["report"]
    own = json.loads(cli(home, "classify", "genre", "--report", "--json").stdout)["report"]
    assert rep["texts"] == len(held) and rep["repeats_left_out"] == 2
    assert (rep["accuracy"], rep["macro_f1"]) == pytest.approx((own["accuracy"], own["macro_f1"]))
    baselines = next(e for e in events if e["type"] == "baselines")["figures"]
    for name in ("majority class", "naive Bayes"):
        for figure in ("accuracy", "macro_f1", "loss"):
            assert rep["baselines"][name][figure] == pytest.approx(baselines[name][figure]), (name, figure)
    human = cli(home, "classify", "genre", "--data", test)
    assert human.returncode == 0 and "naive Bayes: accuracy" in human.stdout and "left out: 2 texts that repeat training texts" in human.stdout
    # the encoder's sentence vectors on the same held-out texts, grouped by their labels, beside TF-IDF
    emb = json.loads(cli(home, "embed", "genre", "--data", test, "--json").stdout)
    assert emb["held_out"] and emb["sentences"] == len(held) + 2
    shares = np.array([sum(e.label == c for e in held + seen) for c in ("drama", "poem", "prose")]) / emb["sentences"]
    assert emb["by_chance"] == pytest.approx(float((shares ** 2).sum()))
    assert 0 <= emb["nearest_same_source"] <= 1 and 0 <= emb["tfidf_same_source"] <= 1
    test.write_text("text,label\nsome words,limerick\n", "utf-8")  # one text of one class: a test set may
    out = cli(home, "classify", "genre", "--data", test)
    assert out.returncode == 2 and "'limerick' is not one of the run's classes" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_exported_classifier_classifies_after_import_elsewhere(trained, tmp_path):
    """Its classes and labelled split live in data/, which the export once left out whole: the
    imported run then failed with a traceback (no classes.json)."""
    home, _ = trained
    zip_path = tmp_path / "genre.zip"
    assert cli(home, "runs", "export", "genre", "--out", zip_path).returncode == 0
    names = zipfile.ZipFile(zip_path).namelist()
    assert any(n.endswith("/data/classes.json") for n in names)
    assert not any(n.endswith(("/data/train.bin", "/data/val.bin")) for n in names)  # the base's caches stay
    other = tmp_path / "elsewhere"
    assert cli(other, "runs", "import", zip_path).returncode == 0
    out = cli(other, "classify", "genre", "--text", "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "--report",
              "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["results"][0]["label"] == "poem" and res["report"]["accuracy"] > 0.9


def test_classifier_mistakes_are_one_line(trained, tmp_path):
    home, _ = trained
    (tmp_path / "one.txt").write_text("just one class\n\nof text\n")
    out = cli(home, "train", tmp_path / "one.txt", "--family", "classifier", "--preset", "tiny")
    assert out.returncode == 2 and out.stderr.startswith("error:") and "one plain text file" in out.stderr
    out = cli(home, "train", labelled_example(), "--family", "classifier", "--base", "genre")
    assert out.returncode == 2 and "fine-tune a classifier from a masked_lm or gpt run" in out.stderr
    out = cli(home, "train", labelled_example(), "--family", "classifier", "--base", "base", "--tokenizer-kind", "byte")
    assert out.returncode == 2 and "base run's tokenizer" in out.stderr
    out = cli(home, "generate", "genre")
    assert out.returncode == 2 and "classify" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_run_with_a_group_column_validates_on_documents_it_never_trained_on(tmp_path):
    """`--group-column doc`: the run's validation split holds out whole documents, the data event
    and the card say so, a class of one document is trained on and said never to be validated,
    and data that can hold out no document is refused in one line before a run exists."""
    import csv

    rng = np.random.default_rng(0)
    words = {c: [f"{c}{w}" for w in "abcdefgh"] for c in ("sun", "rain", "snow")}
    rows = [(" ".join(rng.choice(words[c], 6)), c, f"{c}-doc{d}") for c in ("sun", "rain") for d in range(5)
            for _ in range(4)] + [(" ".join(rng.choice(words["snow"], 6)), "snow", "snow-doc") for _ in range(6)]
    data = tmp_path / "weather.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label", "doc"), *rows])
    home = tmp_path / "home"
    out = cli(home, "train", data, "--family", "classifier", "--group-column", "doc", "--val-fraction", "0.2",
              "--preset", "tiny", "--steps", "4", "--eval-interval", "4", "--sample-tokens", "0", "--name", "w",
              "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    d = next(e for e in events if e["type"] == "data")
    assert d["groups"] == 11 and d["val_groups"] == 2  # one document of sun's five and of rain's
    assert any("snow" in e.get("message", "") and "never validated" in e["message"] for e in events
               if e["type"] == "warning")
    run = next(home.glob("runs/*/data")).parent
    val = set(json.loads((run / "data" / "val_texts.json").read_text("utf-8")))
    assert len(val) == d["val_examples"] == 8
    held = {doc for text, _, doc in rows if text in val}
    assert len(held) == 2 and not {doc for text, _, doc in rows if text not in val} & held
    shown = cli(home, "runs", "show", "w")
    assert "validation holds out whole 'doc' groups" in shown.stdout, shown.stdout
    one = tmp_path / "one-doc-each.csv"
    one.write_text("text,label,doc\nsun sun,sun,a\nsun up,sun,a\nrain now,rain,b\nrain on,rain,b\n", "utf-8")
    out = cli(home, "train", one, "--family", "classifier", "--group-column", "doc", "--preset", "tiny")
    assert out.returncode == 2 and "no whole group can be held out" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_classifier_on_a_gpt_reads_the_last_real_token(tmp_path):
    home = tmp_path / "home"
    task = labelled_example()
    # the base reads the task's own text (one file of it left most of the others unknown to its tokenizer)
    out = cli(home, "train", task, "--preset", "tiny", "--steps", "20", "--eval-interval", "20",
              "--sample-tokens", "0", "--name", "gpt")
    assert out.returncode == 0, out.stderr
    out = cli(home, "train", task, "--family", "classifier", "--base", "gpt", "--steps", "100", "--lr", "1e-3",
              "--eval-interval", "50", "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    evals = [e for e in events if e["type"] == "eval"]
    assert evals[-1]["val_accuracy"] > 0.9, [e["val_accuracy"] for e in evals]
    # model.keras is written (it once failed: Keras could not serialise the subclassed head) and
    # loads in a fresh process to the same logits as the checkpoint
    assert not [e for e in events if e["type"] == "warning" and "model.keras" in e["message"]], events
    exported = next(e for e in events if e["type"] == "exported")
    check = (
        "import sys, numpy as np, keras\n"
        "import desktop_llm.core.models.classifier.gpt_head  # registers the class, as for any custom model\n"
        "from desktop_llm.core.loading import load_for_inference\n"
        "from desktop_llm.store.runs import RunStore\n"
        "m = keras.saving.load_model(sys.argv[2])\n"
        "ref, _, _ = load_for_inference(RunStore(sys.argv[1]).latest(), 'best')\n"
        "x = {'token_ids': np.ones((2, 8), 'int32'), 'padding_mask': np.ones((2, 8), bool)}\n"
        "print(float(np.abs(np.asarray(m(x)) - np.asarray(ref(x))).max()))\n")
    p = subprocess.run([sys.executable, "-c", check, str(home), exported["path"]], capture_output=True, text=True,
                       timeout=600, check=False)
    assert p.returncode == 0 and float(p.stdout.split()[-1]) < 1e-5, p.stderr[-2000:]
    att = cli(home, "attention", "--text", "床前明月光", "--json")  # the decoder's causal maps, as for the GPT
    assert att.returncode == 0, att.stderr
    maps = json.loads(att.stdout)
    assert maps["kind"] == "causal" and len(maps["tokens"]) == 5, maps.keys()
    import shutil

    from desktop_llm.store.runs import RunStore

    shutil.rmtree(RunStore(home).resolve("gpt").folder)  # a trained classifier needs its base no more
    out = cli(home, "classify", "--text", "床前明月光，疑是地上霜。")
    assert out.returncode == 0 and out.stdout.startswith("poem"), out.stderr


def test_encoder_runs_export_as_keras_hub_presets_that_plain_keras_hub_loads(trained, tmp_path):
    """The masked LM as BertMaskedLM, a [CLS] classifier as BertTextClassifier, a mean-pooled one
    (the default) as BertBackbone + head.npz: loaded by keras-hub's own from_preset in a Python
    where desktop_llm cannot be imported, equal to the engine's output."""
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.core.models.classifier.examples import LabelledData, encode
    from desktop_llm.store.runs import RunStore
    from tests.core.test_export import fresh

    home, _ = trained
    out = cli(home, "train", labelled_example(), "--family", "classifier", "--base", "base", "--pooling", "cls",
              "--steps", "10", "--eval-interval", "10", "--log-interval", "5", "--name", "genre-cls")
    assert out.returncode == 0, out.stderr
    store = RunStore(home)
    ours, code = {}, ["import json, sys, numpy as np, keras_hub", "out = {}"]
    for ref, task in (("base", "BertMaskedLM"), ("genre-cls", "BertTextClassifier"), ("genre", "mean")):
        out = cli(home, "export", ref, "--format", "keras-hub", "--out", tmp_path / ref)
        assert out.returncode == 0, out.stderr
        specials = json.loads((tmp_path / ref / "specials.json").read_text())
        run = store.resolve(ref)
        model, tok, _ = load_for_inference(run)
        ids, mask, _ = encode(tok, ["床前明月光，疑是地上霜。"], run.config.model.sequence_length)
        x = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}
        if task == "BertMaskedLM":
            ids[0, 3] = specials["[MASK]"]
            x["mask_positions"] = np.array([[3]], np.int32)
        else:
            assert specials["classes"] == LabelledData(run.data_dir).classes
        np.savez(tmp_path / f"{ref}.npz", **x)
        ours[ref] = np.asarray(model.predict(x, verbose=0))
        code += [f"x = dict(np.load(sys.argv[1] + '/{ref}.npz'))", "x['padding_mask'] = x['padding_mask'].astype(bool)"]
        if task == "mean":  # the usage lines of export.json, in plain keras-hub and NumPy
            code += [f"m = keras_hub.models.Backbone.from_preset(sys.argv[1] + '/{ref}')",
                     f"head = np.load(sys.argv[1] + '/{ref}/head.npz')",
                     "h = np.asarray(m.predict(x, verbose=0)['sequence_output'])",
                     "w = x['padding_mask'][:, :, None].astype('float32')",
                     f"out['{ref}'] = ((h * w).sum(1) / w.sum(1) @ head['kernel'] + head['bias']).tolist()"]
        else:
            code += [f"m = keras_hub.models.{task}.from_preset(sys.argv[1] + '/{ref}')",
                     f"out['{ref}'] = np.asarray(m.predict(x, verbose=0)).tolist()"]
    theirs = json.loads(fresh("\n".join([*code, "print(json.dumps(out))"]), tmp_path, cwd=tmp_path).splitlines()[-1])
    for ref, logits in ours.items():  # one Python for the three: keras-hub imports once
        np.testing.assert_allclose(np.array(theirs[ref]), logits, atol=1e-4)
    assert "head.npz" in json.loads((tmp_path / "genre" / "export.json").read_text())["usage"][0]
    out = cli(home, "export", "base", "--format", "onnx")
    assert out.returncode == 2 and "keras-hub preset only" in out.stderr


def test_integer_labels_in_jsonl_are_read_and_a_list_label_is_refused(tmp_path):
    """{"text": ..., "label": 0} is the most common labelled format: it was refused as "no label
    column" (only text-valued keys were columns); a list as a label used to become its Python text."""
    import json

    from desktop_llm.core.corpus import CorpusError
    from desktop_llm.core.models.classifier.examples import read_examples

    good = tmp_path / "reviews.jsonl"
    good.write_text("".join(json.dumps({"text": f"review number {i}", "label": i % 2}) + "\n" for i in range(6)),
                    "utf-8")
    examples = read_examples([str(good)])
    assert sorted({e.label for e in examples}) == ["0", "1"] and len(examples) == 6
    bad = tmp_path / "tags.jsonl"
    bad.write_text("".join(json.dumps({"text": f"post {i}", "label": ["a", "b"]}) + "\n" for i in range(4)), "utf-8")
    with pytest.raises(CorpusError, match="label of a record is a list or an object") as e:
        read_examples([str(bad)])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("n_classes", [3, 60])
def test_the_evaluation_event_carries_the_confusion_matrix_only_for_few_classes(tmp_path, n_classes):
    """A 5,000-class classifier wrote its whole confusion matrix into metrics.jsonl at every
    evaluation (75 MB a line): past CONFUSION_IN_EVENTS classes the event has macro-F1 and the
    classes, and `classify --report` the matrix."""
    from types import SimpleNamespace

    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models import get_family
    from desktop_llm.core.models.classifier import CONFUSION_IN_EVENTS
    from desktop_llm.core.models.classifier.examples import Example, LabelledData
    from desktop_llm.core.tokenizers import train_tokenizer

    examples = [Example(f"text {c} {i}", f"class{c}", "x") for c in range(n_classes) for i in range(2)]
    tok = train_tokenizer("char", [e.text for e in examples])
    LabelledData.prepare(examples, tok, 16, tmp_path / "data", 0.5, 1)
    family = get_family("classifier")
    m = ModelConfig(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=16,
                    vocabulary_size=family.model_vocabulary(tok.vocabulary_size))
    model = family.build(m, seed=1, num_classes=n_classes)
    extras = family.eval_extras(SimpleNamespace(model=model, data=LabelledData(tmp_path / "data")))
    assert len(extras["classes"]) == n_classes and 0 <= extras["val_macro_f1"] <= 1
    assert ("confusion" in extras) == (n_classes <= CONFUSION_IN_EVENTS)


def test_a_base_that_cannot_read_the_text_is_refused_unless_accepted(trained, tmp_path):
    """A classifier fine-tuned from a base whose tokenizer knows none of the text's characters
    learned word lengths from the spaces and reported a high accuracy, silently. Now the share of
    unknown text is measured before a run exists: refused in one line above a quarter of it."""
    from desktop_llm.cli import build_parser
    from desktop_llm.cli.train import run_config
    from desktop_llm.core.config import ConfigError
    from desktop_llm.core.models import get_family

    home, _ = trained
    texts = tmp_path / "russian.csv"
    texts.write_text("text,label\n" + "".join(f"Привет как дела номер {i},{i % 2}\n" for i in range(8)), "utf-8")
    out = cli(home, "train", str(texts), "--family", "classifier", "--base", "base", "--steps", "20")
    assert out.returncode == 2 and "unknown to the base run's tokenizer" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    fine_tune = ["--home", str(home), "train", str(texts), "--family", "classifier", "--base", "base"]
    cfg = run_config(build_parser().parse_args(fine_tune))
    classifier = get_family("classifier")
    assert classifier.unknown_to_base(cfg) > 0.5  # the letters; the spaces, digits and commas are known
    with pytest.raises(ConfigError, match="--accept-unknown"):
        classifier.check_data(cfg)
    classifier.check_data(run_config(build_parser().parse_args([*fine_tune, "--accept-unknown"])))  # goes on


def test_pooling_is_the_mean_for_new_runs_and_cls_for_runs_made_before_the_choice():
    from desktop_llm.core.config import ConfigError, DataConfig, RunConfig

    assert RunConfig().pooling == "mean"
    old = RunConfig(family="classifier").to_dict()
    del old["pooling"]  # a config.json written before the choice existed: keras-hub's [CLS] head
    assert RunConfig.from_dict(old).pooling == "cls"
    with pytest.raises(ConfigError, match="Pooling is one of mean, cls"):
        RunConfig(data=DataConfig(paths=("x.txt",)), pooling="max").validate()
