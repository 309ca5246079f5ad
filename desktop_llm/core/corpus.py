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


class CorpusError(ValueError):
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
        d = asdict(self)
        return d


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


def sniff_bytes(sample: bytes) -> tuple[str | None, str]:
    """Guess the encoding of a file from its first bytes.

    Returns (encoding, reason). encoding is None for a binary file and reason says why.
    Order: BOMs, known binary formats, UTF-16 without BOM, UTF-8, GB18030, Latin-1 as the last
    resort. (Statistical detectors such as charset-normalizer guessed cp1257 for plain Latin-1
    French in our tests, so they are not consulted.)
    """
    if sample.startswith(codecs.BOM_UTF32_LE) or sample.startswith(codecs.BOM_UTF32_BE):
        return "utf-32", "UTF-32 byte-order mark"
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "UTF-8 byte-order mark"
    if sample.startswith(codecs.BOM_UTF16_LE) or sample.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", "UTF-16 byte-order mark"
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            return None, f"binary file: {what}"
    if not sample:
        return "utf-8", "empty"
    # UTF-16 without a BOM: for Latin-script text one byte of nearly every pair is NUL.
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        ze, zo = even.count(0) / len(even), odd.count(0) / max(1, len(odd))
        if zo > 0.7 and ze < 0.05 and _decodes(sample, "utf-16-le"):
            return "utf-16-le", "UTF-16 (little-endian, no byte-order mark)"
        if ze > 0.7 and zo < 0.05 and _decodes(sample, "utf-16-be"):
            return "utf-16-be", "UTF-16 (big-endian, no byte-order mark)"
    if b"\x00" in sample:
        return None, "binary file: contains NUL bytes"
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    if controls / len(sample) > 0.05:
        return None, "binary file: too many control characters"
    if _decodes(sample, "utf-8"):
        return "utf-8", "valid UTF-8"
    if _decodes(sample, "gb18030"):
        text = codecs.getincrementaldecoder("gb18030")().decode(sample)
        non_ascii = [c for c in text if ord(c) > 127]
        if non_ascii and sum(_is_cjk(c) for c in non_ascii) / len(non_ascii) > 0.6:
            return "gb18030", "GB18030/GBK (Chinese)"
    return "latin-1", "Latin-1 (fallback: not valid UTF-8)"


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


def inspect_file(path: Path) -> SourceInfo:
    """Open a file read-only, sniff its encoding; never reads more than SNIFF_BYTES."""
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
    enc, reason = sniff_bytes(sample)
    if enc is None:
        info.status, info.reason = "error", reason
        return info
    info.encoding = enc
    info.reason = reason
    if not sample:
        info.status, info.reason = "empty", "empty file"
    return info


# --------------------------------------------------------------------------- reading


def _open_text(path: str, encoding: str, newline: str | None = None) -> io.TextIOWrapper:
    # Universal newlines turn \r\n and \r into \n; errors="replace" never fails mid-corpus.
    return io.TextIOWrapper(open(path, "rb"), encoding=encoding, errors="replace", newline=newline)


def _record_text(obj, column: str | None, where: str) -> str | None:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        if column is None:
            if "text" in obj and isinstance(obj["text"], str):
                return obj["text"]
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
            with _open_text(info.path, info.encoding or "utf-8") as f:
                while True:
                    s = f.read(CHUNK_CHARS)
                    if not s:
                        return
                    yield s

        yield chunks()
    elif info.kind == "jsonl":
        with _open_text(info.path, info.encoding or "utf-8") as f:
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
        with _open_text(info.path, info.encoding or "utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if info.kind == "tsv" else ",")
            for row in reader:
                text = _record_text(row, column, info.path)
                if text:
                    yield iter((text.replace("\r\n", "\n"),))


def record_columns(info: SourceInfo, limit: int = 50) -> list[str]:
    """Column names of a JSONL/CSV source (from its first records), for a column chooser."""
    cols: list[str] = []
    if info.kind == "jsonl":
        with _open_text(info.path, info.encoding or "utf-8") as f:
            for i, line in enumerate(f):
                if i >= limit:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    cols += [k for k, v in obj.items() if isinstance(v, str) and k not in cols]
    elif info.kind in ("csv", "tsv"):
        with _open_text(info.path, info.encoding or "utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t" if info.kind == "tsv" else ",")
            cols = next(reader, [])
    return cols


@dataclass
class Corpus:
    """A set of sources: file and folder paths and/or inline texts, with an optional column."""

    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    column: str | None = None
    _sources: list[SourceInfo] | None = field(default=None, repr=False)

    def scan(self, progress: Callable[[int, int], None] | None = None) -> list[SourceInfo]:
        """List every source with its encoding or the reason it cannot be used (cheap: sniffs only)."""
        files, problems = discover(self.paths)
        sources = list(problems)
        for i, fp in enumerate(files):
            sources.append(inspect_file(fp))
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
            for c in chunks:
                yield c

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
        with a CorpusError("Cancelled.").
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
                    raise CorpusError("Cancelled.")
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
