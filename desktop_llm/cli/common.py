"""What every command shares: the one-line error, JSON output, the workspace, flag checks, the
corpus check before anything is created, and "the run you mean" (one rule for every command)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from desktop_llm.core.config import DEFAULT_FAMILY
from desktop_llm.errors import UsageError


class CliError(UsageError):
    """A command line that cannot be run as given: printed as one `error:` line."""


NO_RUNS = "No runs yet: train one with `desktop-llm train`."


def out(obj) -> None:
    """One JSON object on stdout, flushed (a reader may be waiting for it line by line)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def store_of(args):
    """The run store of `--home` (default: $DESKTOP_LLM_HOME or the user data folder)."""
    from desktop_llm.store import RunStore

    return RunStore(args.home)


def quiet_keras() -> None:
    """Keep TensorFlow/absl chatter off stderr so the user sees our messages."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    import warnings

    warnings.filterwarnings("ignore")


# Ranges of the numeric flags, checked before anything is loaded or created so that a bad value
# gets one line naming the flag (the configs' own validation speaks of fields, not flags).
AT_LEAST_1 = ("steps", "batch_size", "eval_interval", "eval_batches", "log_interval", "layers", "heads",
              "width", "ffn", "context", "vocab_size", "max_windows")
AT_LEAST_0 = ("warmup", "checkpoint_interval", "sample_tokens", "weight_decay", "clip", "min_lr", "seed")


def check_flags(args) -> None:
    """Every numeric flag within its range (and finite), in one line naming the flag."""
    def bad(name, v, must):
        raise CliError(f"--{name.replace('_', '-')} must be {must} (got {v}).")

    for name in AT_LEAST_1:
        v = getattr(args, name, None)
        if v is not None and v < 1:
            bad(name, v, "at least 1")
    for name in AT_LEAST_0:
        v = getattr(args, name, None)
        if v is not None and not (v >= 0 and math.isfinite(v)):
            bad(name, v, "0 or more")
    v = getattr(args, "lr", None)
    if v is not None and not 0 < v <= 1:
        bad("lr", v, "in (0, 1]")
    v = getattr(args, "dropout", None)
    if v is not None and not 0 <= v < 1:
        bad("dropout", v, "in [0, 1)")
    v = getattr(args, "val_fraction", None)
    if v is not None and not 0 < v < 0.9:
        bad("val_fraction", v, "between 0 and 0.9")


def encodings_of(args, paths) -> dict:
    """--encoding ENC: every file given, and every file in a folder given, is read with ENC
    (an unknown name is one `error:` line)."""
    from desktop_llm.core.corpus import check_encoding

    encoding = getattr(args, "encoding", None)
    if not encoding:
        return {}
    encoding = check_encoding(encoding)
    return {str(p): encoding for p in paths}


def require_corpus(paths, texts=(), column=None, encodings=None):
    """The corpus, refused in one line if there is nothing to read in it: before a run is
    created or a model loaded (cheap: sniffs only)."""
    from desktop_llm.core.corpus import Corpus

    missing = [p for p in paths if not Path(p).expanduser().exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CliError(f"No such file or folder: {missing[0]}{more}")
    corpus = Corpus(paths=list(paths), texts=list(texts), column=column, encodings=dict(encodings or {}))
    if not corpus.usable_sources():
        why = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in corpus.sources[:5])
        raise CliError(f"No readable text in {', '.join(map(str, paths)) or 'the corpus'} ({why or 'empty'}).")
    return corpus


def read_text_file(path: str) -> str:
    """A file's text read as a corpus is (detected encoding), refused in one line if unreadable."""
    return "".join(require_corpus([path]).iter_text())


def newest_trained(store, family: str | tuple[str, ...] = DEFAULT_FAMILY):
    """The newest run of `family` that has a checkpoint (one that failed at once or is still
    preparing has nothing to load), else the newest run, else None."""
    from desktop_llm.store.runs import row_family

    families = (family,) if isinstance(family, str) else family
    rows = store.list()
    for r in rows:
        if store.usable(r["id"]) and row_family(r) in families:
            return store.get(r["id"])
    return store.get(rows[0]["id"]) if rows else None


def resolve_run(args, family: str | tuple[str, ...] = DEFAULT_FAMILY):
    """The run a command means: the one named (id, start of an id, or name), else the newest
    trained run of `family`; refused in one line where there is none."""
    store = store_of(args)
    run = store.resolve(args.run) if args.run else newest_trained(store, family)
    if run is None:
        raise CliError(NO_RUNS)
    return run


def load_run(args, family: str | tuple[str, ...] = DEFAULT_FAMILY):
    """(run, model, tokenizer, checkpoint) of the run a command means, refused in one line if it
    is of another family."""
    quiet_keras()
    from desktop_llm.core.loading import load_for_inference, require_family

    families = (family,) if isinstance(family, str) else family
    run = resolve_run(args, families)
    require_family(run, families, args.command)
    model, tok, ckpt = load_for_inference(run, args.checkpoint)
    return run, model, tok, ckpt


def checkpoint_choice(text: str) -> str:
    """best, latest, or a step ("1200", "step:1200"): refused by argparse in one line otherwise."""
    import argparse

    if text in ("best", "latest") or text.removeprefix("step:").isdigit():
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not best, latest or a step number")


def run_args(sp) -> None:
    """The arguments of every command that reads a trained run."""
    sp.add_argument("run", nargs="?",
                    help="run id, the start of one, or run name (default: the newest trained run)")
    sp.add_argument("--checkpoint", default="best", type=checkpoint_choice,
                    help="best, latest, or a step the run keeps a weight snapshot of: the model as it was "
                         "then (default %(default)s)")


def need(v):
    if not v:
        raise CliError("Give a run id.")
    return v


class Parser(argparse.ArgumentParser):
    """A mistyped command or flag value gets one `error: ...` line, like every other mistake
    (argparse's default prints the whole usage first). Subcommands inherit this class."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


class Kit:
    """What a family's own commands (`core/models/<family>/commands.py`) get from the command
    line, passed in so that the engine never imports the CLI: output, the run they mean, the
    shared arguments and checks."""

    out = staticmethod(out)
    load_run = staticmethod(load_run)
    run_args = staticmethod(run_args)
    check_flags = staticmethod(check_flags)
    read_text_file = staticmethod(read_text_file)
    quiet_keras = staticmethod(quiet_keras)

    @staticmethod
    def writers() -> tuple[str, ...]:
        """The families whose runs write text (`generate` and `chat` take any of them)."""
        from desktop_llm.core.models import families

        return tuple(f.name for f in families() if f.writes_text)
