"""Sharing runs: export, and import of archives from elsewhere treated as hostile (real zips,
a real tiny trained run)."""

import hashlib
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

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
