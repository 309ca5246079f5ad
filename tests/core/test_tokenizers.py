import pytest

from desktop_llm.core.corpus import CorpusError
from desktop_llm.core.tokenizers import TokenizerError, load_tokenizer, train_tokenizer
from tests.conftest import SHAKESPEARE, TANGSHI

EN = "ROMEO: What say you?  Speak,\n\tfair maid!  "
ZH = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。"
EMOJI = "Good night 🌙✨ — 晚安 😴"


@pytest.fixture(scope="module")
def texts():
    return [SHAKESPEARE.read_text("utf-8")[:150_000], TANGSHI.read_text("utf-8")]


@pytest.mark.parametrize("kind,size", [("byte", None), ("sentencepiece", 4000), ("bpe", 4000)])
def test_lossless_round_trips_english_chinese_emoji(kind, size, texts, tmp_path):
    tok = train_tokenizer(kind, texts, size)
    for s in (EN, ZH, EMOJI, EN + ZH + EMOJI):
        assert tok.decode(tok.encode(s)) == s
    tok.save(tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert again.encode(EN + ZH) == tok.encode(EN + ZH)
    assert again.vocabulary_size == tok.vocabulary_size


def test_char_round_trip_and_unknowns(texts, tmp_path):
    tok = train_tokenizer("char", texts)
    for s in (EN.replace("\t", " "), ZH):  # every character seen in training
        assert tok.decode(tok.encode(s)) == s
    assert tok.encode("🌙") == [0]  # unseen character -> <unk>
    tok.save(tmp_path / "c")
    assert load_tokenizer(tmp_path / "c").encode(ZH) == tok.encode(ZH)


def test_subword_is_shorter_than_characters(texts):
    tok = train_tokenizer("sentencepiece", texts, 4000)
    sample = SHAKESPEARE.read_text("utf-8")[200_000:205_000]
    assert len(tok.encode(sample)) < len(sample) / 2


def test_wordpiece_does_not_space_chinese(texts, tmp_path):
    tok = train_tokenizer("wordpiece", texts, 3000)
    decoded = tok.decode(tok.encode(ZH))
    assert "明月光" in decoded and " 明" not in decoded
    assert tok.decode(tok.encode("To be, or not to be")) == "To be, or not to be"
    tok.save(tmp_path / "w")
    assert load_tokenizer(tmp_path / "w").encode("ROMEO") == tok.encode("ROMEO")


def test_stream_decoder_never_emits_half_characters():
    tok = train_tokenizer("byte", [])
    dec = tok.stream_decoder()
    pieces = [dec.feed(i) for i in tok.encode(EMOJI + ZH)]
    assert "".join(pieces) == EMOJI + ZH
    assert all("\ufffd" not in p for p in pieces)


def test_bad_requests_have_messages(texts):
    with pytest.raises(TokenizerError, match="Unknown tokenizer kind"):
        train_tokenizer("morse", texts)
    with pytest.raises(CorpusError, match="empty"):
        train_tokenizer("char", [""])
    with pytest.raises(TokenizerError, match="too small for this corpus"):
        train_tokenizer("sentencepiece", [TANGSHI.read_text("utf-8")], 500)
    with pytest.raises(TokenizerError, match="No tokenizer"):
        load_tokenizer("/nonexistent/folder")


def test_stream_decoding_a_long_generation_decodes_only_its_tail():
    """Each new token decodes a few ids, not the whole text so far (which made long generations
    quadratic), and the pieces still add up to the full decoding."""
    tok = train_tokenizer("byte", [])
    ids = tok.encode((EMOJI + ZH + " plain text ") * 100)
    lengths = []
    decode = tok.decode
    tok.decode = lambda xs: (lengths.append(len(xs)), decode(xs))[1]
    dec = tok.stream_decoder()
    text = "".join(dec.feed(i) for i in ids) + dec.flush()
    tok.decode = decode
    assert text == decode(ids)
    assert len(ids) > 2000 and max(lengths) <= 8


def test_the_default_vocabulary_grows_to_fit_a_chinese_corpus():
    """The default BPE size (2000) cannot hold the poems' 2,300+ frequent characters: a size the
    user chose is refused (above), the default grows to the smallest that fits, and stays lossless."""
    text = TANGSHI.read_text("utf-8")
    with pytest.raises(TokenizerError, match="too small for this corpus"):
        train_tokenizer("bpe", [text], 2000)
    tok = train_tokenizer("bpe", [text])
    assert tok.vocabulary_size > 2000
    sample = text[:300]
    assert tok.decode(tok.encode(sample)) == sample


def test_a_bpe_vocabulary_too_small_says_what_the_entries_are():
    """BPE with 300 entries on Shakespeare (65 distinct characters) used to claim "302 frequent
    distinct characters": the 256 byte pieces were counted as characters."""
    from desktop_llm.core.tokenizers import TokenizerError, train_tokenizer
    from tests.conftest import SHAKESPEARE

    with pytest.raises(TokenizerError) as e:
        train_tokenizer("bpe", [SHAKESPEARE.read_text("utf-8")], 300)
    message = str(e.value)
    assert "256 byte pieces" in message and "frequent distinct characters" not in message
    needed = int(message.split(": ")[1].split(" entries", maxsplit=1)[0])
    assert 256 < needed < 256 + 66  # the byte pieces and the frequent ones of its 65 characters
