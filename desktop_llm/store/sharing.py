"""Sharing runs: export a run folder as a zip, and import such a zip from someone else.

An archive from elsewhere is untrusted input, so importing it is paranoid: absolute paths, `..`
components, links and special files are refused; the entry count and the unpacked size are
capped (the sizes the archive declares are checked first, then the bytes actually unpacked are
counted, so a lying header cannot slip a zip bomb through), and so are the files besides the
weights, the compression ratio and the disk space left. Every checkpoint must match its SHA-256
manifest and be what it claims: HDF5 weights at least as large as the model its config describes
(a shape claimed but not shipped would make loading build for minutes or run out of memory), a
step within the run, an optimizer state of plain arrays. It unpacks into a hidden temporary folder
inside the workspace's `runs/` and is renamed into place only once everything checks out, so a
refused or interrupted import leaves nothing behind, and the user's zip is only ever read. Nothing
is loaded or run: model files are only ever loaded later, with Keras `safe_mode` (see
`core.loading`, `core.models.backbones.gpt`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import tempfile
import time
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from desktop_llm.core import atomic
from desktop_llm.core.checkpoints import (
    MANIFEST,
    OPTIMIZER,
    STATE,
    WEIGHTS,
    CheckpointError,
    CheckpointManager,
    stored_optimizer,
    stored_weights,
)
from desktop_llm.core.config import ConfigError, RunConfig
from desktop_llm.core.data import TokenData
from desktop_llm.core.models import get_family
from desktop_llm.store.runs import ACTIVE, Run, StoreError, pid_alive

MAX_BYTES = 16 * 2**30  # unpacked; a GPT-2-small run with its checkpoints is a few GB
MAX_FILES = 10_000
# Besides the arrays (checkpoint files, model.keras, and data/'s .npz: a classifier's or
# translator's tokenized examples, about 50 MB for 100k examples of 128 tokens, which grow with the
# data as weights grow with the model): config, tokenizer, metrics and logs come to a few MB.
MAX_OTHER = 64 * 2**20
MAX_RATIO = 100  # unpacked:packed; weights deflate about 1.1:1, text and JSON 3-10:1, zeros 1000:1
RATIO_FROM = 2**20  # smaller members (and archives) may compress better: they cannot grow far
FREE_MARGIN = 512 * 2**20  # left free on the workspace's disk after an import
WEIGHT_FILES = (WEIGHTS, OPTIMIZER)
_CHUNK = 1 << 20
_STEP = re.compile(r"^step-\d+$")


# --------------------------------------------------------------------------- export


# data/'s token caches: the corpus tokenized for a GPT or masked LM, rebuilt from the corpus and
# often far larger than the model. Everything else in data/ travels: a classifier's classes and
# labelled split and a translator's pairs, without which the imported run could not classify.
# baselines.json is a cache too (the status keeps the figures; a resume computes it again).
TOKEN_CACHES = (*TokenData.FILES, "baselines.json")


def export_zip(store, run_id: str, dest: str | os.PathLike | None = None) -> Path:
    """Zip a run of `store` to `dest` (a zip path or a folder; default `<workspace>/exports/<run>.zip`)."""
    run = store.get(run_id)
    return export_run(run, store.exports_dir / f"{run.id}.zip" if dest is None else dest)


def export_run(run: Run, dest: str | os.PathLike) -> Path:
    """Zip a run folder (config, tokenizer, checkpoints, metrics, data/ but its token caches)
    as `<run-id>/...`. `dest` is a zip path or a folder (then `<folder>/<run-id>.zip`). The zip
    is written under a temporary name and renamed, so `dest` is either whole or untouched.
    Checkpoints that fail their manifest here are left out (loading skips them anyway)."""
    raw = os.fspath(dest)
    dest = Path(raw).expanduser()
    if dest.is_dir() or raw.endswith(("/", os.sep)):  # a folder (Path drops the trailing slash)
        dest = dest / f"{run.id}.zip"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise StoreError(f"Cannot write {dest}: {e.strerror or e}.") from None
    try:
        atomic.usual_mode(fd)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for path, rel in _export_files(run):
                    try:
                        z.write(path, f"{run.id}/{rel}")
                    except FileNotFoundError:  # removed meanwhile (a checkpoint being pruned)
                        continue
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StoreError(f"Cannot write {dest}: {e.strerror or e}.") from None
        raise
    atomic.fsync_dir(dest.parent)
    return dest


def _export_files(run: Run):
    """(path, relative posix name) of the files to export: no links, no hidden files or folders
    (temporaries), no token caches in data/, no checkpoint that fails its manifest."""
    manager = CheckpointManager(run.checkpoints_dir)
    for top, dirs, files in os.walk(run.folder):
        here = Path(top)
        rel_dir = here.relative_to(run.folder)
        keep = []
        for d in sorted(dirs):
            p = here / d
            if d.startswith(".") or p.is_symlink():
                continue
            if here == run.checkpoints_dir and _STEP.match(d):
                try:
                    manager.verify(p)
                except (CheckpointError, OSError, ValueError):
                    continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            p = here / name
            if here == run.data_dir and name in TOKEN_CACHES:
                continue
            if not name.startswith(".") and not p.is_symlink() and p.is_file():
                yield p, (rel_dir / name).as_posix()


# --------------------------------------------------------------------------- import


def import_run(store, archive: str | os.PathLike, *, max_bytes: int = MAX_BYTES,
               max_files: int = MAX_FILES, max_other: int = MAX_OTHER) -> Run:
    """Check and unpack a zip written by `export_run` into `store`; returns the new Run.

    The run keeps its id, or gets a new unique one if that id is taken (nothing is overwritten).
    Any problem raises a StoreError with a one-line reason, and leaves the workspace as it was.
    """
    store.require_writable()
    archive = Path(archive).expanduser()
    label = archive.name
    try:
        zf = zipfile.ZipFile(archive, "r")
    except FileNotFoundError:
        raise StoreError(f"No such file: {archive}.") from None
    except IsADirectoryError:
        raise StoreError(f"{archive} is a folder, not a zip archive.") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise StoreError(f"{label} is not a zip archive.") from None
    except OSError as e:
        raise StoreError(f"Cannot read {archive}: {e.strerror or e}.") from None
    _clean_leftovers(store.runs_dir)
    with zf:
        root, plan, declared = _check_entries(zf, label, max_bytes, max_files, max_other)
        try:
            free = shutil.disk_usage(store.runs_dir).free
        except OSError:
            free = None
        if free is not None and declared + FREE_MARGIN > free:
            raise StoreError(f"{label} unpacks to {declared:,} bytes; the workspace's disk has {free:,} free, and "
                             f"{FREE_MARGIN // 2**20} MiB must stay free; refused.")
        tmp = store.runs_dir / f".import-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            payload = tmp / "run"  # nested: a half-unpacked run never looks like a run folder
            payload.mkdir()
            _extract(zf, plan, payload, label, max_bytes)
            _check_run(payload, label)
            run_id = _free_id(store.runs_dir, root)
            final = store.runs_dir / run_id
            if final.exists():  # taken meanwhile: rename must never replace anything
                raise StoreError(f"A run {run_id} appeared while importing; try again.")
            os.rename(payload, final)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):  # a full disk, a file where a folder should be...
                raise StoreError(f"Cannot import {label}: {e.strerror or e}.") from None
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    atomic.fsync_dir(store.runs_dir)
    run = Run(final)
    try:
        store.sync(run)
    except (sqlite3.Error, OSError) as e:  # not in the catalog: take the folder back out
        trash = final.with_name(f".deleted-{run_id}")
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
        raise StoreError(f"Cannot register the imported run in the catalog: {e}.") from None
    return run


def _clean_leftovers(runs_dir: Path) -> None:
    """Remove temporary folders of imports whose process died (power loss, SIGKILL)."""
    for p in runs_dir.glob(".import-*"):
        try:
            pid = int(p.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _parts(name: str, label: str) -> list[str]:
    """An entry name as safe path components, or a StoreError saying why it is refused."""
    if "\x00" in name:
        raise StoreError(f"{label}: an entry name contains a NUL character; refused.")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise StoreError(f"{label}: entry '{name}' has an absolute path; refused.")
    parts = [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]
    if ".." in parts:
        raise StoreError(f"{label}: entry '{name}' points outside its folder ('..'); refused.")
    if not parts:
        raise StoreError(f"{label}: an entry has an empty name; refused.")
    return parts


def _check_entries(zf: zipfile.ZipFile, label: str, max_bytes: int, max_files: int, max_other: int):
    """Everything that can be checked before unpacking: names, kinds, count, declared sizes and
    compression ratios. Returns (the run folder's name, [(info, parts)], declared total)."""
    infos = zf.infolist()
    if len(infos) > max_files:
        raise StoreError(f"{label} holds {len(infos):,} entries, more than the {max_files:,} allowed.")
    root, seen, total, packed, other, plan = None, set(), 0, 0, 0, []
    for info in infos:
        parts = _parts(info.filename, label)
        kind = stat.S_IFMT(info.external_attr >> 16)  # Unix file type; 0 where the zip tool gave none
        if kind == stat.S_IFLNK:
            raise StoreError(f"{label}: entry '{info.filename}' is a symbolic link; links are refused.")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise StoreError(f"{label}: entry '{info.filename}' is not a regular file; refused.")
        if info.flag_bits & 0x1:
            raise StoreError(f"{label}: entry '{info.filename}' is encrypted; refused.")
        if root is None:
            root = parts[0]
        if parts[0] != root or (len(parts) == 1 and not info.is_dir()):
            raise StoreError(f"{label} is not a run export: everything must be inside one run folder.")
        key = "/".join(parts).casefold()
        if key in seen:
            raise StoreError(f"{label}: entry '{info.filename}' appears twice; refused.")
        seen.add(key)
        total += info.file_size
        packed += info.compress_size
        if total > max_bytes:
            raise StoreError(f"{label} unpacks to more than {max_bytes:,} bytes (the limit); refused.")
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * info.compress_size:
            raise StoreError(f"{label}: entry '{info.filename}' expands {info.file_size // max(1, info.compress_size):,}"
                             f":1, more than the {MAX_RATIO}:1 allowed; refused.")
        other += 0 if _is_weights(parts) else info.file_size
        if other > max_other:
            raise StoreError(f"{label}: its files besides the weights unpack to more than {max_other:,} bytes "
                             "(the limit); refused.")
        plan.append((info, parts))
    if root is None or f"{root}/config.json".casefold() not in seen:
        raise StoreError(f"{label} is not a run export (no <run>/config.json inside).")
    if total > RATIO_FROM and total > MAX_RATIO * packed:
        raise StoreError(f"{label} expands {total // max(1, packed):,}:1, more than the {MAX_RATIO}:1 allowed; refused.")
    return root, plan, total


def _is_weights(parts: list[str]) -> bool:
    """A checkpoint's weights or optimizer state, the run's model.keras, data/'s arrays or a weight
    snapshot: the files that grow with the model or the data (everything else is capped by
    `max_other`; all of them by the compression ratio and the free space)."""
    from desktop_llm.core.snapshots import NAME

    return (parts[1:] == ["model.keras"] or (len(parts) == 3 and parts[1] == "data" and parts[2].endswith(".npz"))
            or (len(parts) == 3 and parts[1] == "snapshots" and bool(NAME.fullmatch(parts[2])))
            or (len(parts) == 4 and parts[1] == "checkpoints" and bool(_STEP.match(parts[2]))
                and parts[3] in WEIGHT_FILES))


def _extract(zf: zipfile.ZipFile, plan, payload: Path, label: str, max_bytes: int) -> None:
    """Unpack, counting the bytes really produced against each entry's declared size and the cap."""
    base = payload.resolve()
    written = 0
    for info, parts in plan:
        target = payload.joinpath(*parts[1:])
        if not target.resolve().is_relative_to(base):  # cannot happen after _parts; belt and braces
            raise StoreError(f"{label}: entry '{info.filename}' points outside its folder; refused.")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with zf.open(info) as src, open(target, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size:
                        raise StoreError(f"{label}: entry '{info.filename}' unpacks to more than the "
                                         f"{info.file_size:,} bytes it declares; refused.")
                    if written > max_bytes:
                        raise StoreError(f"{label} unpacks to more than {max_bytes:,} bytes (the limit); refused.")
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        except StoreError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise StoreError(f"{label} is damaged or lies about its contents ({e}); refused.") from None


def _check_run(folder: Path, label: str) -> None:
    """The unpacked run must be a run: a valid config of a known family, checkpoints that are
    what they claim and fit it, sane index and status. The status is reset so that the run does
    not claim a process of another machine."""
    try:
        cfg = RunConfig.from_dict(json.loads((folder / "config.json").read_text("utf-8")))
        cfg.model.validate()  # the shape the weights are loaded into
        steps = cfg.training.max_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"max steps must be a positive whole number (got {steps})")
        # The smallest model the config builds (a vocabulary of one: the tokenizer decides the
        # rest, and loading checks it again) must fit in each checkpoint's weights.
        smallest = get_family(cfg.family).estimate(replace(cfg.model, vocabulary_size=1), cfg=cfg).parameters
    except (ConfigError, TypeError, ValueError, AttributeError, OSError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StoreError(f"{label}: config.json is not a valid run configuration ({why}); refused.") from None
    ckpts = folder / "checkpoints"
    if ckpts.exists() and not ckpts.is_dir():
        raise StoreError(f"{label}: 'checkpoints' is a file, not a folder of checkpoints; refused.")
    if ckpts.is_dir():
        manager = CheckpointManager(ckpts)
        for d in sorted(ckpts.iterdir()):
            if d.is_dir() and _STEP.match(d.name):
                _check_checkpoint(manager, d, label, smallest, steps)
        index = ckpts / "index.json"
        if index.exists():
            try:
                names = json.loads(index.read_text("utf-8"))
            except (OSError, ValueError):
                raise StoreError(f"{label}: checkpoints/index.json is unreadable; refused.") from None
            if not isinstance(names, dict) or not all(isinstance(v, str) and _STEP.match(v) for v in names.values()):
                raise StoreError(f"{label}: checkpoints/index.json names something other than a checkpoint; refused.")
    st = _read_json(folder / "status.json")
    st = st if isinstance(st, dict) else {}
    st.pop("pid", None)  # a process of the machine it came from
    if st.get("status") in ACTIVE:
        st["status"] = "interrupted"
        st["message"] = "Exported while training; resume it to continue."
    st["imported"] = time.time()
    st["imported_from"] = label
    atomic.write_json(folder / "status.json", st)
    try:
        row = Run(folder).record()
    except Exception as e:  # noqa: BLE001 - whatever is wrong, the run is refused, not half-imported
        raise StoreError(f"{label}: the run's status or metrics are unreadable ({type(e).__name__}); refused.") from None
    types = {"name": str, "status": str, "message": str, "summary": str, "step": int, "max_steps": int,
             "created": (int, float), "updated": (int, float), "duration": (int, float),
             "best_val_loss": (int, float, type(None)), "last_loss": (int, float, type(None)),
             "tokens_per_sec": (int, float, type(None))}
    bad = [k for k, t in types.items() if isinstance(row.get(k), bool) or not isinstance(row.get(k), t)]
    if bad:
        raise StoreError(f"{label}: the run's status or metrics hold invalid values ({', '.join(bad)}); refused.")


def _check_checkpoint(manager: CheckpointManager, folder: Path, label: str, smallest: int, max_steps: int) -> None:
    manifest = _read_json(folder / MANIFEST)
    where = f"{label}: checkpoint {folder.name}"
    if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
        raise StoreError(f"{where} has no readable manifest; refused.")
    for name in manifest:
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise StoreError(f"{where}: its manifest names '{name}', not a file of the checkpoint; refused.")
    present = {p.name for p in folder.iterdir()} - {MANIFEST}
    if missing := {WEIGHTS, STATE} - set(manifest):
        raise StoreError(f"{where}: its manifest does not cover {', '.join(sorted(missing))}; refused.")
    if extra := present - set(manifest):
        raise StoreError(f"{where} holds files its manifest does not list ({', '.join(sorted(extra))}); refused.")
    try:
        step = manager.verify(folder)["step"]
        weights = stored_weights(folder / WEIGHTS)
        optimizer = stored_optimizer(folder / OPTIMIZER) if (folder / OPTIMIZER).exists() else 0
    except CheckpointError as e:
        raise StoreError(f"{label}: checkpoint {e}; refused.") from None
    except (OSError, ValueError):
        raise StoreError(f"{where}: its state is unreadable; refused.") from None
    if step > max_steps:
        raise StoreError(f"{where} is at step {step:,}, past the run's {max_steps:,}; refused.")
    if weights < smallest:
        raise StoreError(f"{where} holds {weights:,} weights, but the model config.json describes needs at least "
                         f"{smallest:,}; refused.")
    if optimizer > 2 * weights + 64:  # AdamW: two moments per weight, and a few counters
        raise StoreError(f"{where}: its optimizer state holds {optimizer:,} values for {weights:,} weights; refused.")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _free_id(runs_dir: Path, root: str) -> str:
    """The archive's run id if free here, else the same with a unique suffix."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", root).strip(".-")[:100] or "imported-run"
    run_id = base
    while (runs_dir / run_id).exists() or (runs_dir / run_id).is_symlink():
        run_id = f"{base}-imported-{secrets.token_hex(2)}"
    return run_id
