"""Legacy encodings (issue 14, part 6): Big5, GB18030, Shift-JIS, EUC-KR, Windows-1252 and
UTF-16 without a byte-order mark are detected (charset-normalizer behind the byte-order-mark and
UTF rules), each source reports how sure the detection is, a doubtful one is flagged "unsure",
and a chosen encoding (Corpus(encodings=...), `--encoding`, DataConfig.encodings) overrides it.

Every sample is real text that either decodes to exactly the original or is flagged unsure: the
tests assert which, so a change in the detector shows up here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_llm.core.config import ConfigError, DataConfig, RunConfig
from desktop_llm.core.corpus import (
    SNIFF_BYTES,
    Corpus,
    CorpusError,
    check_encoding,
    detect_encoding,
    inspect_file,
)
from tests.conftest import TANGSHI

ROOT = Path(__file__).resolve().parents[2]
TANG = TANGSHI.read_text("utf-8")


def _encodable(text: str, encoding: str) -> str:
    """The characters of `text` that exist in `encoding` (Big5 lacks many simplified characters)."""
    out = []
    for c in text:
        try:
            c.encode(encoding)
        except UnicodeEncodeError:
            continue
        out.append(c)
    return "".join(out)


BIG5_TEXT = _encodable(TANG[:700], "big5")
GB_TEXT = TANG[:600]
JAPANESE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
    "ニャーニャー泣いていた事だけは記憶している。\n"
    "今朝は早く起きて、駅前の喫茶店でコーヒーを飲みながら新聞を読みました。天気予報によると、"
    "午後から雨が降るそうです。傘を持って出かけることにしました。\n"
    "週末には友達と一緒に京都へ旅行に行く予定です。お寺や神社を見て回り、美味しい料理を食べたいと"
    "思っています。紅葉の季節なので、きっと景色がとても綺麗でしょう。\n"
    "図書館で借りた本はとても面白くて、一晩で読み終えてしまいました。次は同じ作家の別の作品を読んで"
    "みようと思います。\n"
)
KOREAN = (
    "오늘 아침에는 일찍 일어나서 공원을 산책했습니다. 날씨가 맑고 바람이 시원해서 기분이 아주 좋았습니다.\n"
    "점심에는 친구와 함께 시장에 가서 김치찌개와 비빔밥을 먹었습니다. 음식이 정말 맛있어서 다음에 또 "
    "오기로 했습니다.\n"
    "저녁에는 도서관에서 책을 빌려 읽었습니다. 한국의 역사에 관한 책이었는데, 조선 시대의 이야기가 특히 "
    "흥미로웠습니다.\n"
    "주말에는 가족과 함께 바다에 갈 계획입니다. 아이들이 모래성을 쌓고 수영하는 것을 좋아합니다.\n"
)
ENGLISH_1252 = (
    "“It’s a lovely café,” she said, ‘but the crème brûlée is overrated.’\n"
    "He shrugged – he had never been one for desserts – and ordered another espresso.\n"
    "Outside, the rain kept falling on the naïve tourists who had forgotten their umbrellas.\n"
) * 3
SHORT_JAPANESE = "吾輩は猫である。名前はまだ無い"  # 30 bytes of Shift-JIS: too little to be sure


def _file(folder: Path, name: str, text: str, encoding: str) -> Path:
    p = folder / name
    p.write_bytes(text.encode(encoding))
    return p


def test_the_samples_are_real_text_of_a_useful_size():
    assert len(BIG5_TEXT) > 400 and BIG5_TEXT.encode("big5").decode("big5") == BIG5_TEXT
    for text in (JAPANESE, KOREAN, GB_TEXT):
        assert len(text) > 200


@pytest.mark.parametrize("name,text,encoding,detected", [
    ("big5.txt", BIG5_TEXT, "big5", "big5"),
    ("gb18030.txt", GB_TEXT, "gb18030", "gb18030"),
    ("shift_jis.txt", JAPANESE, "shift_jis", "cp932"),  # Windows' superset of Shift-JIS
    ("euc_kr.txt", KOREAN, "euc-kr", "cp949"),  # Windows' superset of EUC-KR
    ("cp1252.txt", ENGLISH_1252, "cp1252", "cp1252"),
    ("utf16le.txt", ENGLISH_1252, "utf-16-le", "utf-16-le"),
    ("utf16le_chinese.txt", GB_TEXT, "utf-16-le", "utf-16-le"),
    ("utf16be_japanese.txt", JAPANESE, "utf-16-be", "utf-16-be"),
])
def test_legacy_encodings_decode_to_exactly_the_original(tmp_path, name, text, encoding, detected):
    path = _file(tmp_path, name, text, encoding)
    corpus = Corpus(paths=[str(path)])
    (s,) = corpus.scan()
    assert (s.status, s.encoding, s.unsure, s.chosen) == ("ok", detected, False, False), s.reason
    assert 0.6 <= s.confidence <= 1.0
    assert "".join(corpus.iter_text()) == text
    st = corpus.stats()
    assert st.sources[0]["unsure"] is False and st.sources[0]["confidence"] == s.confidence
    assert st.characters == len(text) and s.replaced == 0


def test_the_bom_and_utf_rules_stay_certain(tmp_path):
    for name, data, encoding in [("bom.txt", b"\xef\xbb\xbf" + KOREAN.encode("utf-8"), "utf-8-sig"),
                                 ("utf8.txt", JAPANESE.encode("utf-8"), "utf-8"),
                                 ("utf16.txt", BIG5_TEXT.encode("utf-16"), "utf-16"),
                                 ("utf32.txt", GB_TEXT.encode("utf-32"), "utf-32")]:
        (tmp_path / name).write_bytes(data)
        s = inspect_file(tmp_path / name)
        assert (s.encoding, s.confidence, s.unsure) == (encoding, 1.0, False), name


def test_short_text_is_flagged_unsure_and_the_override_reads_it(tmp_path):
    path = _file(tmp_path, "short.txt", SHORT_JAPANESE, "shift_jis")
    corpus = Corpus(paths=[str(path)])
    (s,) = corpus.scan()
    # 30 bytes read as Korean as well as Japanese: the detector picks Korean, and says it is unsure
    assert s.ok and s.unsure and s.encoding == "cp949" and s.confidence < 0.6
    assert "unsure" in s.reason and "Shift-JIS" in s.reason  # the reason names the other candidate
    assert "".join(corpus.iter_text()) != SHORT_JAPANESE
    chosen = Corpus(paths=[str(path)], encodings={str(path): "shift_jis"})
    (c,) = chosen.scan()
    assert (c.encoding, c.chosen, c.unsure, c.confidence) == ("shift_jis", True, False, 1.0)
    assert "chosen" in c.reason
    assert "".join(chosen.iter_text()) == SHORT_JAPANESE


def test_short_big5_is_flagged_unsure_and_the_override_reads_it(tmp_path):
    text = BIG5_TEXT[:12]
    path = _file(tmp_path, "short.txt", text, "big5")
    (s,) = Corpus(paths=[str(path)]).scan()
    assert s.ok and s.unsure
    chosen = Corpus(paths=[str(path)], encodings={str(path): "big5"})
    assert "".join(chosen.iter_text()) == text and not chosen.sources[0].unsure


def test_a_wrong_choice_is_flagged_by_its_replacement_characters(tmp_path):
    path = _file(tmp_path, "gb.txt", GB_TEXT, "gb18030")
    corpus = Corpus(paths=[str(path)], encodings={str(path): "utf-8"})
    (s,) = corpus.scan()
    assert s.ok and s.chosen and s.unsure and "replacement" in s.reason
    st = corpus.stats()
    assert st.sources[0]["unsure"] and st.sources[0]["replaced"] > 100


def test_a_folder_override_applies_to_its_files_and_a_file_override_wins(tmp_path):
    folder = tmp_path / "繁體 corpus"
    folder.mkdir()
    _file(folder, "a.txt", BIG5_TEXT[:40], "big5")
    _file(folder, "b.txt", BIG5_TEXT[40:80], "big5")
    _file(folder, "c.txt", "Café crème\n", "cp1252")
    corpus = Corpus(paths=[str(folder)], encodings={str(folder): "big5", str(folder / "c.txt"): "cp1252"})
    by_name = {Path(s.path).name: s for s in corpus.scan()}
    assert {n: s.encoding for n, s in by_name.items()} == {"a.txt": "big5", "b.txt": "big5", "c.txt": "cp1252"}
    assert all(s.chosen and not s.unsure for s in by_name.values())
    assert "".join(corpus.iter_text()) == BIG5_TEXT[:40] + "\n\n" + BIG5_TEXT[40:80] + "\n\nCafé crème\n"


def test_a_chosen_encoding_still_refuses_binary_files(tmp_path):
    png = tmp_path / "image.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (s,) = Corpus(paths=[str(png)], encodings={str(png): "latin-1"}).scan()
    assert s.status == "error" and "PNG" in s.reason


def test_unknown_encoding_names_are_refused():
    for bad in ("nope", "rot13", "base64", ""):
        with pytest.raises(CorpusError, match="Unknown text encoding"):
            check_encoding(bad)
    with pytest.raises(CorpusError, match="Unknown text encoding 'klingon'"):
        Corpus(paths=["x"], encodings={"x": "klingon"})
    assert check_encoding(" big5 ") == "big5"


def test_detection_reads_a_bounded_prefix(tmp_path):
    """A large Big5 file: only the first SNIFF_BYTES are looked at, and scanning it costs little
    memory (the reading itself streams, as for UTF-8)."""
    import tracemalloc

    block = (BIG5_TEXT + "\n").encode("big5")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.writelines(block for _ in range(8 * 2**20 // len(block)))
        f.write(b"\xff\xfe" * 1000)  # garbage after the prefix: never sniffed
    tracemalloc.start()
    s = inspect_file(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.encoding == "big5" and not s.unsure
    assert peak < 24 * SNIFF_BYTES, f"{peak / 2**20:.1f} MiB to sniff one file"


@pytest.mark.parametrize("sample", [b"", b"plain ascii", b"\x00\x01\x02" * 30, bytes(range(256)) * 8])
def test_detection_of_odd_bytes_never_fails(sample):
    d = detect_encoding(sample)
    assert d.reason and 0.0 <= d.confidence <= 1.0


def test_a_config_with_encodings_round_trips(tmp_path):
    cfg = RunConfig(name="zh", data=DataConfig(paths=("/data/zh",), encodings=(("/data/zh/big5.txt", "big5"),
                                                                                ("/data/zh", "gb18030"))))
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg and again.data.encodings == (("/data/zh/big5.txt", "big5"), ("/data/zh", "gb18030"))
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json(), "utf-8")
    assert RunConfig.load(path) == cfg
    # older configs have no encodings; a hand-written {path: encoding} object is accepted too
    assert RunConfig.from_dict({"data": {"paths": ["/a"]}}).data.encodings == ()
    assert RunConfig.from_dict({"data": {"paths": ["/a"], "encodings": {"/a": "big5"}}}).data.encodings == (
        ("/a", "big5"),)
    with pytest.raises(ConfigError, match="klingon"):
        RunConfig(data=DataConfig(paths=("/a",), encodings=(("/a", "klingon"),))).validate()


def test_the_run_config_carries_the_encodings_to_the_corpus_it_trains_on(tmp_path):
    """`train --encoding ENC` records ENC for every path given in config.json; the trainer's
    corpus (also on resume, from config.json) reads the files with it."""
    from desktop_llm.cli import build_parser
    from desktop_llm.cli.train import run_config
    from desktop_llm.core.data import corpus_of

    path = _file(tmp_path, "short.txt", SHORT_JAPANESE * 2, "shift_jis")
    args = build_parser().parse_args(["train", str(path), "--encoding", "shift_jis", "--preset", "tiny"])
    cfg = run_config(args)
    assert cfg.data.encodings == ((str(path.resolve()), "shift_jis"),)
    cfg = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert "".join(corpus_of(cfg).iter_text()) == SHORT_JAPANESE * 2
    plain = run_config(build_parser().parse_args(["train", str(path), "--preset", "tiny"]))
    assert plain.data.encodings == () and "".join(corpus_of(plain).iter_text()) != SHORT_JAPANESE * 2


# --------------------------------------------------------------------------- command line


def cli(*args, home):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT, check=False)


def test_corpus_stats_lists_unsure_sources_and_confidence(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _file(folder, "big5.txt", BIG5_TEXT, "big5")
    _file(folder, "short.txt", SHORT_JAPANESE, "shift_jis")
    p = cli("corpus", "stats", str(folder), home=tmp_path / "home")
    assert p.returncode == 0, p.stderr
    lines = {Path(line.split("] ")[1].split("  ")[0]).name: line for line in p.stdout.splitlines()
             if line.startswith("  [")}
    assert lines["big5.txt"].startswith("  [ok    ]") and "  big5  " in lines["big5.txt"]
    assert lines["short.txt"].startswith("  [unsure]") and "cp949 (" in lines["short.txt"]
    assert "unsure encodings:     1 source" in p.stdout
    j = cli("corpus", "stats", str(folder), "--json", home=tmp_path / "home")
    sources = {Path(s["path"]).name: s for s in json.loads(j.stdout)["sources"]}
    assert sources["short.txt"]["unsure"] is True and sources["short.txt"]["confidence"] < 0.6
    assert sources["big5.txt"]["unsure"] is False and sources["big5.txt"]["confidence"] >= 0.6


def test_the_encoding_flag_reads_every_file_with_it(tmp_path):
    path = _file(tmp_path, "short.txt", SHORT_JAPANESE, "shift_jis")
    p = cli("corpus", "stats", str(path), "--encoding", "shift_jis", "--json", home=tmp_path / "home")
    assert p.returncode == 0, p.stderr
    (s,) = json.loads(p.stdout)["sources"]
    assert (s["encoding"], s["chosen"], s["unsure"], s["characters"]) == ("shift_jis", True, False, 15)
    out = tmp_path / "tok"
    p = cli("tokenizer", "train", str(path), "--kind", "char", "--encoding", "shift_jis", "--out", str(out),
            home=tmp_path / "home")
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr
    from desktop_llm.core.tokenizers import load_tokenizer

    tok = load_tokenizer(out)
    assert tok.decode(tok.encode(SHORT_JAPANESE)) == SHORT_JAPANESE  # learnt from the Japanese, not Korean
    assert tok.vocabulary_size == len(set(SHORT_JAPANESE)) + 1  # and <unk>


@pytest.mark.parametrize("command,options", [(["corpus", "stats"], []), (["tokenizer", "train"], ["--out", "tok"]),
                                             (["train"], ["--preset", "tiny", "--steps", "2"])])
def test_a_bad_encoding_name_is_one_error_line(tmp_path, command, options):
    path = _file(tmp_path, "a.txt", "hello\n", "utf-8")
    p = cli(*command, str(path), *options, "--encoding", "klingon", home=tmp_path / "home")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        ("error: Unknown text encoding 'klingon' (for example: utf-8, utf-16, gb18030, big5, shift_jis, "
         "euc-kr, cp1252, latin-1).")]
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_a_resumed_run_keeps_the_encodings_it_recorded(tmp_path):
    p = cli("train", "--resume", "anything", "--encoding", "big5", home=tmp_path / "home")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: --encoding applies to a new run: a resumed run reads its corpus as its config.json says."]
