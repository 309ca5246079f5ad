import hashlib
import json
from pathlib import Path

import pytest

from desktop_llm.core.corpus import Corpus, CorpusError, Splitter, sniff_bytes

TEXT_ZH = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n"
TEXT_EN = "To be, or not to be, that is the question.\n"


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_encodings_are_detected_and_decoded(tmp_path):
    files = {
        "utf8.txt": (TEXT_ZH + TEXT_EN).encode("utf-8"),
        "bom.txt": b"\xef\xbb\xbf" + TEXT_EN.encode("utf-8"),
        "utf16.txt": (TEXT_ZH + TEXT_EN).encode("utf-16"),
        "utf16le_nobom.txt": (TEXT_EN * 5).encode("utf-16-le"),
        "gbk.txt": (TEXT_ZH * 5).encode("gb18030"),
        "latin1.txt": ("Café crème, déjà vu. " * 5).encode("latin-1"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    before = _digest(tmp_path)
    corpus = Corpus(paths=[str(tmp_path)])
    by_name = {s.path.split("/")[-1]: s for s in corpus.scan()}
    assert by_name["utf8.txt"].encoding == "utf-8"
    assert by_name["bom.txt"].encoding == "utf-8-sig"
    assert by_name["utf16.txt"].encoding == "utf-16"
    assert by_name["utf16le_nobom.txt"].encoding == "utf-16-le"
    assert by_name["gbk.txt"].encoding == "gb18030"
    assert by_name["latin1.txt"].encoding == "latin-1"
    text = "".join(corpus.iter_text())
    assert "床前明月光" in text and "Café crème" in text and "question" in text
    assert "\ufeff" not in text  # BOMs stripped
    assert _digest(tmp_path) == before  # the user's files are never modified


def test_binary_and_empty_files_get_reasons_and_the_rest_loads(tmp_path):
    (tmp_path / "doc.pdf.txt").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj")
    (tmp_path / "img.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "nul.txt").write_bytes(b"abc\x00\x01\x02" * 50)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"  \n\t\n   \r\n" * 100)
    (tmp_path / "archive.zip").write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)))
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    (tmp_path / "good.txt").write_text(TEXT_EN, encoding="utf-8")
    corpus = Corpus(paths=[str(tmp_path), str(tmp_path / "missing.txt")])
    st = corpus.stats()
    by_name = {s["path"].split("/")[-1]: s for s in st.sources}
    assert "PDF" in by_name["doc.pdf.txt"]["reason"]
    assert "PNG" in by_name["img.txt"]["reason"]
    assert "NUL" in by_name["nul.txt"]["reason"]
    assert by_name["empty.txt"]["status"] == "empty"
    assert by_name["blank.txt"]["status"] == "empty" and "only whitespace" in by_name["blank.txt"]["reason"]
    assert by_name["archive.zip"]["status"] == "error" and "zip" in by_name["archive.zip"]["reason"].lower()
    assert by_name["weights.h5"]["status"] == "error" and by_name["weights.h5"]["reason"]
    assert "not found" in by_name["missing.txt"]["reason"]
    assert "".join(corpus.iter_text()) == TEXT_EN  # only the good file is text for training


def test_empty_corpus_is_refused_with_reasons(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 50)
    corpus = Corpus(paths=[str(tmp_path)])
    with pytest.raises(CorpusError, match=r"(?s)no readable text.*executable"):
        corpus.require_text()


def test_jsonl_and_csv_columns(tmp_path):
    rows = [{"id": i, "body": f"文本 {i} text"} for i in range(3)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\nnot json\n",
                                      encoding="utf-8")
    (tmp_path / "d.csv").write_text('id,body\n1,"hello, world"\n2,"line one\nline two"\n', encoding="utf-8")
    corpus = Corpus(paths=[str(tmp_path)], column="body")
    st = corpus.stats()
    assert st.documents == 5
    text = "".join(corpus.iter_text())
    assert "文本 2 text" in text and "hello, world" in text and "line one\nline two" in text
    bad = Corpus(paths=[str(tmp_path / "d.jsonl")], column="nope")
    bad.scan()
    assert "no column 'nope'" in bad.sources[0].reason and "body" in bad.sources[0].reason


def test_split_is_deterministic_and_close_to_the_fraction(shakespeare_small):
    a = Corpus(paths=[str(shakespeare_small)]).stats(0.1)
    b = Corpus(paths=[str(shakespeare_small)]).stats(0.1)
    assert (a.train_characters, a.validation_characters) == (b.train_characters, b.validation_characters)
    assert a.train_characters + a.validation_characters == a.characters
    assert 0.09 < a.validation_characters / a.characters < 0.11
    s = Splitter(0.25, 4000)
    flags = [v for _, v in s.split("x" * 64 * 8)]
    assert flags == [False, False, False, True] * 2


def test_sniff_refuses_known_formats():
    assert sniff_bytes(b"PK\x03\x04rest")[0] is None
    assert sniff_bytes(b"\x89HDF\r\n\x1a\n")[0] is None
    assert sniff_bytes(b"plain text")[0] == "utf-8"


def test_chinese_statistics(tmp_path):
    p = tmp_path / "zh.txt"
    p.write_text(TEXT_ZH * 3, encoding="utf-8")
    st = Corpus(paths=[str(p)]).stats()
    assert st.characters == len(TEXT_ZH) * 3
    assert st.lines == 3
    assert st.cjk_characters == 24 * 3
    assert st.distinct_characters == len(set(TEXT_ZH))
    # subword estimate for Chinese is far above chars/4
    assert st.estimated_tokens["sentencepiece"] > st.characters / 2


def test_symlink_loops_and_odd_names_load_once(tmp_path):
    root = tmp_path / "données 语料 with spaces"
    root.mkdir()
    (root / "a file é.txt").write_text("hello world\n", encoding="utf-8")
    (root / "loop").symlink_to(root, target_is_directory=True)  # a folder that contains itself
    (root / "dangling").symlink_to(tmp_path / "missing")
    corpus = Corpus(paths=[str(root)])
    corpus.scan()
    ok = [s for s in corpus.sources if s.ok]
    assert [Path(s.path).name for s in ok] == ["a file é.txt"]
    assert "".join(corpus.iter_text()) == "hello world\n"
    dangling = [s for s in corpus.sources if Path(s.path).name == "dangling"]
    assert all(not s.ok and s.reason for s in dangling)


def test_a_100_mb_line_streams_in_bounded_memory(tmp_path):
    import tracemalloc

    big = tmp_path / "one-line.txt"
    with open(big, "wb") as f:
        block = b"abcdefghij" * 100_000  # 1 MB, no newline anywhere
        f.writelines(block for _ in range(100))
    corpus = Corpus(paths=[str(big)])
    corpus.scan()
    tracemalloc.start()
    st = corpus.stats()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert st.characters == 100_000_000 and st.lines == 0
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB while reading a 100 MB line"


# Reads a folder with privileges dropped when the tests run as root (root reads any file whatever
# its mode), so that chmod 000 really makes a file and a folder unreadable.
UNPRIVILEGED_SCAN = """
import json, os, sys
from desktop_llm.core.corpus import Corpus
import encodings.utf_8, encodings.utf_16  # imported before dropping privileges
if os.geteuid() == 0:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
corpus = Corpus(paths=[sys.argv[1]])
corpus.scan()
print(json.dumps({"sources": [[os.path.basename(s.path), s.status, s.reason] for s in corpus.sources],
                  "text": "".join(corpus.iter_text())}))
"""


def test_unreadable_files_and_folders_and_a_fifo_get_reasons(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="unreadable corpus "))  # /tmp: reachable by an unprivileged reader
    try:
        os.chmod(root, 0o755)
        (root / "readable.txt").write_text(TEXT_EN, encoding="utf-8")
        locked = root / "locked.txt"
        locked.write_text(TEXT_EN, encoding="utf-8")
        folder = root / "locked folder"
        folder.mkdir()
        (folder / "inside.txt").write_text(TEXT_EN, encoding="utf-8")
        os.mkfifo(root / "a pipe")  # opening a FIFO would block forever
        os.chmod(root / "readable.txt", 0o644)
        os.chmod(locked, 0o000)
        os.chmod(folder, 0o000)
        out = subprocess.run([sys.executable, "-c", UNPRIVILEGED_SCAN, str(root)], capture_output=True, text=True,
                             timeout=120, cwd=str(Path(__file__).resolve().parents[2]), check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        outcomes = {name: (status, reason) for name, status, reason in result["sources"]}
        assert outcomes["readable.txt"][0] == "ok"
        assert outcomes["locked.txt"][0] == "error" and "permission denied" in outcomes["locked.txt"][1]
        assert outcomes["locked folder"][0] == "error" and "cannot list folder" in outcomes["locked folder"][1]
        assert outcomes["a pipe"][0] == "error" and "not a regular file" in outcomes["a pipe"][1]
        assert result["text"] == TEXT_EN  # the rest of the corpus still loads
    finally:
        for p in (root / "locked folder", root / "locked.txt"):
            os.chmod(p, 0o755)
        shutil.rmtree(root)


def test_a_folder_of_many_tiny_files_lists_each_in_bounded_memory(tmp_path):
    """100,000 one-line files (the issue says millions; this is the same code path at a size a
    test can afford): every file gets its outcome, the text of all of them loads, and the memory
    per listed file stays small enough that ten million files fit in a few GiB."""
    import os
    import tracemalloc

    n = 100_000
    root = tmp_path / "many"
    for d in range(100):
        sub = root / f"{d:02d}"
        sub.mkdir(parents=True)
        for i in range(n // 100):
            fd = os.open(sub / f"{i:04d}.txt", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x\n")
            os.close(fd)
    (root / "00" / "zz-binary.bin").write_bytes(bytes(range(256)) * 4)
    tracemalloc.start()
    corpus = Corpus(paths=[str(root)])
    corpus.scan()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(corpus.sources) == n + 1
    assert sum(s.ok for s in corpus.sources) == n
    assert [s.status for s in corpus.sources if not s.ok] == ["error"]
    assert peak / (n + 1) < 1024, f"{peak / (n + 1):.0f} bytes per listed file"
    st = corpus.stats()
    assert st.characters == 2 * n and st.documents == n
