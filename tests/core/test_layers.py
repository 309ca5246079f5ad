"""Dependencies point one way: gui -> (cli) -> store -> core. The engine (core/) and the run store
import no Qt and nothing of the layers above them, so the trainer child process and the command
line never load a GUI toolkit. Checked on the source (every import statement, at any depth)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "desktop_llm"
FORBIDDEN = {
    "core": ("desktop_llm.gui", "desktop_llm.cli", "desktop_llm.store", "desktop_llm.app", "PySide6", "pyqtgraph"),
    "store": ("desktop_llm.gui", "desktop_llm.cli", "desktop_llm.app", "PySide6", "pyqtgraph"),
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_import_nothing_above_them(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert len(files) > 3
    bad = [(f.relative_to(PACKAGE).as_posix(), name) for f in files for name in imports(f)
           if any(name == p or name.startswith(p + ".") for p in FORBIDDEN[layer])]
    assert not bad, bad
