"""Property-based tests (hypothesis): arbitrary bytes never crash the corpus reader, and arbitrary
Unicode round-trips through every tokenizer that promises it."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_llm.core.corpus import Corpus, inspect_file, sniff_bytes
from desktop_llm.core.tokenizers import train_tokenizer
from tests.conftest import SHAKESPEARE, TANGSHI

# Text without surrogates (they cannot be encoded to UTF-8 and no file can hold them).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tokenizers():
    corpus = SHAKESPEARE.read_text("utf-8")[:60_000] + TANGSHI.read_text("utf-8")[:20_000]
    return {
        "byte": train_tokenizer("byte", []),
        "char": train_tokenizer("char", [corpus]),
        "sentencepiece": train_tokenizer("sentencepiece", [corpus], 3000),
        "bpe": train_tokenizer("bpe", [corpus], 3000),
    }


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_sniffing_arbitrary_bytes_never_crashes(data):
    encoding, reason = sniff_bytes(data)
    assert isinstance(reason, str) and reason
    if encoding is not None:
        data.decode(encoding if encoding != "utf-8-sig" else "utf-8-sig", errors="replace")


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_any_file_gets_an_outcome_and_stays_untouched(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("f")) / "file.txt"
    path.write_bytes(data)
    corpus = Corpus(paths=[str(path)])
    corpus.scan()
    (info,) = corpus.sources
    assert info.status in ("ok", "empty", "error") and (info.ok or info.reason)
    if info.ok:
        assert isinstance("".join(corpus.iter_text()), str)
    assert path.read_bytes() == data
    assert inspect_file(path).status == info.status


@SETTINGS
@given(text=TEXT)
def test_lossless_tokenizers_round_trip_any_text(tokenizers, text):
    for kind in ("byte", "sentencepiece", "bpe"):
        tok = tokenizers[kind]
        ids = tok.encode(text)
        assert all(0 <= i < tok.vocabulary_size for i in ids)
        assert tok.decode(ids) == text, kind


@SETTINGS
@given(text=TEXT)
def test_char_tokenizer_round_trips_known_characters_and_marks_the_rest(tokenizers, text):
    tok = tokenizers["char"]
    ids = tok.encode(text)
    assert len(ids) == len(text)
    known = "".join(c for c in text if tok.encode(c) != [0])
    assert tok.decode([i for i in ids if i != 0]) == known


@SETTINGS
@given(text=TEXT)
def test_stream_decoding_equals_decoding(tokenizers, text):
    for kind in ("byte", "sentencepiece"):
        tok = tokenizers[kind]
        ids = tok.encode(text)
        dec = tok.stream_decoder()
        assert "".join(dec.feed(i) for i in ids) + dec.flush() == tok.decode(ids), kind
