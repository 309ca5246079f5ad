"""Command line: `desktop-llm <command>`. With no command, opens the desktop application.

`desktop-llm train` is also what the GUI starts as its child process (`--json` streams events).
Heavy imports (TensorFlow, Keras) happen inside the commands that need them.

    common.py     the one-line error, output, the workspace, flag checks, the run a command means
    render.py     training events as terminal lines
    corpus.py tokenizer.py model.py train.py infer.py runs.py export.py    the command groups
A family's own commands (generate, fill-mask, classify, translate...) are in its folder,
`core/models/<family>/commands.py`, added here through the family registry.
"""

from __future__ import annotations

import argparse
import os
import sys

from desktop_llm.cli import corpus, export, infer, model, probes, report, runs, tokenizer, train, worker
from desktop_llm.cli.common import CliError, Kit, Parser
from desktop_llm.errors import OUT_OF_MEMORY, DesktopLLMError, out_of_memory

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["CliError", "build_parser", "gui_main", "main"]

# The commands that load a model to decode with: XLA's compilation cache is turned on for them.
DECODING = ("generate", "compare", "chat", "eval", "attention", "fill-mask", "classify", "similar", "embed", "translate")
# the commands that compute with a model, and so take --backend (the others never load Keras)
COMPUTING = ("train", "launch", "speed-probe", "devices", "probes", "export", "worker", *DECODING)


def _version() -> str:
    from desktop_llm.about import version

    return version()


def build_parser() -> argparse.ArgumentParser:
    from desktop_llm.core.models import families

    p = Parser(prog="desktop-llm", description=__doc__.splitlines()[0])
    p.add_argument("--home", help="workspace folder (default: $DESKTOP_LLM_HOME or the user data dir)")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                   help="print desktop_llm's version and exit")
    sub = p.add_subparsers(dest="command")

    g = sub.add_parser("gui", help="open the desktop application (the default)")
    g.add_argument("--corpus", nargs="+", action="extend", metavar="PATH",
                   help="files or folders to load at start (several after one --corpus, or repeat it)")
    g.add_argument("--first-corpus", nargs="+", action="extend", metavar="PATH",
                   help="files or folders to load when the workspace has no corpus of its own yet (its "
                        "first launch); later launches open the corpus last used")
    g.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # desktop-llm-gui --home
    # Hidden, for checks of a build (packaging/smoke_test.sh): save the window to PATH once it has
    # been shown for --screenshot-delay seconds, then quit (exit status 1 if it could not be saved).
    g.add_argument("--screenshot", metavar="PATH", help=argparse.SUPPRESS)
    g.add_argument("--screenshot-delay", type=float, default=3.0, metavar="SECONDS", help=argparse.SUPPRESS)

    runs.add_doctor_parser(sub)
    corpus.add_parser(sub)
    tokenizer.add_parser(sub)
    model.add_parser(sub)
    train.add_parser(sub)
    for family in families():  # generate, chat, eval, fill-mask, classify, translate...
        family.add_commands(sub, Kit)
    infer.add_parser(sub)
    runs.add_parser(sub)
    probes.add_parser(sub)
    report.add_parser(sub)
    export.add_parser(sub)  # keras-hub, savedmodel, onnx, litert
    worker.add_parser(sub)  # the window's model work, in a child process
    from desktop_llm.core.backend import CHOICES

    for name in COMPUTING:
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--backend", choices=CHOICES, default="auto",
                help="the Keras backend to compute with: tensorflow, jax or torch; auto (the default) takes "
                     "the one that reaches this machine's GPU, else TensorFlow ($KERAS_BACKEND is honoured)"
                     + ("; on a CPU with several backends installed, train times each on the run's model and "
                        "takes the fastest" if name == "train" else ""))
    _hide(sub)
    return p


def _hide(sub) -> None:
    """Leave the hidden commands (a child process's entry points) out of `--help`: argparse lists
    a subcommand added with help=SUPPRESS as "==SUPPRESS==" (CPython issue 67037)."""
    hidden = [a.dest for a in sub._choices_actions if a.help == argparse.SUPPRESS]
    sub._choices_actions[:] = [a for a in sub._choices_actions if a.help != argparse.SUPPRESS]
    sub.metavar = "{" + ",".join(c for c in sub.choices if c not in hidden) + "}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        from desktop_llm.app import run_app

        return run_app(home=args.home, corpus=getattr(args, "corpus", None),
                       first_corpus=getattr(args, "first_corpus", None),
                       screenshot=getattr(args, "screenshot", None),
                       screenshot_delay=getattr(args, "screenshot_delay", 3.0))
    from desktop_llm.native_log import redirect_native_stderr

    redirect_native_stderr()
    try:  # once, before anything imports Keras (core/backend.py)
        from desktop_llm.core import backend

        backend.apply(getattr(args, "backend", "auto"))
    except DesktopLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command in DECODING:
        from desktop_llm.core import xla_cache

        xla_cache.enable()  # before TensorFlow loads: the decoding loop compiled once, reused
    try:
        return args.func(args)
    except (DesktopLLMError, ValueError) as e:  # what a person can act on: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not out_of_memory(e):
            raise
        import gc

        gc.disable()  # an allocation failure can leave the heap corrupt (core/training/failures.py)
        print(f"error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0


def gui_main(argv: list[str] | None = None) -> int:
    """`desktop-llm-gui [--home DIR] [--corpus PATH ...]`: the window without a console (a
    gui-script: on Windows it runs under pythonw, where there is no stdout or stderr)."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (for the process's life)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("gui", "--version", "-h", "--help"):
        argv = ["gui", *argv]
    return main(argv)
