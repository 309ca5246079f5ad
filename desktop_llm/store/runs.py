"""Runs: a folder per run plus a row in an SQLite catalog (WAL mode) in the user's data directory.

The folder is the truth: config.json, tokenizer/, data/, checkpoints/, metrics.jsonl and
status.json. The catalog is an index for fast listing and can be rebuilt from the folders at any
time (`RunStore.rebuild`), e.g. after it is deleted or corrupted.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from desktop_llm.core import atomic
from desktop_llm.core.config import DEFAULT_FAMILY, RunConfig
from desktop_llm.errors import DesktopLLMError
from desktop_llm.store import lock

ENV_HOME = "DESKTOP_LLM_HOME"
ACTIVE = ("running", "paused", "starting")
REMOTE_STALE_S = 15 * 60  # a run on another machine silent this long shows as interrupted
_COLUMNS = [
    ("id", "TEXT PRIMARY KEY"),
    ("name", "TEXT"),
    ("created", "REAL"),
    ("updated", "REAL"),
    ("status", "TEXT"),
    ("step", "INTEGER"),
    ("max_steps", "INTEGER"),
    ("best_val_loss", "REAL"),
    ("best_score", "REAL"),  # the figure that chose the best checkpoint, where not the loss (macro-F1)
    ("last_loss", "REAL"),
    ("tokens_per_sec", "REAL"),
    ("duration", "REAL"),
    ("message", "TEXT"),
    ("summary", "TEXT"),
    ("config", "TEXT"),
]


class StoreError(DesktopLLMError, RuntimeError):
    pass


def default_home() -> Path:
    """The workspace: $DESKTOP_LLM_HOME, else the platform's user data directory."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("desktop_llm", appauthor=False))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def row_family(row: dict) -> str:
    """The family of a catalog row (its config; runs from before families are GPT runs)."""
    try:
        return json.loads(row.get("config") or "{}").get("family") or DEFAULT_FAMILY
    except ValueError:
        return DEFAULT_FAMILY


def config_summary(cfg: RunConfig) -> str:
    m = cfg.model
    return (f"{m.num_layers}L {m.num_heads}H d{m.hidden_dim} ctx{m.sequence_length} · "
            f"{cfg.tokenizer.kind} · bs{cfg.training.batch_size}")


class Run:
    """One run folder. Reading never needs the catalog."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.id = self.folder.name

    def lock(self) -> None:
        """Become the run's one writer for the rest of this process's life (store/lock.py), or raise
        StoreError if another process already is: checked before anything else looks at the run."""
        try:
            lock.acquire(self.folder)
        except lock.RunBusy:
            pid = self.status().get("pid")  # (not written yet by a trainer that has only just started)
            raise StoreError(f"Run {self.id} is already training" + (f" (process {pid})." if pid else ".")) from None

    def unlock(self) -> None:
        lock.release(self.folder)

    # paths
    @property
    def config_path(self) -> Path:
        return self.folder / "config.json"

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder / "tokenizer"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def checkpoints_dir(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.jsonl"

    @property
    def status_path(self) -> Path:
        return self.folder / "status.json"

    @property
    def log_path(self) -> Path:
        return self.folder / "train.log"

    def exists(self) -> bool:
        return self.config_path.exists()

    @property
    def config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    def save_config(self, cfg: RunConfig) -> None:
        atomic.write_text(self.config_path, cfg.to_json() + "\n")

    def metrics(self) -> list[dict]:
        return atomic.read_jsonl(self.metrics_path)

    def status(self) -> dict:
        try:
            st = json.loads(self.status_path.read_text("utf-8"))
        except (OSError, ValueError):
            st = {"status": "created" if self.exists() else "missing"}
        remote = st.get("host") not in (None, platform.node())
        if remote:
            # Written by a trainer on another machine (a run folder synced back): its process
            # cannot be checked from here; it is taken as gone once it stops writing for long.
            alive = time.time() - float(st.get("updated") or 0) < REMOTE_STALE_S
        else:
            alive = pid_alive(st.get("pid"))
        if st.get("status") in ACTIVE and not alive:
            st["status"] = "interrupted"
            st.setdefault("message", "")
            st["message"] = st["message"] or "The training process ended without finishing (killed or crashed)."
        return st

    def vocabulary_size(self, status: dict | None = None) -> int | None:
        """The tokenizer's real size (the config says 0: "from the tokenizer")."""
        st = self.status() if status is None else status
        if st.get("vocabulary_size"):
            return st["vocabulary_size"]
        try:  # runs from before the status held it: the tokenizer's own record
            return json.loads((self.tokenizer_dir / "tokenizer.json").read_text("utf-8"))["vocabulary_size"]
        except (OSError, ValueError, KeyError):
            return None

    def write_status(self, **fields: Any) -> dict:
        try:
            st = json.loads(self.status_path.read_text("utf-8"))
        except (OSError, ValueError):
            st = {}
        st.update(fields)
        st["updated"] = time.time()
        data = (json.dumps(st, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            atomic.write_bytes(self.status_path, data)
        except OSError as e:
            # A full disk: the status must still say how the run ended (else it reads "running"
            # with a dead process). It fits the blocks the old status.json already holds.
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not atomic.overwrite_in_place(self.status_path, data):
                raise
        return st

    def record(self) -> dict:
        """A catalog row rebuilt from the folder alone."""
        cfg = self.config
        st = self.status()
        metrics = self.metrics()
        evals = [m for m in metrics if m.get("type") == "eval" and m.get("val_loss") is not None]
        steps = [m for m in metrics if m.get("type") == "step"]
        return {
            "id": self.id,
            "name": cfg.name or self.id,
            "created": st.get("created", self.folder.stat().st_mtime),
            "updated": st.get("updated", time.time()),
            "status": st.get("status", "created"),
            "step": st.get("step", steps[-1]["step"] if steps else 0),
            "max_steps": cfg.training.max_steps,
            "best_val_loss": min((e["val_loss"] for e in evals), default=st.get("best_val_loss")),
            "best_score": st.get("best_score"),
            "last_loss": steps[-1]["loss"] if steps else None,
            "tokens_per_sec": st.get("tokens_per_sec", steps[-1].get("tokens_per_sec") if steps else None),
            "duration": st.get("duration", 0.0),
            "message": st.get("message", ""),
            "summary": config_summary(cfg),
            "config": cfg.to_json(),
        }


class RunStore:
    """The workspace: `runs/<id>/` folders and `catalog.sqlite`.

    A workspace that cannot be written (a full disk, a read-only mount) still opens: reading
    (listing, generating, evaluating from the last good checkpoint) works, and whatever would
    write (`create`, `delete`, ...) raises a StoreError that says why.
    """

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = Path(home).expanduser() if home else default_home()
        if self.home.exists() and not self.home.is_dir():  # it would read as an empty workspace
            raise StoreError(f"The workspace {self.home} is a file, not a folder: choose another with --home "
                             f"or ${ENV_HOME}.")
        self.runs_dir = self.home / "runs"
        self.db_path = self.home / "catalog.sqlite"
        self.unwritable: str | None = None  # why the workspace cannot be written, if it cannot
        self.skipped: list[str] = []  # folders the last rebuild found that are not runs
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            probe = self.home / f".write-test-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            self.unwritable = (f"The workspace {self.home} is not writable ({e.strerror or e}). "
                               f"Free some space, or choose another with --home or ${ENV_HOME}.")
            return
        self._init_db()

    @property
    def writable(self) -> bool:
        return self.unwritable is None

    def require_writable(self) -> None:
        if self.unwritable:
            raise StoreError(self.unwritable)

    def _catalog_rows(self) -> list[dict]:
        """The catalog's rows, newest first; rebuilt in memory from the folders where the catalog
        cannot be read (a read-only or full workspace may lack its WAL files)."""
        if self.writable:
            try:
                with closing(self._connect()) as con:
                    return [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY created DESC")]
            except sqlite3.Error:
                pass
        rows = []
        if self.runs_dir.is_dir():
            for folder in self.runs_dir.iterdir():
                run = Run(folder)
                if folder.is_dir() and not folder.name.startswith(".") and run.exists():
                    try:
                        rows.append(run.record())
                    except Exception:  # noqa: BLE001, S112 - a damaged folder is skipped, never fatal
                        continue
        return sorted(rows, key=lambda r: r.get("created") or 0, reverse=True)

    # ------------------------------------------------------------------ catalog
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _init_db(self) -> None:
        cols = ", ".join(f"{n} {t}" for n, t in _COLUMNS)
        try:
            with closing(self._connect()) as con, con:
                con.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
                con.execute("SELECT count(*) FROM runs").fetchone()
                have = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
            problem = "other-schema" if not {n for n, _ in _COLUMNS} <= have else None
        except sqlite3.DatabaseError:
            problem = "corrupt"
        if problem:
            # The catalog is only an index (the run folders are the truth): one that cannot be read,
            # or one of another schema (an older or newer version, another program's file), is
            # moved aside, never deleted, and made again from the folders.
            stamp = int(time.time())
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.db_path) + suffix)
                if p.exists():
                    os.replace(p, Path(str(p) + f".{problem}-{stamp}"))
            with closing(self._connect()) as con, con:
                con.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
            self.rebuild()
            return
        if self._count() == 0 and any(self.runs_dir.iterdir()):
            self.rebuild()

    def _count(self) -> int:
        with closing(self._connect()) as con:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]

    def _upsert(self, row: dict) -> None:
        names = [n for n, _ in _COLUMNS]
        vals = [row.get(n) for n in names]
        with closing(self._connect()) as con, con:
            con.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                vals,
            )

    def sync(self, run: Run | str) -> dict:
        """Refresh one catalog row from its folder."""
        run = self.get(run) if isinstance(run, str) else run
        row = run.record()
        if self.writable:
            self._upsert(row)
        return row

    def rebuild(self) -> int:
        """Recreate the catalog from the run folders, in one transaction (a reader meanwhile sees
        the old catalog or the new, never half of it); returns the number of runs found. The
        folders skipped (not runs, or damaged) are in `self.skipped`; deleted runs on their way
        out (`.deleted-*`) are not counted at all."""
        rows, self.skipped = [], []
        for folder in sorted(self.runs_dir.iterdir()):
            if folder.name.startswith(".deleted-"):
                continue
            run = Run(folder)
            try:
                if not (folder.is_dir() and run.exists()):
                    raise StoreError("not a run folder")
                rows.append(run.record())
            except Exception:  # noqa: BLE001 - a damaged folder is skipped and counted, never fatal
                self.skipped.append(folder.name)
        names = [n for n, _ in _COLUMNS]
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM runs")
            con.executemany(f"INSERT OR REPLACE INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                            [[row.get(n) for n in names] for row in rows])
        return len(rows)

    # ------------------------------------------------------------------ runs
    def create(self, cfg: RunConfig) -> Run:
        self.require_writable()
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", cfg.name or "run").strip("-")[:40] or "run"
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"
        run = Run(self.runs_dir / run_id)
        run.folder.mkdir(parents=True)
        run.save_config(cfg)
        run.write_status(status="created", created=time.time(), step=0)
        self.sync(run)
        return run

    def get(self, run_id: str) -> Run:
        run = Run(self.runs_dir / run_id)
        if not run.exists():
            matches = [p for p in self.runs_dir.iterdir() if p.name.startswith(run_id)] if run_id else []
            if len(matches) == 1:
                return Run(matches[0])
            raise StoreError(f"No run '{run_id}' in {self.runs_dir}.")
        return run

    def resolve(self, ref: str) -> Run:
        """The run a person means by `ref`: its exact id, else a unique prefix of an id, else its
        exact name, else a unique prefix of a name. Several matches at the first step that has
        any are an error listing them (never a guess); no match at all is an error too."""
        ref = (ref or "").strip()
        if not ref:
            raise StoreError("Give a run id or name (`desktop-llm runs` lists them).")
        if "/" not in ref and os.sep not in ref and ref not in (".", ".."):
            run = Run(self.runs_dir / ref)
            if run.exists():
                return run
        rows = [(r["id"], r.get("name") or r["id"]) for r in self.list()]
        for matches in ([r for r in rows if r[0].startswith(ref)],
                        [r for r in rows if r[1] == ref],
                        [r for r in rows if r[1].startswith(ref)]):
            if len(matches) == 1:
                return Run(self.runs_dir / matches[0][0])
            if matches:
                shown = ", ".join(f"{i} ({n})" for i, n in matches[:10])
                more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
                raise StoreError(f"'{ref}' matches {len(matches)} runs: {shown}{more}. "
                                 "Give more of the id.")
        raise StoreError(f"No run '{ref}' in {self.runs_dir}: give a run id, the start of one, or a "
                         "run name (`desktop-llm runs` lists them).")

    def latest(self) -> Run | None:
        rows = self.list()
        return self.get(rows[0]["id"]) if rows else None

    def list(self) -> list[dict]:
        """All runs, newest first; active runs whose process is gone are marked interrupted."""
        rows = self._catalog_rows()
        out = []
        for r in rows:
            if r["status"] in ACTIVE or r["status"] is None:
                run = Run(self.runs_dir / r["id"])
                if not run.exists():
                    continue
                st = run.status()
                if st.get("status") != r["status"]:
                    try:
                        r = self.sync(run)
                    except (OSError, sqlite3.Error):  # cannot write the index: show the truth anyway
                        r = run.record()
            out.append(r)
        return out

    def delete(self, run_id: str) -> None:
        self.require_writable()
        run = self.get(run_id)
        try:
            run.lock()  # a trainer holds it for its life: refused however fresh its status is
        except StoreError:
            raise StoreError("This run is training; stop it before deleting it.") from None
        try:
            if run.status().get("status") in ACTIVE:  # (on another machine: its status says so)
                raise StoreError("This run is training; stop it before deleting it.")
            trash = run.folder.with_name(f".deleted-{run.id}")
            os.replace(run.folder, trash)  # atomic: the run is gone at once, even if rmtree is slow
        finally:
            run.unlock()
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        shutil.rmtree(trash, ignore_errors=True)

    def usable(self, run_id: str) -> bool:
        """Whether a run has a checkpoint to load: the one rule of "the runs you can use" for the
        command line (the newest such run is the one a command means) and the window's run pickers."""
        return (self.runs_dir / run_id / "checkpoints" / "index.json").exists()

    @property
    def exports_dir(self) -> Path:
        """Where exported runs go unless told otherwise."""
        return self.home / "exports"
