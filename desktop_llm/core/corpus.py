"""Corpus import: find files, detect encodings, refuse binaries, stream text, count statistics.

The corpus never holds a whole file in memory: text is read in chunks through an incremental
decoder, so a 1 GB corpus (or a 100 MB line) costs a few MB. Input files are only ever opened for
reading. Every source gets a per-file outcome (`SourceInfo.status` and `.reason`) so one bad file
never stops the rest from loading.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from desktop_llm.errors import Cancelled, DesktopLLMError

CHUNK_CHARS = 1 << 20
SNIFF_BYTES = 1 << 16
TEXT_SUFFIXES = {".txt", ".text", ".md", ".rst", ".log", ".tex", ""}
RECORD_SUFFIXES = {".jsonl", ".ndjson", ".csv", ".tsv"}
DOCUMENT_SEPARATOR = "\n\n"

# Magic numbers of common binary formats, so a refusal can say what the file is.
_MAGIC = [
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (also .docx, .xlsx, .keras)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "a Windows executable"),
    (b"\x89HDF", "an HDF5 file (model weights?)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04\x95", "a Python pickle"),
    (b"\x80\x05\x95", "a Python pickle"),
    (b"RIFF", "a RIFF media file (audio/video)"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg media file"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
]


class CorpusError(DesktopLLMError, ValueError):
    """A corpus that cannot be used at all (nothing readable, unknown column, ...)."""


@dataclass(slots=True)  # slots: a folder of a million files is a million of these
class SourceInfo:
    """One input file (or inline text) and what happened when we read it."""

    path: str
    kind: str = "text"  # text | jsonl | csv | tsv | inline
    size_bytes: int = 0
    encoding: str | None = None
    status: str = "ok"  # ok | empty | error
    reason: str = ""
    characters: int = 0
    lines: int = 0
    records: int = 0
    replaced: int = 0  # undecodable bytes replaced by U+FFFD
    confidence: float = 1.0  # of the encoding: 1.0 for byte-order marks, valid UTF-8 and a chosen one
    unsure: bool = False  # the encoding may be wrong (`reason` says why): read, but worth a look
    chosen: bool = False  # the encoding was given (Data page, --encoding), not detected

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CorpusStats:
    documents: int = 0
    characters: int = 0
    lines: int = 0
    bytes_utf8: int = 0
    distinct_characters: int = 0
    distinct_cjk: int = 0
    cjk_characters: int = 0  # occurrences, not distinct
    estimated_tokens: dict = field(default_factory=dict)
    train_characters: int = 0
    validation_characters: int = 0
    sources: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2FA1F
        or 0xF900 <= o <= 0xFAFF
        or 0x3040 <= o <= 0x30FF  # kana
        or 0xAC00 <= o <= 0xD7AF  # hangul
        or 0x3000 <= o <= 0x303F  # CJK punctuation
        or 0xFF00 <= o <= 0xFFEF  # full-width forms
    )


def is_cjk(ch: str) -> bool:
    return _is_cjk(ch)


_CJK_RE = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\uff00-\uffef\U00020000-\U0002fa1f]"
)


# --------------------------------------------------------------------------- discovery


def discover(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[SourceInfo]]:
    """Expand files and folders (recursively) into a sorted file list.

    Returns (files, problems): problems are sources that cannot even be listed (missing paths,
    unreadable folders). Symlinked folders are not followed, so symlink loops cannot recurse.
    Hidden files and folders (".git") are skipped inside folders; every other file is listed and
    gets its own outcome when inspected (binary files are refused with the reason).
    """
    files: list[Path] = []
    problems: list[SourceInfo] = []
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists() and not p.is_symlink():
            problems.append(SourceInfo(str(p), status="error", reason="file or folder not found"))
            continue
        if p.is_dir():
            errors: list[OSError] = []
            for root, dirs, names in os.walk(p, onerror=errors.append, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    # Every file gets an outcome: a PNG in the folder is listed as skipped (with
                    # the reason) rather than silently ignored; a README without suffix is read.
                    fp = Path(root) / name
                    key = str(fp)
                    if key not in seen:
                        seen.add(key)
                        files.append(fp)
            for e in errors:
                problems.append(
                    SourceInfo(str(e.filename), status="error", reason=f"cannot list folder: {e.strerror}")
                )
        else:
            key = str(p)
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, problems


# --------------------------------------------------------------------------- encodings

UNSURE_BELOW = 0.6  # a detection less sure than this flags the source "unsure"
GARBLED_SHARE = 0.01  # so does more than 1% replacement or control characters in the decoded text
COMMON_ENCODINGS = ("utf-8", "utf-16", "gb18030", "big5", "shift_jis", "euc-kr", "cp1252", "latin-1")

# What a person calls an encoding, by Python's canonical codec name.
_DESCRIPTIONS = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with byte-order mark", "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 little-endian", "utf-16-be": "UTF-16 big-endian", "utf-32": "UTF-32",
    "utf-32-le": "UTF-32 little-endian", "utf-32-be": "UTF-32 big-endian",
    "gb18030": "GB18030/GBK (Chinese)", "gbk": "GBK (Chinese)", "gb2312": "GB2312 (Chinese)",
    "big5": "Big5 (Traditional Chinese)", "cp950": "Big5 (Traditional Chinese, Windows cp950)",
    "big5hkscs": "Big5-HKSCS (Traditional Chinese, Hong Kong)",
    "shift_jis": "Shift-JIS (Japanese)", "cp932": "Shift-JIS (Japanese, Windows cp932)",
    "shift_jis_2004": "Shift-JIS 2004 (Japanese)", "shift_jisx0213": "Shift-JIS X0213 (Japanese)",
    "euc_jp": "EUC-JP (Japanese)", "euc_jis_2004": "EUC-JP (Japanese, JIS 2004)",
    "euc_jisx0213": "EUC-JP (Japanese, JIS X0213)", "iso2022_jp": "ISO-2022-JP (Japanese)",
    "euc_kr": "EUC-KR (Korean)", "cp949": "EUC-KR (Korean, Windows cp949)", "johab": "Johab (Korean)",
    "cp1252": "Windows-1252 (Western European)", "iso8859-1": "Latin-1 (Western European)",
    "iso8859-15": "Latin-9 (Western European)", "cp1250": "Windows-1250 (Central European)",
    "iso8859-2": "Latin-2 (Central European)", "cp1251": "Windows-1251 (Cyrillic)",
    "koi8-r": "KOI8-R (Russian)", "koi8-u": "KOI8-U (Ukrainian)", "cp866": "DOS 866 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)", "cp1254": "Windows-1254 (Turkish)", "cp1255": "Windows-1255 (Hebrew)",
    "cp1256": "Windows-1256 (Arabic)", "cp1257": "Windows-1257 (Baltic)",
    "cp1258": "Windows-1258 (Vietnamese)",
    "iso8859-4": "Latin-4 (Baltic)", "iso8859-5": "ISO-8859-5 (Cyrillic)", "iso8859-7": "ISO-8859-7 (Greek)",
    "iso8859-10": "Latin-6 (Nordic)", "iso8859-13": "Latin-7 (Baltic)", "iso8859-16": "Latin-10 (Romanian)",
    "tis-620": "TIS-620 (Thai)", "cp874": "Windows-874 (Thai)", "mac-roman": "Mac Roman",
}


def describe_encoding(encoding: str) -> str:
    """'big5' -> 'Big5 (Traditional Chinese)'; an encoding without a description is its own name."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return encoding
    return _DESCRIPTIONS.get(name, name)


def check_encoding(encoding: str) -> str:
    """The encoding name, stripped, if Python can decode text with it; else a CorpusError."""
    name = (encoding or "").strip()
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise CorpusError(f"Unknown text encoding '{encoding}' (for example: {', '.join(COMMON_ENCODINGS)}).")
    return name


@dataclass(frozen=True, slots=True)
class Detection:
    """What `detect_encoding` made of a file's first bytes."""

    encoding: str | None  # None: not text (`reason` says what it is)
    reason: str
    confidence: float = 1.0  # 0..1: how sure the guess is (1.0 for byte-order marks and valid UTF-8)
    unsure: str = ""  # why the guess may be wrong; "" when it is not in doubt


def sniff_bytes(sample: bytes) -> tuple[str | None, str]:
    """(encoding, reason) of `detect_encoding`: encoding is None for a binary file."""
    d = detect_encoding(sample)
    return d.encoding, d.reason


def detect_encoding(sample: bytes) -> Detection:
    """Guess the encoding of a file from its first bytes (at most SNIFF_BYTES of them).

    Certain rules first: byte-order marks, known binary formats, UTF-16/32 without a byte-order
    mark, binary content (NUL or control bytes), valid UTF-8. Everything else goes to
    charset-normalizer's statistical detector, with two corrections: Windows-1252/Latin-1 wins
    ties among single-byte code pages (the detector alone guessed Baltic cp1257 for French), and
    the confidence falls when another encoding reads the bytes as different text nearly as well.
    A guess under UNSURE_BELOW, or text with many replacement or control characters, comes back
    with `unsure` set.
    """
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return Detection("utf-32", "UTF-32 byte-order mark")
    if sample.startswith(codecs.BOM_UTF8):
        return Detection("utf-8-sig", "UTF-8 byte-order mark")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Detection("utf-16", "UTF-16 byte-order mark")
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            return Detection(None, f"binary file: {what}")
    if not sample:
        return Detection("utf-8", "empty")
    wide = _utf16_32_without_bom(sample)
    if wide:
        return wide
    if b"\x00" in sample:
        return Detection(None, "binary file: contains NUL bytes")
    controls = _control_bytes(sample)
    if controls / len(sample) > 0.05:
        return Detection(None, "binary file: too many control characters")
    if _decodes(sample, "utf-8"):
        return Detection("utf-8", "valid UTF-8")
    body = _whole_lines(sample)
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    if non_ascii - bad >= 8 * bad:  # UTF-8 with a few broken bytes
        return _judged("utf-8", text, f"UTF-8 with {bad} invalid byte{'s' if bad != 1 else ''} (replaced)"
                       if bad else "valid UTF-8", 1.0 - bad / max(1, len(text)))
    return _statistical(body)


def chosen_encoding(sample: bytes, encoding: str) -> Detection:
    """A file's first bytes read with an encoding someone chose: still refused if binary, and
    flagged unsure if the text comes out garbled."""
    encoding = check_encoding(encoding)
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            return Detection(None, f"binary file: {what}")
    if not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        if b"\x00" in sample:
            return Detection(None, "binary file: contains NUL bytes")
        if _control_bytes(sample) > 0.05 * len(sample):
            return Detection(None, "binary file: too many control characters")
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
    return _judged(encoding, text, f"{describe_encoding(encoding)}, chosen", 1.0)


def _utf16_32_without_bom(sample: bytes) -> Detection | None:
    """UTF-32 or UTF-16 text without a byte-order mark, told by where its NUL bytes fall."""
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    zeros = [sample[i::4].count(0) / max(1, len(sample[i::4])) for i in range(4)]
    whole = sample[: len(sample) // 4 * 4]
    if zeros[3] > 0.99 and zeros[2] > 0.9 and zeros[0] < 0.05 and _decodes(whole, "utf-32-le"):
        return Detection("utf-32-le", "UTF-32 (little-endian, no byte-order mark)", 0.95)
    if zeros[0] > 0.99 and zeros[1] > 0.9 and zeros[3] < 0.05 and _decodes(whole, "utf-32-be"):
        return Detection("utf-32-be", "UTF-32 (big-endian, no byte-order mark)", 0.95)
    # Latin-script UTF-16: one byte of nearly every pair is NUL.
    even, odd = sample[0::2], sample[1::2]
    ze, zo = even.count(0) / len(even), odd.count(0) / max(1, len(odd))
    if zo > 0.7 and ze < 0.05 and _decodes(sample, "utf-16-le"):
        return Detection("utf-16-le", "UTF-16 (little-endian, no byte-order mark)", 0.95)
    if ze > 0.7 and zo < 0.05 and _decodes(sample, "utf-16-be"):
        return Detection("utf-16-be", "UTF-16 (big-endian, no byte-order mark)", 0.95)
    # Other scripts (Chinese, Japanese...) in UTF-16: NULs only after ASCII characters such as
    # newlines, all on one side of the pairs; the statistical detector then has the last word.
    for encoding, nul_side, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if (len(sample) >= 64 and nul_side.count(0) > max(1, other.count(0))
                and other.count(0) < 0.05 * len(other)
                and _decodes(sample[: len(sample) // 2 * 2], encoding)):
            d = _statistical(sample[: len(sample) // 2 * 2], only=(encoding.replace("-", "_"),))
            if d.encoding and d.encoding.startswith("utf") and not d.unsure:
                return d
    return None


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_PROBE = 8192  # characters of each candidate text that the confidence looks at


def _control_bytes(sample: bytes) -> int:
    """Control bytes other than tab, newlines, form feed and escape."""
    return len(sample) - len(sample.translate(None, _CONTROL_BYTES))


def _whole_lines(sample: bytes) -> bytes:
    """A full-size sample cut after its last newline, so the detector never sees half a character."""
    if len(sample) < SNIFF_BYTES:
        return sample
    cut = sample.rfind(b"\n", len(sample) // 2)
    return sample[: cut + 1] if cut > 0 else sample


@dataclass(slots=True)
class _Candidate:
    encoding: str
    chaos: float  # charset-normalizer's mess ratio of the decoded text (0: clean)
    coherence: float  # how well the text fits a known language's letter frequencies
    text: str
    aliases: tuple[str, ...] = ()


def _statistical(body: bytes, only: tuple[str, ...] | None = None) -> Detection:
    from charset_normalizer import from_bytes

    def candidates(**kw) -> list[_Candidate]:
        found = []
        for m in from_bytes(body, **kw):
            if m.encoding in ("ascii", "utf_8"):
                continue  # not valid UTF-8 (checked before): a fallback, not an answer
            if m.encoding.startswith(("utf_16", "utf_32")) and not only:
                continue  # UTF-16/32 text has NUL bytes (spaces, newlines): _utf16_32_without_bom's job
            found.append(_Candidate(m.encoding, float(m.chaos), float(m.coherence), str(m),
                                    tuple(m.could_be_from_charset)))
        return found

    cands = candidates(cp_isolation=list(only), enable_fallback=False) if only else candidates()
    if not only and not any("cp1252" in c.aliases for c in cands):
        # scored even when messy: the detector finds accents in short French words suspicious
        cands += candidates(cp_isolation=["cp1252"], enable_fallback=False, threshold=1.0)
    if not cands:
        text = body.decode("latin-1")
        return _judged("latin-1", text, "Latin-1 (no encoding fits these bytes)", 0.0,
                       "no encoding reads these bytes as clean text")
    best = cands[0]
    western = next((c for c in cands if "cp1252" in c.aliases), None)
    if (western is not None and western is not best and len(best.text) == len(body)
            and (western.chaos <= best.chaos + 0.01 or _reads_as_western(western.text))):
        best = western  # a tie among single-byte code pages: the common one
    if "cp1252" in best.aliases:
        # Latin-1 and Windows-1252 differ only in 0x80-0x9F (controls in Latin-1, quotes in 1252)
        best.encoding = "cp1252" if any(0x80 <= b <= 0x9F for b in body) else "latin-1"
        best.text = body.decode(best.encoding, errors="replace")
    else:
        best.encoding = codecs.lookup(best.encoding).name
    rival = next((c for c in cands if c is not best and c.text != best.text), None)
    confidence = 1.0 - best.chaos
    doubt = ""
    if rival is not None:
        # How much better the best reads than its rival (mess, language fit, mixed-script words
        # like 'Cafй'), and how much of the text the rival would change: a rival nearly as good
        # that changes every character leaves the guess in doubt; one that changes a few accents
        # of a Latin code page, much less.
        ours, theirs = best.text[:_PROBE], rival.text[:_PROBE]
        aligned = len(best.text) == len(rival.text)
        margin = (max(0.0, rival.chaos - best.chaos) + 0.5 * max(0.0, best.coherence - rival.coherence)
                  + max(0.0, _mixed_script_share(theirs) - _mixed_script_share(ours)))
        if best.encoding in ("cp1252", "latin-1") and aligned:
            margin += 0.05  # of the single-byte code pages, Western European is the likeliest
        share = _differing_share(ours, theirs) if aligned else 1.0
        confidence *= 1.0 - (1.0 - min(1.0, margin / 0.1)) * share
        doubt = f"could also be {describe_encoding(rival.encoding)}"
    reason = f"{describe_encoding(best.encoding)}, detected"
    return _judged(best.encoding, best.text, reason, confidence, doubt)


def _judged(encoding: str, text: str, reason: str, confidence: float, doubt: str = "") -> Detection:
    """A detection, flagged unsure when not confident enough or when the text looks garbled."""
    confidence = round(max(0.0, min(1.0, confidence)), 2)
    why = []
    if confidence < UNSURE_BELOW:
        why.append(f"only {confidence:.0%} sure" + (f", {doubt}" if doubt else ""))
    garbled = garbled_characters(text)
    if garbled > GARBLED_SHARE * len(text):
        why.append(f"{garbled:,} replacement or control characters in the first {len(text):,}")
    if confidence < 1.0 and not why:
        reason += f" ({confidence:.0%} sure)"
    return Detection(encoding, reason, confidence, "; ".join(why))


def garbled_characters(text: str) -> int:
    """U+FFFD and control characters other than tab, newlines, form feed and escape."""
    return text.count("\ufffd") + sum(1 for c in _CONTROL_RE.findall(text))


_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_WORD_RE = re.compile(r"[^\W\d_]+")


def _differing_share(a: str, b: str) -> float:
    """Share of a's non-ASCII characters that b reads differently (1.0 if they do not line up)."""
    if len(a) != len(b):
        return 1.0
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x > "\x7f"]
    return sum(x != y for x, y in pairs) / len(pairs) if pairs else 0.0


_WESTERN_PUNCTUATION = set("\u201c\u201d\u2018\u2019\u201e\u2013\u2014\u2026\u00ab\u00bb\u00b0\u00a3\u20ac"
                           "\u00a7\u00a9\u00ae\u00b7\u00bf\u00a1\u00a0\u00b1\u00d7\u00f7\u00a2\u00a5\u2022")


def _reads_as_western(text: str) -> bool:
    """Text that looks like a Western European language: accented Latin letters are a small share
    of the letters (Cyrillic or Greek read as Windows-1252 is nearly all accents), and the other
    non-ASCII characters are punctuation that is not stuck inside words (Polish read as 1252:
    'Za\u00bf\u00f3\u00b3\u00e6')."""
    letters = accented = 0
    for i, c in enumerate(text):
        if c.isascii():
            letters += c.isalpha()
        elif c.isalpha():
            if not unicodedata.name(c, "").startswith("LATIN"):
                return False
            letters += 1
            accented += 1
        elif c not in _WESTERN_PUNCTUATION or (0 < i < len(text) - 1 and text[i - 1].isalpha()
                                               and text[i + 1].isalpha()):
            return False
    return letters > 0 and accented <= 0.3 * letters


def _mixed_script_share(text: str) -> float:
    """Share of the words with non-ASCII letters that mix ASCII letters with another script
    ('Cafй'): rare in real text, common when a code page is wrong."""
    mixed = total = 0
    for w in _WORD_RE.findall(text):
        if w.isascii():
            continue
        total += 1
        if any(c.isascii() for c in w) and any(
                not c.isascii() and not unicodedata.name(c, "LATIN").startswith("LATIN") for c in w):
            mixed += 1
    return mixed / total if total else 0.0


def _decodes(sample: bytes, encoding: str) -> bool:
    """True if `sample` decodes strictly; a multi-byte sequence cut at the end is allowed."""
    try:
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        return False


def source_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    return "text"


def inspect_file(path: Path, encoding: str | None = None) -> SourceInfo:
    """Open a file read-only, sniff its encoding (or check the given one); never reads more than
    SNIFF_BYTES."""
    info = SourceInfo(str(path), kind=source_kind(path))
    try:
        st = path.stat()
        if not path.is_file():
            info.status, info.reason = "error", "not a regular file"
            return info
        info.size_bytes = st.st_size
        with open(path, "rb") as f:
            sample = f.read(SNIFF_BYTES)
    except PermissionError:
        info.status, info.reason = "error", "permission denied (cannot read)"
        return info
    except OSError as e:
        info.status, info.reason = "error", f"cannot read: {e.strerror or e}"
        return info
    d = detect_encoding(sample) if encoding is None else chosen_encoding(sample, encoding)
    if d.encoding is None:
        info.status, info.reason = "error", d.reason
        return info
    info.encoding, info.reason, info.confidence = d.encoding, d.reason, d.confidence
    info.chosen = encoding is not None
    if d.unsure:
        info.unsure, info.reason = True, f"{d.reason}; unsure: {d.unsure}"
    if not sample:
        info.status, info.reason = "empty", "empty file"
    return info


def _path_key(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


# --------------------------------------------------------------------------- reading


def open_text(path: str, encoding: str, newline: str | None = None) -> io.TextIOWrapper:
    # Universal newlines turn \r\n and \r into \n; errors="replace" never fails mid-corpus.
    return io.TextIOWrapper(open(path, "rb"), encoding=encoding, errors="replace", newline=newline)


def _record_text(obj, column: str | None, where: str) -> str | None:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        if column is None:
            if "text" in obj and isinstance(obj["text"], str):
                return obj["text"]
            for key, field in (("messages", "content"), ("conversations", "value")):  # chat formats
                if isinstance(obj.get(key), list):
                    said = [m[field] for m in obj[key] if isinstance(m, dict) and isinstance(m.get(field), str)]
                    if said:
                        return "\n".join(said)  # a conversation read as text: its messages, one per line
            for v in obj.values():
                if isinstance(v, str):
                    return v
            return None
        v = obj.get(column)
        return v if isinstance(v, str) else None
    return None


def iter_source_documents(info: SourceInfo, column: str | None = None) -> Iterator[Iterator[str]]:
    """Yield one chunk iterator per document of a source (a text file is one document)."""
    if info.kind == "text":
        def chunks() -> Iterator[str]:
            with open_text(info.path, info.encoding or "utf-8") as f:
                while True:
                    s = f.read(CHUNK_CHARS)
                    if not s:
                        return
                    yield s

        yield chunks()
    elif info.kind == "jsonl":
        with open_text(info.path, info.encoding or "utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                text = _record_text(obj, column, f"{info.path}:{lineno}")
                if text:
                    yield iter((text,))
    elif info.kind in ("csv", "tsv"):
        csv.field_size_limit(1 << 30)
        with open_text(info.path, info.encoding or "utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if info.kind == "tsv" else ",")
            for row in reader:
                text = _record_text(row, column, info.path)
                if text:
                    yield iter((text.replace("\r\n", "\n"),))


def record_columns(info: SourceInfo, limit: int = 50, scalars: bool = False, any_value: bool = False) -> list[str]:
    """Column names of a JSONL/CSV source (from its first records), for a column chooser: JSONL
    keys whose values are text, or (`scalars`) also whole numbers and booleans, as labels often are,
    or (`any_value`) every key."""
    kinds = object if any_value else (str, int, bool) if scalars else (str,)
    cols: list[str] = []
    if info.kind == "jsonl":
        with open_text(info.path, info.encoding or "utf-8") as f:
            for i, line in enumerate(f):
                if i >= limit:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    cols += [k for k, v in obj.items() if isinstance(v, kinds) and k not in cols]
    elif info.kind in ("csv", "tsv"):
        with open_text(info.path, info.encoding or "utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t" if info.kind == "tsv" else ",")
            cols = next(reader, [])
    return cols


@dataclass
class Corpus:
    """A set of sources: file and folder paths and/or inline texts, with an optional column.

    `encodings` maps a file, or a folder (for every file in it), to the encoding to read it with
    instead of the detected one; unknown encoding names raise CorpusError at once.
    """

    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    column: str | None = None
    encodings: dict[str, str] = field(default_factory=dict)
    _sources: list[SourceInfo] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        pairs = self.encodings.items() if isinstance(self.encodings, dict) else self.encodings
        self.encodings = {_path_key(p): check_encoding(e) for p, e in pairs}

    def encoding_for(self, path: str | os.PathLike) -> str | None:
        """The encoding chosen for a file (or for a folder above it), or None: detect it."""
        if not self.encodings:
            return None
        key = _path_key(path)
        while True:
            if key in self.encodings:
                return self.encodings[key]
            parent = os.path.dirname(key)
            if parent == key:
                return None
            key = parent

    def scan(self, progress: Callable[[int, int], None] | None = None) -> list[SourceInfo]:
        """List every source with its encoding or the reason it cannot be used (cheap: sniffs only)."""
        files, problems = discover(self.paths)
        sources = list(problems)
        for i, fp in enumerate(files):
            sources.append(inspect_file(fp, self.encoding_for(fp)))
            if progress:
                progress(i + 1, len(files))
        for i, t in enumerate(self.texts):
            sources.append(
                SourceInfo(f"<text {i + 1}>", kind="inline", encoding="utf-8",
                           size_bytes=len(t.encode("utf-8")),
                           status="ok" if t else "empty", reason="" if t else "empty text")
            )
        if self.column:
            for s in sources:
                if s.ok and s.kind in ("jsonl", "csv", "tsv"):
                    cols = record_columns(s)
                    if cols and self.column not in cols:
                        s.status = "error"
                        s.reason = f"no column '{self.column}' (columns: {', '.join(cols[:12])})"
        self._sources = sources
        return sources

    @property
    def sources(self) -> list[SourceInfo]:
        if self._sources is None:
            self.scan()
        return self._sources  # type: ignore[return-value]

    def usable_sources(self) -> list[SourceInfo]:
        return [s for s in self.sources if s.ok]

    def total_bytes(self) -> int:
        return sum(s.size_bytes for s in self.usable_sources())

    def iter_documents(self) -> Iterator[tuple[SourceInfo, Iterator[str]]]:
        """Yield (source, chunk iterator) per document, in a deterministic order."""
        inline = {f"<text {i + 1}>": t for i, t in enumerate(self.texts)}
        for s in self.usable_sources():
            if s.kind == "inline":
                yield s, iter((inline[s.path],))
                continue
            try:
                for doc in iter_source_documents(s, self.column):
                    yield s, doc
            except OSError as e:  # vanished or became unreadable between scan and read
                s.status, s.reason = "error", f"cannot read: {e.strerror or e}"

    def iter_text(self) -> Iterator[str]:
        """The whole corpus as one stream of chunks, documents separated by a blank line."""
        first = True
        for _, chunks in self.iter_documents():
            if not first:
                yield DOCUMENT_SEPARATOR
            first = False
            yield from chunks

    def require_text(self) -> None:
        """Raise CorpusError with a readable message if nothing usable is in the corpus."""
        usable = self.usable_sources()
        if not usable:
            bad = [f"  {Path(s.path).name}: {s.reason}" for s in self.sources if not s.ok]
            detail = ("\n" + "\n".join(bad[:20])) if bad else ""
            raise CorpusError("The corpus has no readable text." + detail)

    def stats(self, val_fraction: float = 0.1, progress: Callable[[float], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> CorpusStats:
        """Stream the corpus once and count; also fills characters/lines/records per source.

        `progress(fraction)` is called per chunk; `cancelled()` returning True stops the count
        with `Cancelled` (desktop_llm.errors).
        """
        st = CorpusStats()
        total = max(1, self.total_bytes())
        distinct: set[str] = set()
        splitter = Splitter(val_fraction, self.total_bytes())
        for s in self.usable_sources():
            s.characters = s.lines = s.records = s.replaced = 0
        visible: set[int] = set()  # sources with a non-whitespace character
        for s, chunks in self.iter_documents():
            st.documents += 1
            s.records += 1
            for c in chunks:
                if id(s) not in visible and not c.isspace():
                    visible.add(id(s))
                n = len(c)
                st.characters += n
                s.characters += n
                nl = c.count("\n")
                st.lines += nl
                s.lines += nl
                s.replaced += c.count("\ufffd")
                st.bytes_utf8 += len(c.encode("utf-8", errors="replace"))
                if progress:
                    progress(min(1.0, st.bytes_utf8 / total))
                if cancelled and cancelled():
                    raise Cancelled("Cancelled.")
                distinct.update(c)
                st.cjk_characters += len(_CJK_RE.findall(c))
                for piece, is_val in splitter.split(c):
                    if is_val:
                        st.validation_characters += len(piece)
                    else:
                        st.train_characters += len(piece)
        st.distinct_characters = len(distinct)
        st.distinct_cjk = sum(1 for ch in distinct if _is_cjk(ch))
        st.estimated_tokens = estimate_tokens(st, distinct)
        for s in self.usable_sources():
            if s.characters == 0 and s.status == "ok":
                s.status, s.reason = "empty", (s.reason + "; " if s.reason else "") + "no text"
            elif id(s) not in visible and s.status == "ok":
                s.status, s.reason = "empty", (s.reason + "; " if s.reason else "") + "only whitespace"
            elif s.replaced:
                s.reason += f"; {s.replaced} undecodable bytes replaced"
                if s.replaced > GARBLED_SHARE * s.characters and not s.unsure:
                    s.unsure, s.reason = True, s.reason + "; unsure: more than 1% of the text is undecodable"
        st.sources = [s.to_dict() for s in self.sources]  # after the outcomes above
        return st


def estimate_tokens(st: CorpusStats, distinct: set[str]) -> dict:
    """Rough token counts per tokenizer kind, so the user can size a model before training."""
    cjk_ratio = st.cjk_characters / max(1, st.characters)
    # Subword tokenizers average ~4 characters a token on English, ~1.3 on Chinese.
    chars_per_token = 4.0 * (1 - cjk_ratio) + 1.3 * cjk_ratio
    words = int(st.characters / chars_per_token)
    return {"char": st.characters, "byte": st.bytes_utf8, "wordpiece": words, "sentencepiece": words}


class Splitter:
    """Deterministic train/validation split of a text stream, computable while streaming.

    The stream is cut into blocks of `block` characters; block i goes to validation when
    floor((i+1)*f) > floor(i*f), which spreads validation evenly over the corpus (every 10th block
    at f=0.1) and gives the same split on every run and machine.
    """

    def __init__(self, val_fraction: float, total_bytes: int):
        if not 0.0 <= val_fraction < 0.9:
            raise CorpusError("The validation fraction must be between 0 and 0.9.")
        self.f = val_fraction
        self.block = int(min(1 << 16, max(64, total_bytes // 200)))
        self.index = 0
        self.used = 0  # characters used of the current block

    def _is_val(self, i: int) -> bool:
        return int((i + 1) * self.f) > int(i * self.f)

    def split(self, text: str) -> Iterator[tuple[str, bool]]:
        pos = 0
        while pos < len(text):
            take = min(len(text) - pos, self.block - self.used)
            yield text[pos : pos + take], self._is_val(self.index)
            pos += take
            self.used += take
            if self.used == self.block:
                self.index += 1
                self.used = 0


def normalize_preview(text: str, limit: int = 2000) -> str:
    """A short printable preview of a text (control characters shown as symbols)."""
    out = []
    for ch in text[:limit]:
        if ch in "\n\t" or not unicodedata.category(ch).startswith("C"):
            out.append(ch)
        else:
            out.append("\ufffd")
    return "".join(out)


def preview(info: SourceInfo, column: str | None = None, limit: int = 2000) -> str:
    if not info.ok:
        return ""
    buf = []
    n = 0
    for doc in iter_source_documents(info, column):
        for c in doc:
            buf.append(c[: limit - n])
            n += len(buf[-1])
            if n >= limit:
                return normalize_preview("".join(buf), limit)
        buf.append(DOCUMENT_SEPARATOR)
        n += 2
        if n >= limit:
            break
    return normalize_preview("".join(buf), limit)


def example_from(texts, lines: int = 3, limit: int = 240) -> str:
    """The first few non-blank lines of a corpus: the "Try it" text once a tokenizer is trained
    on it, so that the first thing shown is the tokenizer at work on its own kind of text
    (a fixed English + Chinese sample would show a character tokenizer of Shakespeare failing)."""
    found, buf = [], ""
    for chunk in texts:
        buf += chunk
        *complete, buf = buf.split("\n")
        found += [line.rstrip() for line in complete if line.strip()]
        if len(found) >= lines or sum(map(len, found)) >= limit or len(buf) > 4 * limit:
            break  # (the last: a corpus without line breaks yet, read no further than needed)
    if len(found) < lines and buf.strip():
        found.append(buf[:limit].rstrip())
    return "\n".join(found[:lines])[:limit]
