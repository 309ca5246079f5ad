"""Validation examples that repeat training ones (issue 25): counted at data preparation, left
out of a classifier's and a translator's validation split, counted (and kept) in a text's."""

import json

import numpy as np

from desktop_llm.core.leakage import leaked, normalise
from desktop_llm.core.tokenizers import train_tokenizer


def test_duplicates_are_found_after_whitespace_is_normalised():
    assert normalise("  Hi,\n  there\t!") == "Hi, there !"
    keys = ["Hello  world", "other", "Hello world ", "new", "other"]
    is_val = np.array([False, False, True, True, True])
    assert leaked(keys, is_val).tolist() == [False, False, True, False, True]


def test_a_classifier_leaves_repeated_texts_out_of_validation(tmp_path):
    from desktop_llm.core.models.classifier.examples import Example, LabelledData, stratified_split

    texts = [f"unique text number {i}" for i in range(40)]
    labels = ["a" if i % 2 else "b" for i in range(40)]
    examples = [Example(t, lab, "x") for t, lab in zip(texts, labels)]
    is_val = stratified_split(np.array([0 if lab == "b" else 1 for lab in labels]), 0.25, 7)
    train_text = next(t for t, v in zip(texts, is_val) if not v)
    # a copy of a training text, spaced differently, in every position: some land in validation
    examples += [Example(train_text.replace(" ", "  "), "a", "x") for _ in range(10)]
    tok = train_tokenizer("char", texts)
    info = LabelledData.prepare(examples, tok, 16, tmp_path, 0.25, 7)
    data = LabelledData(tmp_path)
    assert info["leaked"] > 0 and data.leaked == info["leaked"]
    val = {normalise(t) for t in data.val_texts}
    assert normalise(train_text) not in val  # no validation text repeats a training one
    assert info["examples"] == 50 - info["leaked"] and len(data.val_index) == info["val_examples"]


def test_a_translator_leaves_repeated_pairs_out_and_a_text_counts_its_lines(tmp_path):
    from desktop_llm.core.corpus import Corpus
    from desktop_llm.core.data import LONG_LINE, TokenData, prepare
    from desktop_llm.core.models.translator.pairs import PairData

    pairs = [(f"sentence {i}", f"句子 {i}") for i in range(30)] + [("Hi.", "嗨。")] * 20
    tok = train_tokenizer("char", [s + t for s, t in pairs])
    info = PairData.prepare(pairs, tok, 12, tmp_path / "pairs", 0.2, 1)
    data = PairData(tmp_path / "pairs")
    assert info["leaked"] > 0 and data.leaked == info["leaked"]
    assert ["Hi.", "嗨。"] not in data.val_pairs  # its copies in validation all repeat one in training
    assert info["examples"] == 50 - info["leaked"] and len(data.val_pairs) == info["val_examples"]

    long = "This line is long enough to count as a repeated line, not a tag." + "\n"
    assert len(long) > LONG_LINE
    body = "".join(f"line {i} of the story, told at length here.\n" for i in range(200))
    text = long * 5 + "ROMEO:\n" * 50 + body + "ROMEO:\n" * 50 + long * 30  # the split's validation share is at its end
    (tmp_path / "t.txt").write_text(text, "utf-8")
    tok = train_tokenizer("char", [text])
    info = prepare(Corpus(paths=[str(tmp_path / "t.txt")]), tok, tmp_path / "text", 0.1)
    assert info.leaked == 1  # the repeated long line, in both splits (counted once); the short ones never
    assert TokenData(tmp_path / "text").leaked == 1
    assert json.loads((tmp_path / "text" / "data.json").read_text())["leaked"] == 1
