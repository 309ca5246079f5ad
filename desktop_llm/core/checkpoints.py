"""Checkpoints: model weights, optimizer state and training state, written atomically.

Each checkpoint is an immutable folder `step-0000500/` (built under a temporary name, then
renamed) with a manifest of SHA-256 checksums. `index.json` (also atomic) names the latest and
the best. Loading verifies the checksums and falls back to the previous good checkpoint, so a
truncated or corrupt file never loses more than one checkpoint interval.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_llm.core import atomic
from desktop_llm.errors import DesktopLLMError

WEIGHTS = "model.weights.h5"
OPTIMIZER = "optimizer.npz"
STATE = "state.json"
MANIFEST = "manifest.json"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # where Keras (h5py) writes it: the file's first bytes


class CheckpointError(DesktopLLMError, RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _InMemoryWeightsFile(io.BytesIO):
    """An in-memory file that `model.save_weights` takes for a `.weights.h5` path.

    Keras 3.15's public `save_weights` (`saving_api.save_weights`, then
    `saving_lib.save_weights_only`, under src/saving/ in the keras package) checks only that
    `str(filepath)` ends in `.weights.h5`, expects `os.path.exists` to raise TypeError for an
    object that is not a path, and hands the object to its HDF5 store (`H5IOStore`), which h5py
    writes into an `io.BytesIO` in memory. The name below cannot be created (its folder would be
    /dev/null): should a later Keras turn the object into a path string, the save fails at once
    instead of sending HDF5 to the disk. tests/core/test_public_api.py checks that the bytes are
    what `save_weights` writes to a file and that they load back.
    """

    def __str__(self) -> str:
        return "/dev/null/in-memory.weights.h5"

    __repr__ = __str__


def weights_bytes(model) -> bytes:
    """The model's weights as the bytes of a Keras `.weights.h5` file, built in memory.

    HDF5 writing straight to a disk that fills up crashes the process (a segmentation fault in
    h5py's File.close after a failed write, measured under RLIMIT_FSIZE), so HDF5 never touches
    the disk: the bytes are written by plain Python I/O, whose failure is a clean OSError.
    `model.save_weights` itself writes them, into an in-memory file (above), so the file is
    Keras' own, byte for byte, and `model.load_weights` reads it as usual.
    """
    buf = _InMemoryWeightsFile()
    model.save_weights(buf)
    return buf.getvalue()


@dataclass
class Checkpoint:
    folder: Path
    state: dict

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS


class CheckpointManager:
    def __init__(self, folder: str | os.PathLike, keep: int = 2):
        self.folder = Path(folder)
        self.keep = keep
        self.notes: list[str] = []  # messages about checkpoints skipped as damaged

    # ------------------------------------------------------------------ writing
    def save(self, model, optimizer, state: dict, best: bool = False) -> Checkpoint:
        step = int(state["step"])
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:07d}"
        final = self.folder / name
        tmp = self.folder / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            with open(tmp / WEIGHTS, "wb") as f:
                f.write(weights_bytes(model))
            if optimizer is not None and optimizer.built:
                arrays = {f"v{i:04d}": a for i, a in enumerate(optimizer_arrays(optimizer))}
                with open(tmp / OPTIMIZER, "wb") as f:
                    np.savez(f, **arrays)
            state = dict(state, saved=time.time())
            (tmp / STATE).write_text(json.dumps(state, indent=2))
            manifest = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            for p in tmp.iterdir():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic.fsync_dir(self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        index = self._index()
        index["latest"] = name
        if best or "best" not in index:
            index["best"] = name
        atomic.write_json(self.folder / "index.json", index)
        self._prune(index)
        return Checkpoint(final, state)

    def _index(self) -> dict:
        try:
            return json.loads((self.folder / "index.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def _prune(self, index: dict) -> None:
        steps = self._all()
        protect = {index.get("best"), index.get("latest")} | {p.name for p in steps[-self.keep:]}
        for p in steps:
            if p.name not in protect:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.folder.glob(".tmp-*"):  # leftovers of a crash mid-save
            if not p.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(p, ignore_errors=True)

    def _all(self) -> list[Path]:
        if not self.folder.is_dir():  # missing, or a file where the folder should be
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith("step-"))

    # ------------------------------------------------------------------ reading
    def verify(self, folder: Path) -> dict:
        """Check a checkpoint's files against its manifest; returns its state or raises."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            raise CheckpointError(f"{folder.name}: manifest missing or unreadable") from None
        for name, digest in manifest.items():
            p = folder / name
            if not p.exists():
                raise CheckpointError(f"{folder.name}: {name} is missing")
            if _sha256(p) != digest:
                raise CheckpointError(f"{folder.name}: {name} is damaged (checksum mismatch)")
        # A manifest proves only that the files are the ones it lists (it can be recomputed for
        # anything): the weights must also be HDF5 and the state name its step.
        with open(folder / WEIGHTS, "rb") as f:
            if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                raise CheckpointError(f"{folder.name}: {WEIGHTS} is not an HDF5 weights file")
        state = json.loads((folder / STATE).read_text())
        step = state.get("step") if isinstance(state, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise CheckpointError(f"{folder.name}: {STATE} names no step")
        return state

    def candidates(self, which: str = "latest") -> list[Path]:
        """Checkpoints to try, best guess first: the indexed one, then newest to oldest."""
        all_ = list(reversed(self._all()))
        named = self._index().get(which)
        order = [self.folder / named] if named else []
        return order + [p for p in all_ if p not in order]

    def find(self, which: str = "latest") -> Checkpoint | None:
        """The newest checkpoint (or the best) that passes verification; notes any skipped."""
        return next(self.verified(which), None)

    def verified(self, which: str = "latest"):
        """The checkpoints that pass verification, best guess first (loading falls back along
        them); notes any skipped."""
        self.notes = []
        for folder in self.candidates(which):
            if not folder.is_dir():
                continue
            try:
                ckpt = Checkpoint(folder, self.verify(folder))
            except (CheckpointError, OSError, ValueError) as e:
                self.notes.append(f"Skipped damaged checkpoint {e}; using an earlier one.")
                continue
            yield ckpt

    @staticmethod
    def restore_optimizer(optimizer, variables, ckpt: Checkpoint) -> bool:
        path = ckpt.folder / OPTIMIZER
        if not path.exists():
            return False
        if not optimizer.built:  # LossScaleOptimizer.build adds its variables again on every call
            optimizer.build(variables)
        with np.load(path) as data:
            values = [data[k] for k in sorted(data.files)]
        target = optimizer
        inner = getattr(optimizer, "inner_optimizer", None)
        size = _state_size(optimizer)
        if len(values) != size and inner is not None and len(values) == _state_size(inner):
            target = inner  # a float32 run resumed in float16: a fresh loss scale
        elif len(values) == size + 4 and inner is None:
            # A float16 run resumed in float32: Keras' LossScaleOptimizer lists its own four
            # variables (iteration, learning rate, step counter, scale) before the inner ones.
            values = values[4:]
        try:
            _load_optimizer_arrays(target, values)
        except ValueError as e:
            raise CheckpointError("The optimizer state does not match this model.") from e
        return True


def stored_weights(path: Path) -> int:
    """The number of model values (optimizer state aside) a weights file really holds, read with
    h5py without building a model, so that a shape that does not fit is refused before a build
    that would run for minutes or exhaust memory. Raises CheckpointError for a file that is not
    HDF5, or declares arrays it does not hold (compressed, external, virtual, or larger than the
    file), or links to other objects or files."""
    import h5py

    where = f"{path.parent.name}: {path.name}"
    values, nbytes, bad = 0, 0, []

    def visit(name, link):
        nonlocal values, nbytes
        if not isinstance(link, h5py.HardLink):
            bad.append(f"{name} is a link")
            return
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.dtype.kind not in "biuf" or obj.compression or obj.external or obj.is_virtual:
                bad.append(f"{name} is not a plain numeric array")
            nbytes += obj.size * obj.dtype.itemsize
            if name.split("/", 1)[0] != "optimizer":
                values += obj.size

    try:
        with h5py.File(path, "r") as f:
            f.visititems_links(visit)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{where} is not a readable weights file ({str(e)[:100]})") from None
    if bad:
        raise CheckpointError(f"{where}: {bad[0]}")
    if nbytes > path.stat().st_size:
        raise CheckpointError(f"{where} declares {nbytes:,} bytes of arrays in a file of {path.stat().st_size:,}")
    return values


def stored_shapes(path: Path) -> list[tuple[int, ...]]:
    """The shapes of a weights file's model arrays (optimizer state aside), read with h5py: to
    say which dimension of a model does not fit its checkpoint. [] where the file cannot be read."""
    import h5py

    shapes: list[tuple[int, ...]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.split("/", 1)[0] != "optimizer":
            shapes.append(tuple(int(d) for d in obj.shape))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return []
    return shapes


def stored_optimizer(path: Path) -> int:
    """The number of values in an optimizer.npz, read from the arrays' headers: uncompressed
    numeric .npy members whose headers match their sizes (np.savez's own output), so that loading
    it later can neither unpickle nor inflate anything."""
    import zipfile

    where = f"{path.parent.name}: {path.name}"
    values = 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(f))
                    header = f.tell()
                size = int(np.prod(shape, dtype=object))
                if (info.compress_type != zipfile.ZIP_STORED or dtype.hasobject or dtype.kind not in "biuf"
                        or info.file_size != header + size * dtype.itemsize):
                    raise CheckpointError(f"{where}: {info.filename} is not a plain stored numeric array")
                values += size
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
        raise CheckpointError(f"{where} is not a readable optimizer state ({str(e)[:100]})") from None
    return values


def optimizer_arrays(optimizer) -> list[np.ndarray]:
    """An optimizer's state as Keras' AdamW lists its variables (also for core.training's
    FusedAdamW, which holds it differently), so checkpoints move between the two."""
    own, inner = _own_and_inner(optimizer)
    if inner is not None:  # a LossScaleOptimizer around FusedAdamW
        return [np.asarray(v.numpy()) for v in own] + inner.state_arrays()
    if hasattr(optimizer, "state_arrays"):
        return optimizer.state_arrays()
    return [np.asarray(v.numpy()) for v in optimizer.variables]


def _state_size(optimizer) -> int:
    """len(optimizer_arrays(optimizer)), without reading the state."""
    own, inner = _own_and_inner(optimizer)
    if inner is not None:
        return len(own) + inner.state_size()
    return optimizer.state_size() if hasattr(optimizer, "state_size") else len(optimizer.variables)


def _load_optimizer_arrays(optimizer, values: list[np.ndarray]) -> None:
    own, inner = _own_and_inner(optimizer)
    if inner is not None:
        _assign(own, values[:len(own)])
        inner.load_state_arrays(values[len(own):])
    elif hasattr(optimizer, "load_state_arrays"):
        optimizer.load_state_arrays(values)
    else:
        _assign(list(optimizer.variables), values)


def _own_and_inner(optimizer):
    """For a LossScaleOptimizer around a FusedAdamW: (its own variables, the FusedAdamW); else
    (None, None)."""
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is None or not hasattr(inner, "state_arrays"):
        return None, None
    return [v for v in optimizer.variables if not any(v is w for w in inner.variables)], inner


def _assign(variables, values) -> None:
    if len(values) != len(variables):
        raise ValueError(f"{len(values)} arrays for {len(variables)} variables")
    for var, val in zip(variables, values):
        var.assign(val)
