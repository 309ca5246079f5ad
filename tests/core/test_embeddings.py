"""Sentence embeddings of an encoder run: keras-hub's BertTextEmbedder on the run's encoder, a
search by cosine similarity, the projector's TSV files, and what they show."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from desktop_llm.resources import labelled_example


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    out = cli(home, "train", labelled_example(), "--family", "masked_lm", "--preset", "tiny", "--steps", "60",
              "--eval-interval", "30", "--sample-tokens", "0", "--name", "encoder")
    assert out.returncode == 0, out.stderr
    return home


def test_nearest_neighbours_share_their_source_more_often_than_chance(home, tmp_path):
    out = cli(home, "embed", "encoder", "--projector", tmp_path / "proj", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["nearest_same_source"] > res["by_chance"] + 0.2, res
    assert 0 <= res["tfidf_same_source"] <= 1  # the baseline beside it (its arithmetic: test_baselines.py)
    text = cli(home, "embed", "encoder", "--projector", tmp_path / "proj2").stdout
    assert "TF-IDF character n-grams" in text
    with open(tmp_path / "proj" / "metadata.tsv", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    vectors = np.loadtxt(tmp_path / "proj" / "vectors.tsv", delimiter="\t")
    assert rows[0] == ["text", "source"] and len(rows) - 1 == len(vectors) == res["sentences"]
    assert vectors.shape[1] == 64  # the tiny preset's width
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert {r[1] for r in rows[1:]} == {"poem.txt", "prose.txt", "drama.txt"}


def test_similar_finds_a_sentence_of_the_corpus_first(home):
    from desktop_llm.core.inference.embeddings import build_index, embed, pca_2d
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store.runs import RunStore

    run = RunStore(home).resolve("encoder")
    model, tok, _ = load_for_inference(run)
    index = build_index(model, tok, run, "mean", limit=500)
    probe = index.items[123].text
    hits = index.search(embed(model, tok, [probe])[0], 3)
    assert hits[0]["text"] == probe and hits[0]["score"] == pytest.approx(1, abs=1e-4)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    cls = embed(model, tok, [probe, "another text"], "cls")
    assert cls.shape == (2, 64) and not np.allclose(cls[0], embed(model, tok, [probe])[0])
    xy = pca_2d(index.vectors)
    assert xy.shape == (500, 2) and xy[:, 0].var() >= xy[:, 1].var()

    out = cli(home, "similar", "encoder", "--text", probe, "--top-k", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["results"]) == 2


def test_a_gpt_run_has_no_sentence_embeddings(home, shakespeare_small):
    out = cli(home, "train", shakespeare_small, "--preset", "tiny", "--context", "16", "--steps", "10",
              "--eval-interval", "10", "--log-interval", "10", "--sample-tokens", "0", "--name", "gpt")
    assert out.returncode == 0, out.stderr
    out = cli(home, "similar", "gpt", "--text", "hello")
    assert out.returncode == 2 and out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1
    out = cli(home, "embed", "encoder")
    assert out.returncode == 2 and "--projector" in out.stderr


def test_held_out_texts_are_measured_as_given_and_beside_tfidf(home, tmp_path):
    from desktop_llm.core.inference.embeddings import Index, embed, sentences
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.resources import sample_corpus
    from desktop_llm.store.runs import RunStore

    # held-out files the run never read: Shakespeare past the bundled drama's end, and the Tang poems
    plays = sample_corpus().read_text("utf-8")[400_000:403_000]
    poems = sample_corpus("tangshi300.txt").read_text("utf-8")[:2_000]
    a, b = tmp_path / "plays.txt", tmp_path / "poems.txt"
    a.write_text(plays, "utf-8")
    b.write_text(poems, "utf-8")
    out = cli(home, "embed", "encoder", "--data", a, "--data", b, "--projector", tmp_path / "proj", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)

    run = RunStore(home).resolve("encoder")
    model, tok, _ = load_for_inference(run)
    items = sentences(run, paths=[str(a), str(b)])
    assert res["held_out"] and res["sentences"] == len(items) > 20
    assert {s.source for s in items} == {"plays.txt", "poems.txt"}
    agree, chance = Index(items, embed(model, tok, [s.text for s in items])).neighbour_agreement()
    assert res["nearest_same_source"] == pytest.approx(agree) and res["by_chance"] == pytest.approx(chance)
    with open(tmp_path / "proj" / "metadata.tsv", encoding="utf-8") as f:
        assert {r[1] for r in list(csv.reader(f, delimiter="\t"))[1:]} == {"plays.txt", "poems.txt"}
    text = cli(home, "embed", "encoder", "--data", a, "--data", b).stdout
    assert f"of {len(items)} held-out texts" in text and "TF-IDF" in text

    out = cli(home, "embed", "encoder", "--data", tmp_path / "missing.txt")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
