"""Sharing runs: export, and import of archives from elsewhere treated as hostile (real zips,
a real tiny trained run)."""

import hashlib
import io
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.store import RunStore, StoreError
from desktop_llm.store.sharing import export_zip, import_run

TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16)


def _config(corpus, steps):
    t = TrainConfig(max_steps=steps, batch_size=8, eval_interval=20, eval_batches=2, log_interval=10,
                    warmup_steps=5, learning_rate=3e-3, min_learning_rate=3e-4, sample_tokens=0)
    return RunConfig(name="shared", data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                     model=TINY, training=t)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shakespeare_small):
    """A run trained for 20 steps (one checkpoint) in workspace A, exported to the default place."""
    from desktop_llm.core.training import train_run

    home = tmp_path_factory.mktemp("ws-a")
    store = RunStore(home)
    run = store.create(_config(shakespeare_small, steps=20))
    st = train_run(run, store=store)
    assert st["status"] == "completed", st
    zip_path = export_zip(store, run.id)
    return store, run, zip_path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write_zip(path: Path, entries) -> Path:
    """entries: (name or ZipInfo, bytes) pairs, written as given."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return path


def _workspace_state(store: RunStore):
    return sorted(p.name for p in store.runs_dir.iterdir()), [r["id"] for r in store.list()]


def test_export_import_round_trip(exported, tmp_path):
    from desktop_llm.core.evaluation import evaluate_text
    from desktop_llm.core.loading import load_for_inference

    store_a, run, zip_path = exported
    assert zip_path == store_a.home / "exports" / f"{run.id}.zip"  # the default place
    assert not [p for p in zip_path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    names = _entries(zip_path)
    assert all(n.startswith(f"{run.id}/") for n in names)
    assert not any(n.startswith(f"{run.id}/data/") for n in names)  # token caches stay home
    before = _sha(zip_path)

    store_b = RunStore(tmp_path / "ws-b")
    imported = import_run(store_b, zip_path)
    assert _sha(zip_path) == before  # the user's zip is only read
    assert imported.id == run.id
    assert [r["id"] for r in store_b.list()] == [run.id]
    assert imported.config == run.config
    assert imported.metrics() == run.metrics()
    assert imported.status()["status"] == "completed"
    src_ckpts = sorted(p.relative_to(run.folder) for p in run.checkpoints_dir.rglob("*") if p.is_file())
    dst_ckpts = sorted(p.relative_to(imported.folder) for p in imported.checkpoints_dir.rglob("*") if p.is_file())
    assert src_ckpts == dst_ckpts and src_ckpts
    assert all(_sha(run.folder / p) == _sha(imported.folder / p) for p in src_ckpts)
    assert not [p for p in store_b.runs_dir.iterdir() if p.name.startswith(".")]  # no temporary left

    model_a, tok_a, ckpt_a = load_for_inference(run)
    model_b, tok_b, ckpt_b = load_for_inference(imported)
    assert ckpt_b.step == ckpt_a.step == 20
    text = "ROMEO: what light"
    assert evaluate_text(model_b, tok_b, text)[0].loss == pytest.approx(evaluate_text(model_a, tok_a, text)[0].loss)


def test_an_id_that_exists_is_imported_under_a_new_one(exported):
    store_a, run, zip_path = exported
    before = {p.name: _sha(p) for p in run.folder.rglob("*") if p.is_file()}
    again = import_run(store_a, zip_path)  # into the workspace it came from
    try:
        assert again.id != run.id and again.id.startswith(run.id)
        assert {p.name: _sha(p) for p in run.folder.rglob("*") if p.is_file()} == before  # untouched
        assert again.config == run.config
        assert {r["id"] for r in store_a.list()} >= {run.id, again.id}
    finally:
        store_a.delete(again.id)


def test_an_active_status_from_elsewhere_is_not_trusted(exported, tmp_path):
    _, run, zip_path = exported
    entries = _entries(zip_path)
    st = json.loads(entries[f"{run.id}/status.json"])
    st.update(status="running", pid=os.getpid())  # a pid that is alive here
    entries[f"{run.id}/status.json"] = json.dumps(st).encode()
    store = RunStore(tmp_path / "ws")
    imported = import_run(store, _write_zip(tmp_path / "running.zip", entries.items()))
    status = imported.status()
    assert status["status"] == "interrupted" and "pid" not in status
    store.delete(imported.id)  # an active run could not be deleted


def test_leftovers_of_a_killed_import_are_cleaned(exported, tmp_path):
    _, _, zip_path = exported
    store = RunStore(tmp_path / "ws")
    dead = store.runs_dir / ".import-999999999-dead"  # no such process
    (dead / "run").mkdir(parents=True)
    live = store.runs_dir / f".import-{os.getpid()}-live"  # an import in progress here
    live.mkdir()
    import_run(store, zip_path)
    assert not dead.exists() and live.exists()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _patch_declared_size(path: Path, name: str, size: int) -> None:
    """Make an entry's headers (local and central) lie about its unpacked size."""
    data = bytearray(path.read_bytes())
    raw = name.encode()
    for sig, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        i = data.find(sig)
        while i != -1:
            if data[i + name_at:i + name_at + len(raw)] == raw:
                struct.pack_into("<I", data, i + size_at, size)
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))


def _tampered(entries: dict[str, bytes], run_id: str) -> list:
    name = next(n for n in entries if n.startswith(f"{run_id}/checkpoints/step-") and n.endswith(".h5"))
    data = bytearray(entries[name])
    data[len(data) // 2] ^= 0xFF
    return [(n, bytes(data) if n == name else b) for n, b in entries.items()]


def _step_dir(entries: dict[str, bytes]) -> str:
    return next(n.rsplit("/", 1)[0] for n in entries if n.endswith("/manifest.json"))


def _rehashed(entries: dict[str, bytes], **files: bytes) -> list:
    """The checkpoint's files replaced (by name: weights=..., state=..., optimizer=...) and its
    manifest recomputed to match: a checkpoint that lies about what it is, not a damaged one."""
    names = {"weights": "model.weights.h5", "state": "state.json", "optimizer": "optimizer.npz"}
    ckpt = _step_dir(entries)
    out = {**entries, **{f"{ckpt}/{names[k]}": v for k, v in files.items()}}
    manifest = json.loads(entries[f"{ckpt}/manifest.json"])
    out[f"{ckpt}/manifest.json"] = json.dumps(
        {n: hashlib.sha256(out[f"{ckpt}/{n}"]).hexdigest() for n in manifest}).encode()
    return list(out.items())


def _with_config(entries: dict[str, bytes], run_id: str, family=None, **model) -> list:
    cfg = json.loads(entries[f"{run_id}/config.json"])
    cfg["model"].update(model)
    if family:
        cfg["family"] = family
    return list({**entries, f"{run_id}/config.json": json.dumps(cfg).encode()}.items())


def _state(entries: dict[str, bytes], step) -> bytes:
    return json.dumps({**json.loads(entries[_step_dir(entries) + "/state.json"]), "step": step}).encode()


def _npz(save=np.savez, **arrays) -> bytes:
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


def _hollow_weights() -> bytes:
    """A valid HDF5 file whose one array declares 40 MB that the file does not hold."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("layers/gpt_backbone/vars/0", shape=(10_000_000,), dtype="float32", chunks=True)
    return buf.getvalue()


def _zeros_archive(run_id: str, entries: dict[str, bytes], folder: Path) -> Path:
    """A run's config and three members of just under 1 MiB of zeros each (none over the per-entry
    threshold, none counted against the cap on other files): 3 MB from a few kB."""
    keep = [(f"{run_id}/config.json", entries[f"{run_id}/config.json"])]
    return _write_zip(folder / "a.zip", [*keep, *((f"{run_id}/tensorboard/z{i}", b"\0" * 1_000_000)
                                               for i in range(3))])


HOSTILE = {
    # name: (build(entries, run_id, folder) -> zip path, limits, expected message)
    "dotdot": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (f"{r}/../../evil", b"x")]),
               {}, "points outside"),
    "absolute": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), ("/tmp/evil", b"x")]),
                 {}, "absolute path"),
    "symlink": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (_symlink(f"{r}/link"), b"/etc/passwd")]),
                {}, "symbolic link"),
    "declared size": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (f"{r}/big.bin", b"\0" * 3_000_000)]),
                      {"max_bytes": 2_000_000}, "more than 2,000,000 bytes"),
    "lying size": (lambda e, r, d: _lying(e, r, d), {"max_bytes": 2_000_000}, "lies about its contents"),
    "too many files": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), *((f"{r}/f{i}", b"") for i in range(30))]),
                       {"max_files": 25}, "more than the 25 allowed"),
    "tampered checkpoint": (lambda e, r, d: _write_zip(d / "a.zip", _tampered(e, r)), {}, "checksum mismatch"),
    "extra checkpoint file": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (
        next(n.rsplit("/", 1)[0] for n in e if n.endswith("manifest.json")) + "/extra.h5", b"x")]),
        {}, "does not list (extra.h5)"),
    "index outside": (lambda e, r, d: _write_zip(d / "a.zip", {**e, f"{r}/checkpoints/index.json": (
        b'{"latest": "../../../x", "best": "/etc"}')}.items()), {}, "other than a checkpoint"),
    "duplicate entry": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (f"{r}/config.json", b"{}")]),
                        {}, "appears twice"),
    "two runs": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), ("other/config.json", b"{}")]),
                 {}, "one run folder"),
    "not a zip": (lambda e, r, d: _not_a_zip(d / "a.zip"), {}, "not a zip archive"),
    # issue 26 item 20: a config that claims a shape its weights do not have, refused before any build
    "10,000 layers": (lambda e, r, d: _write_zip(d / "a.zip", _with_config(e, r, num_layers=10_000)),
                      {}, "model config.json describes needs at least"),
    "context 10^9": (lambda e, r, d: _write_zip(d / "a.zip", _with_config(e, r, sequence_length=10**9)),
                     {}, "model config.json describes needs at least"),
    "width 2^20": (lambda e, r, d: _write_zip(d / "a.zip", _with_config(e, r, hidden_dim=2**20)),
                   {}, "model config.json describes needs at least"),
    "unknown family": (lambda e, r, d: _write_zip(d / "a.zip", _with_config(e, r, family="telepathy")),
                       {}, "Unknown model family 'telepathy'"),
    "step past the run": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(e, state=_state(e, 10**12))),
                          {}, "past the run's 20"),
    "step not a number": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(e, state=_state(e, "20"))),
                          {}, "names no step"),
    "hollow weights": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(e, weights=_hollow_weights())),
                       {}, "declares 40,000,000 bytes of arrays"),
    "optimizer object array": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(
        e, optimizer=_npz(v0000=np.array([{"x": 1}], dtype=object)))), {}, "not a plain stored numeric array"),
    "optimizer compressed": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(
        e, optimizer=_npz(np.savez_compressed, v0000=np.zeros(1000, np.float32)))), {}, "not a plain stored"),
    "optimizer too large": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(
        e, optimizer=_npz(v0000=np.zeros(100_000, np.float32)))), {}, "optimizer state holds 100,000 values"),
    # item 21: checkpoints that are not what they claim
    "weights not HDF5": (lambda e, r, d: _write_zip(d / "a.zip", _rehashed(e, weights=b"not HDF5 " * 1000)),
                         {}, "is not an HDF5 weights file"),
    "checkpoints a file": (lambda e, r, d: _write_zip(d / "a.zip", [
        *((n, b) for n, b in e.items() if "/checkpoints/" not in n), (f"{r}/checkpoints", b"x")]),
        {}, "'checkpoints' is a file"),
    # item 22: zip bombs, refused from what the archive declares, before anything is written
    "bomb entry": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (f"{r}/tensorboard/b", b"\0" * 3_000_000)]),
                   {}, "tensorboard/b' expands"),
    "bomb archive": (lambda e, r, d: _zeros_archive(r, e, d), {}, "a.zip expands"),
    "other files": (lambda e, r, d: _write_zip(d / "a.zip", [*e.items(), (f"{r}/notes.bin", random.Random(0).randbytes(1_500_000))]),
                    {"max_other": 1_000_000}, "besides the weights unpack to more than 1,000,000 bytes"),
}


def _not_a_zip(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 not really a zip")
    return path


def _lying(entries, run_id, folder):
    """Declares 100 bytes (well under the cap) for an entry that unpacks to 3 MB (over it)."""
    path = _write_zip(folder / "a.zip", [*entries.items(), (f"{run_id}/bomb.bin", b"\0" * 3_000_000)])
    _patch_declared_size(path, f"{run_id}/bomb.bin", 100)
    with zipfile.ZipFile(path) as z:
        assert sum(i.file_size for i in z.infolist()) < 2_000_000  # the headers do lie
    return path


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archives_are_refused_and_leave_nothing(exported, tmp_path, case):
    _, run, zip_path = exported
    build, limits, message = HOSTILE[case]
    store = RunStore(tmp_path / "ws")
    state = _workspace_state(store)
    archive = build(_entries(zip_path), run.id, tmp_path)
    before = _sha(archive)
    with pytest.raises(StoreError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        import_run(store, archive, **limits)
    assert "\n" not in str(err.value)  # one line
    assert _workspace_state(store) == state  # no folder, no temporary, no catalog row
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path / "evil").exists()
    assert _sha(archive) == before


def test_the_cap_on_other_files_leaves_the_weights_out(exported, tmp_path):
    """Checkpoints and model.keras grow with the model: only the rest counts against max_other."""
    _, run, zip_path = exported
    with zipfile.ZipFile(zip_path) as z:
        sizes = {i.filename: i.file_size for i in z.infolist()}
    weights = sum(v for n, v in sizes.items() if n.endswith((".h5", ".npz", "/model.keras")))
    other = sum(sizes.values()) - weights
    assert weights > other
    store = RunStore(tmp_path / "ws")
    assert import_run(store, zip_path, max_other=other).id == run.id
    with pytest.raises(StoreError, match="besides the weights"):
        import_run(store, zip_path, max_other=other - 1)


def test_an_import_keeps_a_margin_of_free_space(exported, tmp_path, monkeypatch):
    from desktop_llm.store import sharing

    _, _, zip_path = exported
    with zipfile.ZipFile(zip_path) as z:
        declared = sum(i.file_size for i in z.infolist())
    store = RunStore(tmp_path / "ws")
    state = _workspace_state(store)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=declared + sharing.FREE_MARGIN - 1))
    with pytest.raises(StoreError, match="MiB must stay free"):  # it fits, but would leave the disk all but full
        import_run(store, zip_path)
    assert _workspace_state(store) == state


def _copy_run(run, folder: Path):
    from desktop_llm.store.runs import Run

    shutil.copytree(run.folder, folder)
    return Run(folder)


def _rehash_folder(ckpt: Path) -> None:
    names = json.loads((ckpt / "manifest.json").read_text())
    (ckpt / "manifest.json").write_text(json.dumps({n: _sha(ckpt / n) for n in names}))


def test_loading_falls_back_from_a_checkpoint_that_is_not_hdf5(exported, tmp_path):
    """Weights that are not HDF5 under a recomputed manifest (issue 26 item 21): the previous good
    checkpoint is loaded, as training's resume does; with none left, one line."""
    from desktop_llm.core.loading import NoCheckpoint, load_for_inference

    _, run, _ = exported
    copy = _copy_run(run, tmp_path / "copy")
    latest = next(copy.checkpoints_dir.glob("step-*"))
    earlier = copy.checkpoints_dir / "step-0000010"
    shutil.copytree(latest, earlier)
    (earlier / "state.json").write_text(json.dumps({**json.loads((latest / "state.json").read_text()), "step": 10}))
    _rehash_folder(earlier)
    (latest / "model.weights.h5").write_bytes(b"not HDF5 " * 1000)
    _rehash_folder(latest)
    model, _, ckpt = load_for_inference(copy, "latest")
    assert ckpt.step == 10 and model is not None
    shutil.rmtree(earlier)
    with pytest.raises(NoCheckpoint, match="not an HDF5 weights file") as e:
        load_for_inference(copy, "best")
    assert "\n" not in str(e.value)
    shutil.rmtree(copy.checkpoints_dir)
    copy.checkpoints_dir.write_text("x")  # a file where the folder should be
    with pytest.raises(NoCheckpoint, match="has no checkpoint yet"):
        load_for_inference(copy, "best")


def test_loading_refuses_a_shape_its_weights_cannot_hold_before_building(exported, tmp_path, monkeypatch):
    """A config edited in the workspace (or imported before these checks) to 10,000 layers is
    refused from the weights file's array sizes: nothing is built (issue 26 item 20)."""
    from desktop_llm.core.loading import NoCheckpoint, load_for_inference
    from desktop_llm.core.models import get_family

    _, run, _ = exported
    copy = _copy_run(run, tmp_path / "copy")
    cfg = json.loads((copy.folder / "config.json").read_text())
    cfg["model"]["num_layers"] = 10_000
    (copy.folder / "config.json").write_text(json.dumps(cfg))
    family = type(get_family(cfg["family"]))

    def build(*a, **k):
        raise AssertionError("a model was built")

    monkeypatch.setattr(family, "build_for_run", build)
    with pytest.raises(NoCheckpoint, match="do not fit"):
        load_for_inference(copy)


def test_a_tokenizer_or_config_that_does_not_fit_names_the_sizes(exported, tmp_path):
    """A tokenizer replaced by one of another vocabulary read "made by an earlier version, or
    edited?" (issue 26 item 26): the message names both sizes, and an edited width its shapes."""
    from desktop_llm.core.loading import NoCheckpoint, load_for_inference, load_tokenizer
    from desktop_llm.core.tokenizers import train_tokenizer

    _, run, _ = exported
    trained = load_tokenizer(run.tokenizer_dir).vocabulary_size
    copy = _copy_run(run, tmp_path / "tok")
    shutil.rmtree(copy.tokenizer_dir)
    other = train_tokenizer("char", ["abcdefghij klmnop"])
    other.save(copy.tokenizer_dir)
    assert other.vocabulary_size != trained
    with pytest.raises(NoCheckpoint) as e:
        load_for_inference(copy)
    assert f"tokenizer has {other.vocabulary_size} tokens, but its checkpoints were trained with {trained}" in str(e.value)
    copy = _copy_run(run, tmp_path / "width")
    cfg = json.loads((copy.folder / "config.json").read_text())
    cfg["model"]["intermediate_dim"] //= 2  # fewer weights than stored: it builds, then does not fit
    (copy.folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(NoCheckpoint, match=r"weights of shape \(.*\) stored, \(.*\) described") as e:
        load_for_inference(copy)
    assert "earlier version" not in str(e.value)


def test_cli_generate_on_weights_that_are_not_hdf5_is_one_line(exported, tmp_path):
    _, run, zip_path = exported
    home = tmp_path / "ws"
    imported = import_run(RunStore(home), zip_path)
    for ckpt in imported.checkpoints_dir.glob("step-*"):
        (ckpt / "model.weights.h5").write_bytes(b"not HDF5 " * 1000)
        _rehash_folder(ckpt)
    p = _cli("generate", run.id, "--prompt", "RO", home=home)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("error: ") and "not an HDF5 weights file" in lines[0]


def test_export_writes_where_it_is_told(exported, tmp_path):
    store, run, _ = exported
    out = export_zip(store, run.id, tmp_path / "new folder" / "mine.zip")
    assert out == tmp_path / "new folder" / "mine.zip" and zipfile.is_zipfile(out)
    assert export_zip(store, run.id, tmp_path) == tmp_path / f"{run.id}.zip"  # a folder: <run>.zip in it
    assert not [p for p in (tmp_path / "new folder").iterdir() if p.name != "mine.zip"]


def _cli(*args, home):
    env = dict(os.environ)
    env.pop("DESKTOP_LLM_HOME", None)
    return subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_cli_import_export_show_and_a_refusal(exported, tmp_path):
    _, run, zip_path = exported
    home = tmp_path / "ws"
    evil = _write_zip(tmp_path / "evil.zip", [*_entries(zip_path).items(), (f"{run.id}/../evil", b"x")])
    p = _cli("runs", "import", str(evil), home=home)
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in p.stderr, p.stderr
    assert "outside" in lines[0]
    assert not list((home / "runs").iterdir())

    p = _cli("runs", "import", str(zip_path), home=home)
    assert p.returncode == 0, p.stderr
    assert run.id in p.stdout
    shown = json.loads(_cli("runs", "show", "--json", home=home).stdout)  # no id: the newest run
    assert shown["id"] == run.id and shown["status"] == "completed"
    card = {line[:10].strip(): line[11:] for line in _cli("runs", "show", home=home).stdout.splitlines()[:-1]}
    assert card["run"] == run.id and card["status"].startswith("completed at step")
    assert card["tokenizer"] == f"{shown['config']['tokenizer']['kind']}, {shown['vocabulary_size']:,} tokens"
    assert card["model"].endswith(f"{shown['parameters'] / 1e6:.2f} M parameters")
    assert f"loss {shown['best_val_loss']:.4f} (perplexity" in card["best val"]
    p = _cli("runs", "export", run.id, home=home)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"exported to {home / 'exports' / (run.id + '.zip')}"
    p = _cli("runs", "export", run.id, "--out", str(tmp_path / "x.zip"), home=home)
    assert p.returncode == 0 and (tmp_path / "x.zip").exists(), p.stderr
    p = _cli("runs", "show", home=tmp_path / "empty")
    assert p.returncode == 2 and p.stderr.startswith("error: No runs yet")


def test_zip_building_helpers_make_what_they_claim(tmp_path):
    """The hostile archives really hold what their names say (guards the tests themselves)."""
    z = _write_zip(tmp_path / "s.zip", [(_symlink("r/link"), b"/etc/passwd"), ("/abs", b""), ("r/../x", b"")])
    with zipfile.ZipFile(z) as f:
        infos = f.infolist()
    assert stat.S_ISLNK(infos[0].external_attr >> 16)
    assert [i.filename for i in infos[1:]] == ["/abs", "r/../x"]


def test_what_is_written_gets_the_usual_file_mode(tmp_path):
    """Files written atomically (run files, exports) and export zips were mode 0600 (mkstemp's):
    another user, or a tool run as another account, could not read an export."""
    from desktop_llm.core import atomic

    umask = os.umask(0o022)
    os.umask(umask)
    atomic.write_text(tmp_path / "a.json", "{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask
    store = RunStore(tmp_path / "ws")
    run = store.create(RunConfig(name="r", data=DataConfig(paths=("x.txt",))))
    zipped = export_zip(store, run.id, tmp_path / "r.zip")
    assert stat.S_IMODE(zipped.stat().st_mode) == 0o666 & ~umask
