"""benchmarks/quality.py's arithmetic and README writing (its training runs are the benchmark's,
not the suite's): which baseline is best for a figure's direction, and the table's verdict."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
quality = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quality)


def test_the_best_baseline_depends_on_the_figures_direction():
    base = {"figures": {"unigram": {"bits_per_byte": 4.8}, "trigram": {"bits_per_byte": 2.8}}}
    r = quality.row("t", "gpt", "bits_per_byte", 2.5, base, higher=False)
    assert (r["baseline_name"], r["baseline"], r["beats"]) == ("trigram", 2.8, True)
    base = {"figures": {"majority class": {"macro_f1": 0.27}, "naive Bayes": {"macro_f1": 0.59}}}
    r = quality.row("t", "classifier", "macro_f1", 0.4, base, higher=True)
    assert (r["baseline_name"], r["beats"]) == ("naive Bayes", False)
    assert "| **no** |" in quality.table([r])


def test_the_readme_block_is_replaced_not_appended(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\ntext\n", "utf-8")
    quality.write_readme("first table", readme)
    quality.write_readme("second table", readme)
    text = readme.read_text("utf-8")
    assert text.count("<!-- quality -->") == 1 and "second table" in text and "first table" not in text
    assert text.startswith("# Benchmarks\n\ntext\n")


def test_the_tasks_data_are_labelled_as_the_issue_describes(tmp_path):
    import csv

    rows = list(csv.DictReader(quality.dynasty_csv(tmp_path).open(encoding="utf-8")))
    counts = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    assert len(counts) >= 6 and max(counts.values()) > 10 * min(counts.values())  # imbalanced, 6+ classes
    authors = {r["label"] for r in csv.DictReader(quality.tang_author_csv(tmp_path).open(encoding="utf-8"))}
    assert len(authors) == 8
    prose = list(csv.DictReader(quality.prose_author_csv(tmp_path).open(encoding="utf-8")))
    by_author = {}
    for r in prose:
        by_author[r["label"]] = by_author.get(r["label"], 0) + 1
    assert len(by_author) == 8 and "佚名" not in by_author and by_author["左丘明"] == 140  # named authors only


def test_a_partial_run_keeps_the_other_families_rows_from_the_newest_full_run(tmp_path, monkeypatch):
    import json

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    for name, family in (("quality-20261201-0900.json", "old"), ("quality-20261205-0900.json", "gpt"),
                         ("quality-quick-20261206-0900.json", "quick")):
        (results / name).write_text(json.dumps([{"family": family}]))
    monkeypatch.setattr(quality, "ROOT", tmp_path)
    assert quality.previous_rows() == ("quality-20261205-0900.json", [{"family": "gpt"}])


def test_each_seed_holds_out_its_own_stratified_test_split(tmp_path):
    """The fair comparison's test split: disjoint from dev, every class in both, a fifth of each
    class held out, the same split for the same seed and another for another seed."""
    import csv

    data = quality.dynasty_csv(tmp_path)
    rows = [tuple(r[:2]) for r in list(csv.reader(data.open(encoding="utf-8")))[1:]]

    def read(path):
        return [tuple(r) for r in list(csv.reader(path.open(encoding="utf-8")))[1:]]

    dev, test = (read(p) for p in quality.held_out(data, 2, tmp_path))
    assert sorted(dev + test) == sorted(rows)
    for label in {r[1] for r in rows}:
        n, held = sum(r[1] == label for r in rows), sum(r[1] == label for r in test)
        assert 1 <= held < n and abs(held - 0.2 * n) <= 1, label
    (tmp_path / "again").mkdir()
    assert read(quality.held_out(data, 2, tmp_path / "again")[1]) == test
    assert read(quality.held_out(data, 3, tmp_path)[1]) != test


def test_a_split_by_articles_keeps_each_article_on_one_side(tmp_path):
    """Held out by whole articles: no article has paragraphs on both sides (its names would tell
    its label), each class with two articles or more is tested on at least a fifth of its
    paragraphs and keeps one article to train on, and a class of one article is only trained on."""
    import csv

    data = quality.dynasty_csv(tmp_path)
    rows = list(csv.reader(data.open(encoding="utf-8")))[1:]
    article = {r[0]: r[2] for r in rows}
    dev, test = ([tuple(r) for r in list(csv.reader(p.open(encoding="utf-8")))[1:]]
                 for p in quality.held_out(data, 2, tmp_path, articles=True))
    assert sorted(dev + test) == sorted(tuple(r) for r in rows)  # the article column kept: the run validates by it
    assert not {article[t] for t, *_ in dev} & {article[t] for t, *_ in test}
    for label in {r[1] for r in rows}:
        articles = {r[2] for r in rows if r[1] == label}
        held = sum(lab == label for _, lab, _ in test)
        n = sum(r[1] == label for r in rows)
        if len(articles) == 1:
            assert held == 0, label
        else:
            assert held >= 0.2 * n and any(lab == label for _, lab, _ in dev), label
