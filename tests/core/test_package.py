"""desktop_llm as a package: the wheel carries the corpora, their attribution and the icons, and a
plain (non-editable) install of it works from any folder; the command line's --version, help
texts, `gui --corpus A B C` and `doctor`."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import site
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import desktop_llm
from desktop_llm import about
from desktop_llm.cli import build_parser, gui_main, main

ROOT = Path(__file__).resolve().parents[2]
ICON_SIZES = (16, 32, 48, 64, 128, 256)
# What a checkout holds that is not the project (build output, caches, local environments).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", ".hypothesis", ".whl", "out", "*.pyc")


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2", DESKTOP_LLM_XLA_CACHE="0", **extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built from a copy of the checkout without its build
    output or environments (as a fresh clone has), offline: setuptools comes from the dev extra."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
                         capture_output=True, text=True, timeout=180, env=_clean_env(), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    (whl,) = (tmp / "dist").glob("desktop_llm-*.whl")
    return whl


def test_the_wheel_carries_the_corpora_attribution_icons_and_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for corpus in (ROOT / "resources" / "corpora").iterdir():
        assert f"desktop_llm/_resources/corpora/{corpus.name}" in names
    assert "desktop_llm/_resources/ATTRIBUTION.md" in names
    for cls in ("poem", "prose", "drama"):  # the classifier's bundled task
        assert f"desktop_llm/_resources/labelled/poem-prose-drama/{cls}.txt" in names
    assert "desktop_llm/_resources/parallel/tatoeba-cmn-eng.tsv" in names  # all of it: where a translator wins
    assert "desktop_llm/_resources/parallel/tatoeba-cmn-eng-5k.tsv" in names  # the translator's
    assert "desktop_llm/_resources/icons/desktop_llm.svg" in names
    assert "desktop_llm/_resources/fonts/wqy-microhei.ttc" in names  # gui/fonts.py: CJK where the system has none
    for size in ICON_SIZES:
        assert f"desktop_llm/_resources/icons/desktop_llm-{size}.png" in names
    # setup.py finds the packages (resources/ is mapped in): none may be left out
    for py in (ROOT / "desktop_llm").rglob("*.py"):
        assert py.relative_to(ROOT).as_posix() in names, f"{py} is not in the wheel (setup.py packages)"
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{info}/licenses/LICENSE" in names
    z = zipfile.ZipFile(wheel)
    meta = z.read(f"{info}/METADATA").decode()
    assert f"\nVersion: {desktop_llm.__version__}\n" in meta
    assert "License-Expression: MIT" in meta
    entry = configparser.ConfigParser()
    entry.read_string(z.read(f"{info}/entry_points.txt").decode())
    assert entry["console_scripts"]["desktop-llm"] == "desktop_llm.cli:main"
    assert entry["gui_scripts"]["desktop-llm-gui"] == "desktop_llm.cli:gui_main"


def test_an_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    """A fresh environment with only the wheel installed (not editable); the dependencies come from
    this environment's site-packages through a .pth file. Run from a folder outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_desktop_llm_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                          "--no-index", "--ignore-installed", str(wheel)],
                         capture_output=True, text=True, timeout=180, env=_clean_env(), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    bindir = py.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(DESKTOP_LLM_HOME=str(tmp_path / "home"))

    def run(*cmd) -> str:
        p = subprocess.run([*map(str, cmd)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=180,
                           check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    where = json.loads(run(py, "-c", "import json, desktop_llm, desktop_llm.resources as r; print(json.dumps("
                                     "[desktop_llm.__file__, str(r.sample_corpus()), str(r.ATTRIBUTION), "
                                     "str(r.icon_path(256))]))"))
    package, corpus, attribution, icon = map(Path, where)
    assert package.is_relative_to(Path(purelib)), package  # the installed copy, not the checkout
    for path in (corpus, attribution, icon):
        assert path.is_file() and path.is_relative_to(Path(purelib)), path
    assert not corpus.is_relative_to(ROOT)

    assert run(bindir / "desktop-llm", "--version").strip() == f"desktop-llm {desktop_llm.__version__}"
    stats = json.loads(run(bindir / "desktop-llm", "corpus", "stats", corpus, "--json"))
    assert stats["documents"] >= 1 and stats["characters"] > 1_000_000
    assert (bindir / "desktop-llm-gui").exists()


def test_bundled_files_are_found_through_importlib_resources():
    from importlib import resources

    from desktop_llm import resources as bundled

    root = resources.files("desktop_llm._resources")
    assert (root / "corpora" / "tinyshakespeare.txt").is_file()
    assert bundled.sample_corpus() == Path(str(root / "corpora" / "tinyshakespeare.txt"))
    assert bundled.sample_corpus("tangshi300.txt").is_file()
    assert "tinyshakespeare" in bundled.ATTRIBUTION.read_text("utf-8").lower()
    for size in ICON_SIZES:  # rendered at the size the name says
        head = bundled.icon_path(size).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (size, size)
    assert bundled.icon_path().read_text("utf-8").lstrip().startswith("<?xml")
    assert bundled.CJK_FONT.read_bytes()[:4] == b"ttcf"  # a TrueType collection
    assert "WenQuanYi" in bundled.ATTRIBUTION.read_text("utf-8")


def test_license_and_desktop_file():
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License") and "desktop_llm contributors" in text
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "packaging" / "desktop_llm.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"] == "desktop-llm-gui" and d["Icon"] == "desktop_llm"
    assert d["Terminal"] == "false"


def test_version_flag_and_its_fallback(capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"desktop-llm {about.version()}"
    assert about.version() == desktop_llm.__version__  # the installed metadata says the same

    def not_installed(name):
        raise about.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(about.metadata, "version", not_installed)
    monkeypatch.setattr(desktop_llm, "__version__", "9.8.7")
    assert about.version() == "9.8.7"


def _walk(parser: argparse.ArgumentParser, path=("desktop-llm",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():  # a hidden command (a child's entry point) is not listed
                yield (*path, name), f"command {name}", helps.get(name, "hidden" if name in HIDDEN else None)
                yield from _walk(sub, (*path, name))
        else:
            yield path, "/".join(action.option_strings) or action.dest, action.help


HIDDEN = {"speed-probe", "worker"}


def test_every_command_and_option_has_help():
    seen = list(_walk(build_parser()))
    listing = build_parser().format_help()
    listed = set(listing.split("{", 1)[1].split("}", 1)[0].split(","))
    assert "SUPPRESS" not in listing and "launch" in listed and not listed & HIDDEN
    assert len(seen) > 100  # the walk reaches into every subcommand
    missing = [f"{' '.join(path)} {what}" for path, what, help_ in seen if not help_]
    assert not missing, "add help= to: " + ", ".join(missing)


def test_gui_corpus_takes_several_paths_after_one_flag_or_repeated(monkeypatch):
    p = build_parser()
    assert p.parse_args(["gui", "--corpus", "a", "b", "c"]).corpus == ["a", "b", "c"]
    assert p.parse_args(["gui", "--corpus", "a", "--corpus", "b", "c"]).corpus == ["a", "b", "c"]
    assert p.parse_args(["--home", "H", "gui"]).home == "H"  # the top-level --home survives `gui`
    import desktop_llm.app

    seen = {}
    monkeypatch.setattr(desktop_llm.app, "run_app", lambda home=None, corpus=None, **_: seen.update(
        home=home, corpus=corpus) or 0)
    assert main(["gui", "--corpus", "a", "b", "--corpus", "c"]) == 0
    assert seen == {"home": None, "corpus": ["a", "b", "c"]}
    # desktop-llm-gui (the gui-script) takes the same options without the word `gui`
    assert gui_main(["--home", "W", "--corpus", "x", "y"]) == 0
    assert seen == {"home": "W", "corpus": ["x", "y"]}


def test_doctor_reports_versions_devices_workspace_and_free_space(tmp_path):
    home = tmp_path / "workspace"
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), "doctor", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=_clean_env(), check=False)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    v = report["versions"]
    assert v["desktop_llm"] == desktop_llm.__version__
    for name in ("Python", "TensorFlow", "Keras", "keras-hub", "PySide6", "Qt", "pyqtgraph", "numpy"):
        assert v[name], name
    devs = report["devices"]
    assert devs["error"] is None and devs["devices"][-1]["kind"] == "CPU" and devs["summary"]
    ws = report["workspace"]
    assert ws["path"] == str(home) and ws["writable"] is True and ws["free_bytes"] > 0
    assert not home.exists()  # doctor looks, it creates nothing
    assert [o["package"] for o in report["optional"]] == ["tensorflow-text", "jax", "torch"]
    assert report["backend"]["backend"] in ("tensorflow", "jax", "torch") and report["backend"]["reason"]

    text = subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), "doctor", "--no-devices"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=_clean_env(),
                          check=False).stdout
    for expected in ("Versions:", f"desktop_llm:      {desktop_llm.__version__}", "TensorFlow:", "Workspace:",
                     str(home), "free space:"):
        assert expected in text


def test_doctor_says_what_is_missing(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    real = about._installed
    monkeypatch.setattr(about, "_installed", lambda d: None if d == "tensorflow-text" else real(d))
    report = about.doctor(blocker / "workspace", with_devices=False)
    assert report["workspace"]["writable"] is False
    problems = " | ".join(report["problems"])
    assert "tensorflow-text is not installed" in problems and "WordPiece" in problems
    assert "not writable" in problems
    text = about.format_doctor(report)
    assert "Missing or wrong:" in text and "NOT writable" in text
