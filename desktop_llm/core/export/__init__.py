"""Export a trained run in formats that other tools load without desktop_llm.

| format | what is written | carries generation |
|---|---|---|
| `keras-hub` | a keras-hub preset: `GPT2Backbone` + `GPT2CausalLM` (+ the SentencePiece tokenizer); masked LM, classifier and translator runs as `BertMaskedLM`, `BertTextClassifier`, `BartSeq2SeqLM` | yes: keras-hub's `generate` |
| `savedmodel` | a TensorFlow SavedModel: `serve` (ids -> logits) and `generate` (ids -> ids) | yes: its `generate` signature |
| `onnx` | `model.onnx`: ids -> logits | no: forward pass only |
| `litert` | `model.tflite`: ids -> logits | no: forward pass only |

ONNX and LiteRT get the forward pass only because the key/value-cache generation loop does not
convert (tf2onnx has no XlaDynamicUpdateSlice; LiteRT has no 6-D StridedSlice): a caller there
runs its own loop over the logits. Every export folder also holds `vocabulary.json` (token text
by id, for mapping ids without our tokenizer) and `export.json` (what it is and how to load it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from desktop_llm.core import atomic
from desktop_llm.errors import ExportError

__all__ = ["FORMATS", "FORMAT_LABELS", "ExportError", "ExportResult", "check_exportable", "default_path",
           "describe", "export_run"]

FORMATS = ("keras-hub", "savedmodel", "onnx", "litert")
FORMAT_LABELS = {
    "keras-hub": "keras-hub preset (GPT-2; generates)",
    "savedmodel": "TensorFlow SavedModel (logits and generation)",
    "onnx": "ONNX (forward pass: logits)",
    "litert": "LiteRT / TFLite (forward pass: logits)",
}
MARKER = "export.json"  # an export folder we wrote, so a later export may replace it


@dataclass
class ExportResult:
    path: Path
    format: str
    notes: list[str] = field(default_factory=list)


def default_path(run, fmt: str, exports_dir: str | os.PathLike | None = None) -> Path:
    """`<workspace>/exports/<run>-<format>/` (the workspace is the run folder's grandparent)."""
    base = Path(exports_dir) if exports_dir is not None else run.folder.parent.parent / "exports"
    return base / f"{run.id}-{fmt}"


def check_exportable(run, fmt: str) -> None:
    """Refuse what cannot work before anything is loaded (fast, so the GUI and CLI say it at once)."""
    from desktop_llm.core.models import get_family

    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'. Choose one of: {', '.join(FORMATS)}.")
    family = get_family(getattr(run.config, "family", None))
    if fmt not in family.export_formats:
        offered = " or ".join("a keras-hub preset" if f == "keras-hub" else f for f in family.export_formats)
        writes = [f.name for f in _families() if fmt in f.export_formats]
        raise ExportError(f"Run {run.id} is a {family.name} run: it exports as {offered} only "
                          f"({fmt} writes {' and '.join(writes) or 'no'} runs).")
    family.check_export(run, fmt)
    if fmt in ("savedmodel", "onnx", "litert"):  # written from a TensorFlow graph of the model
        from desktop_llm.core.backend import require_tensorflow

        require_tensorflow(f"Exporting as {fmt}")


def _families():
    from desktop_llm.core.models import families

    return families()


def export_run(run, fmt: str, out: str | os.PathLike | None = None, checkpoint: str = "best",
               exports_dir: str | os.PathLike | None = None,
               report: Callable[[float, str], None] | None = None) -> ExportResult:
    """Write `run` (its `checkpoint`: "best" or "latest") as `fmt` into the folder `out`
    (default `default_path`). The folder is built beside its destination and renamed into
    place, so `out` is either a whole export or untouched; an earlier export there is replaced,
    any other non-empty folder is refused."""
    say = report or (lambda fraction, message: None)
    check_exportable(run, fmt)
    dest = (Path(out).expanduser() if out is not None else default_path(run, fmt, exports_dir)).absolute()
    _check_destination(dest)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    try:  # before the model loads: a place that cannot be written is said at once, in one line
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as e:
        raise ExportError(f"Cannot write {dest} ({e.strerror or e}): choose another folder with --out.") from None
    say(0.05, "Loading the checkpoint…")
    from desktop_llm.core.loading import load_for_inference

    try:
        model, tok, ckpt = load_for_inference(run, checkpoint)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        say(0.2, f"Writing the {FORMAT_LABELS[fmt]}…")
        from desktop_llm.core.models import get_family

        info = get_family(run.config.family).write_export(model, tok, run, fmt, tmp)
        atomic.write_json(tmp / "vocabulary.json", tok.vocabulary())
        meta = {
            "format": fmt,
            "run": run.id,
            "name": run.config.name,
            "checkpoint": checkpoint,
            "step": ckpt.step,
            "tokenizer": tok.kind,
            "vocabulary_size": tok.vocabulary_size,
            "context_length": int(model.backbone.max_sequence_length),
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **info,
        }
        atomic.write_json(tmp / MARKER, meta)
        say(0.95, "Moving the export into place…")
        _replace(tmp, dest)
    except ImportError as e:  # keras-hub's tokenizers for char and byte runs need TensorFlow
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"This export needs a library that is not installed: {str(e).splitlines()[0]}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(dest, fmt, list(info.get("notes", [])))


def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest} is a file: an export is a folder, give a folder path with --out.")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).exists():
        raise ExportError(f"{dest} is not empty and is not an earlier export: choose another folder.")


def _replace(tmp: Path, dest: Path) -> None:
    """Swap the finished folder in; the previous export is removed only once the new one is there."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    atomic.fsync_dir(dest.parent)


def describe(result: ExportResult) -> str:
    """What the CLI prints and the GUI shows after an export."""
    lines = [f"exported {result.format} to {result.path}"]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def read_info(folder: str | os.PathLike) -> dict:
    return json.loads((Path(folder) / MARKER).read_text("utf-8"))
