"""Dependencies point one way: cli -> app -> gui -> about -> store -> core -> errors; no import
cycles at any depth; the model families independent of one another; the engine and the run store
load no GUI toolkit, so the trainer child process and the command line never load one.

The contracts live in pyproject.toml ([tool.importlinter]) and are checked by import-linter,
which counts every import statement, function-local ones included. The checks below it are
what import-linter has no contract for."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "desktop_llm"


def imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    return [n for n in ast.walk(ast.parse(path.read_text("utf-8"))) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    p = subprocess.run([str(lint), "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True,
                       timeout=300, check=False)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout and "4 kept" in p.stdout, p.stdout[-2000:]


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for f in sorted(PACKAGE.rglob("*.py")):
        for node in imports(f):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("desktop_llm"):
                bad += [f"{f.relative_to(PACKAGE)}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_no_private_module_of_a_dependency_is_imported():
    bad = []
    for f in sorted(PACKAGE.rglob("*.py")):
        for node in imports(f):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad += [f"{f.relative_to(PACKAGE)}: {n}" for n in names
                    if n.startswith(("keras.src", "keras_hub.src", "tensorflow.python"))]
    assert not bad, bad


def test_generic_code_names_no_family():
    """A family is one folder: outside core/models/<family>/ (and its Generate panel), no module
    spells a family's name as a string."""
    from desktop_llm.core.models import FAMILY_NAMES

    allowed = {"core/models/registry.py": len(FAMILY_NAMES),  # the list itself
               "core/config.py": 1,  # DEFAULT_FAMILY: what a run that names none is
               "cli/__init__.py": 1}  # the `chat` command (any run that writes text), not the chat family
    bad, seen = [], dict.fromkeys(allowed, 0)
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE).as_posix()
        if any(rel.startswith((f"core/models/{name}/", f"gui/families/{name}")) for name in FAMILY_NAMES):
            continue
        for node in ast.walk(ast.parse(f.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and node.value in FAMILY_NAMES:
                if rel in allowed:
                    seen[rel] += 1
                else:
                    bad.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not bad, "\n".join(bad)
    assert seen == allowed, seen
