"""The frozen app's entry point (packaging/desktop_llm.spec): the whole `desktop-llm` command, so
`desktop_llm` with no arguments opens the window and `desktop_llm train ...` trains in the terminal.

The app starts itself again as `sys.executable -m desktop_llm ...` (the trainer child of the window,
its device probe, the workers of `desktop-llm launch`). Frozen, `sys.executable` is this program,
which has no Python command line: a leading `-m desktop_llm` is dropped here.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def command_line(argv: list[str]) -> list[str]:
    """`argv` without the `-m desktop_llm` a Python interpreter would have taken."""
    if argv[:2] == ["-m", "desktop_llm"]:
        return argv[2:]
    return argv


def main() -> int:
    multiprocessing.freeze_support()
    for name in ("stdout", "stderr"):  # a windowed build (no console) has none
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (for the process's life)
    from desktop_llm.cli import main as cli_main

    return cli_main(command_line(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
