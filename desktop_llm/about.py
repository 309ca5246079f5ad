"""What desktop_llm is running on: its version and its libraries', the devices, the workspace.

`desktop-llm doctor` prints `doctor()`; the window's Help > About shows `versions(loaded_only=True)`,
which never imports TensorFlow, Keras or keras-hub (the window loads them only when it needs them).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

# (label, distribution, module): module is what `import` loads, checked in sys.modules where only
# the versions of libraries already loaded may be reported.
LIBRARIES = [
    ("TensorFlow", "tensorflow", "tensorflow"),
    ("Keras", "keras", "keras"),
    ("keras-hub", "keras-hub", "keras_hub"),
    ("PySide6", "pyside6-essentials", "PySide6"),
    ("pyqtgraph", "pyqtgraph", "pyqtgraph"),
    ("numpy", "numpy", "numpy"),
    ("SentencePiece", "sentencepiece", "sentencepiece"),
]
HEAVY = ("tensorflow", "keras", "keras_hub")  # seconds to import: the window loads them on demand

# Optional parts: (what needs it, distribution, module)
OPTIONAL = [
    ("training WordPiece tokenizers, through keras-hub", "tensorflow-text", "tensorflow_text"),
    ("the JAX backend (NVIDIA GPUs on Linux without TensorFlow's CUDA libraries)", "jax", "jax"),
    ("the PyTorch backend (NVIDIA GPUs on Windows, Apple GPUs)", "torch", "torch"),
]
NOT_LOADED = "not loaded yet"


def version() -> str:
    """desktop_llm's version: the installed distribution's, else the package's own __version__."""
    try:
        return metadata.version("desktop_llm")
    except metadata.PackageNotFoundError:
        from desktop_llm import __version__

        return __version__


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _qt_version() -> str | None:
    try:
        from PySide6 import QtCore
    except ImportError:
        return None
    return QtCore.qVersion()


def versions(loaded_only: bool = False) -> dict[str, str | None]:
    """{label: version}; None where a library is not installed. With `loaded_only`, TensorFlow,
    Keras and keras-hub that this process has not imported yet read "not loaded yet (X installed)",
    and nothing is imported to find out."""
    out: dict[str, str | None] = {"desktop_llm": version(),
                                  "Python": f"{platform.python_version()} ({platform.python_implementation()})"}
    for label, dist, module in LIBRARIES:
        v = _installed(dist)
        if module == "PySide6" and v is None:
            v = _installed("pyside6")
        if loaded_only and module in HEAVY and module not in sys.modules:
            v = f"{NOT_LOADED} ({v} installed)" if v else f"{NOT_LOADED} (not installed)"
        elif module in sys.modules and getattr(sys.modules[module], "__version__", None):
            v = str(sys.modules[module].__version__)  # what is loaded (a source tree may differ)
        out[label] = v
    out["Qt"] = _qt_version()
    return out


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def workspace(home: str | os.PathLike | None = None) -> dict:
    """The workspace folder, whether it exists and can be written (nothing is created), and the free
    space where it is or would be."""
    from desktop_llm.store.runs import default_home

    path = Path(home).expanduser() if home else default_home()
    exists = path.is_dir()
    base = _nearest_existing(path)
    if exists:
        writable, why = _probe_write(path)
    else:
        writable = base.is_dir() and os.access(base, os.W_OK | os.X_OK)
        why = None if writable else f"{base} cannot be written"
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        free = None
    return {"path": str(path), "exists": exists, "writable": bool(writable), "why_not": why,
            "free_bytes": free}


def _probe_write(folder: Path) -> tuple[bool, str | None]:
    probe = folder / f".doctor-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
        return True, None
    except OSError as e:
        return False, e.strerror or str(e)


def devices() -> dict:
    """The devices this process's Keras backend sees (imports it: seconds), or why they could not be listed."""
    try:
        from desktop_llm.core.device import describe
        from desktop_llm.core.runners import devices as list_devices

        devs = list_devices()
        return {"devices": devs, "summary": describe(devs), "error": None}
    except Exception as e:  # noqa: BLE001 (a broken TensorFlow is what doctor is there to report)
        return {"devices": [], "summary": None, "error": f"{type(e).__name__}: {e}"}


def doctor(home: str | os.PathLike | None = None, with_devices: bool = True) -> dict:
    """Everything `desktop-llm doctor` reports, and the list of problems found (empty: all good)."""
    vers = versions()
    missing = []
    for label, dist, _ in LIBRARIES:
        if vers.get(label) is None:
            missing.append(f"{label} is not installed ({dist}): pip install {dist}")
    optional = []
    for what, dist, _module in OPTIONAL:
        have = _installed(dist)
        optional.append({"package": dist, "for": what, "version": have})
        if have is None and dist not in ("jax", "torch"):  # other backends: a choice, not a problem
            missing.append(f"{dist} is not installed: needed for {what}")
    ws = workspace(home)
    if not ws["writable"]:
        missing.append(f"the workspace {ws['path']} is not writable ({ws['why_not']}): "
                       "choose another with --home or $DESKTOP_LLM_HOME")
    if ws["free_bytes"] is not None and ws["free_bytes"] < 1 << 30:
        missing.append(f"less than 1 GB free for the workspace ({ws['free_bytes'] / 2**20:,.0f} MB)")
    from desktop_llm import resources

    bundled = {"path": str(resources.ROOT), "found": resources.sample_corpus().is_file()}
    if not bundled["found"]:
        missing.append(f"the bundled sample corpora are not in {bundled['path']}: reinstall desktop_llm")
    try:
        from desktop_llm.core.backend import current

        auto = current()
        chosen = {"backend": auto.name, "reason": auto.reason}
    except Exception as e:  # noqa: BLE001 - a report: say what went wrong
        chosen = {"backend": None, "reason": str(e)}
    report = {"versions": vers, "optional": optional, "backend": chosen, "platform": platform.platform(),
              "python_executable": sys.executable, "resources": bundled, "workspace": ws}
    if with_devices:
        report["devices"] = devices()
        if report["devices"]["error"]:
            missing.append(f"{chosen['backend']} could not list the devices: {report['devices']['error']}")
    report["problems"] = missing
    return report


def human_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


def format_doctor(report: dict) -> str:
    lines = ["desktop_llm doctor", "", "Versions:"]
    for label, v in report["versions"].items():
        lines.append(f"  {label + ':':<17} {v or 'not installed'}")
    for opt in report["optional"]:
        lines.append(f"  {opt['package'] + ':':<17} {opt['version'] or 'not installed'} (optional, for {opt['for']})")
    if report.get("backend"):
        b = report["backend"]
        lines.append(f"  {'Keras backend:':<17} {b['backend'] or 'none'}: {b['reason']}")
    lines.append(f"  {'platform:':<17} {report['platform']}")
    lines.append(f"  {'interpreter:':<17} {report['python_executable']}")
    if "resources" in report:
        lines.append(f"  {'bundled files:':<17} {report['resources']['path']}")
    if "devices" in report:
        d = report["devices"]
        lines += ["", "Devices:"]
        if d["error"]:
            lines.append(f"  could not list them: {d['error']}")
        for dev in d["devices"]:
            extra = f" (compute capability {'.'.join(map(str, dev['compute_capability']))})" \
                if dev.get("compute_capability") else ""
            lines.append(f"  {dev['kind']}: {dev['name']}{extra}")
        if d["summary"]:
            lines.append(f"  training will use: {d['summary']}")
    ws = report["workspace"]
    state = "writable" if ws["writable"] else f"NOT writable ({ws['why_not']})"
    if not ws["exists"]:
        state += ", will be created on first use" if ws["writable"] else ", does not exist"
    lines += ["", "Workspace:", f"  {ws['path']}", f"  {state}", f"  free space: {human_bytes(ws['free_bytes'])}",
              ""]
    if report["problems"]:
        lines.append("Missing or wrong:")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("Nothing missing.")
    return "\n".join(lines)
