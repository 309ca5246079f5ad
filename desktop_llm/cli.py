"""Command line: `desktop-llm <command>`. With no command, opens the desktop application.

`desktop-llm train` is also what the GUI starts as its child process (`--json` streams events).
Heavy imports (TensorFlow, Keras) happen inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from desktop_llm.errors import DesktopLLMError
from desktop_llm.store.card import duration, run_card

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CliError(DesktopLLMError):
    pass


def _out(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _store(args):
    from desktop_llm.store import RunStore

    return RunStore(args.home)


def _quiet_keras() -> None:
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


# --------------------------------------------------------------------------- corpus


def cmd_corpus_stats(args) -> int:
    from desktop_llm.core.corpus import Corpus

    corpus = Corpus(paths=args.paths, column=args.column, encodings=_encodings(args, args.paths))
    st = corpus.stats(args.val_fraction)
    if args.json:
        _out(st.to_dict())
        return 0 if corpus.usable_sources() else 1
    for s in corpus.sources:
        mark = ("unsure" if s.unsure else "ok") if s.ok else s.status
        enc = (s.encoding or "-") + (f" ({s.confidence:.0%})" if s.encoding and s.confidence < 1 else "")
        print(f"  [{mark:6}] {s.path}  {s.size_bytes:,} bytes  {enc}  {s.reason}")
    if not corpus.usable_sources():  # the sources' lines say why; a table of zeros would say nothing
        print("error: no readable text in these sources", file=sys.stderr)
        return 1
    print(f"documents:            {st.documents:,}")
    print(f"characters:           {st.characters:,}")
    print(f"lines:                {st.lines:,}")
    print(f"distinct characters:  {st.distinct_characters:,} ({st.distinct_cjk:,} CJK; {st.cjk_characters:,} CJK characters in all)")
    print(f"UTF-8 bytes:          {st.bytes_utf8:,}")
    print("estimated tokens:     " + ", ".join(f"{k} {v:,}" for k, v in st.estimated_tokens.items()))
    print(f"train / validation:   {st.train_characters:,} / {st.validation_characters:,} characters")
    unsure = sum(1 for s in corpus.sources if s.ok and s.unsure)
    if unsure:
        print(f"unsure encodings:     {unsure:,} source{'s' if unsure != 1 else ''} (check them; "
              "--encoding ENC reads every file with ENC)")
    return 0


# --------------------------------------------------------------------------- tokenizer


def cmd_tokenizer_train(args) -> int:
    from desktop_llm.core.tokenizers import train_tokenizer

    _check_flags(args)
    corpus = _require_corpus(args.paths, column=args.column, encodings=_encodings(args, args.paths))
    for s in corpus.sources:
        if not s.ok:
            print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
        elif s.unsure:
            print(f"warning: {s.path}: {s.reason}", file=sys.stderr)
    tok = train_tokenizer(args.kind, corpus.iter_text(), args.vocab_size)
    tok.save(args.out)
    print(f"{args.kind} tokenizer with {tok.vocabulary_size:,} tokens saved to {args.out}")
    return 0


def _load_tokenizer(args):
    from desktop_llm.core.tokenizers import load_tokenizer

    if args.run:
        return load_tokenizer(_store(args).resolve(args.run).tokenizer_dir)
    if args.tokenizer:
        return load_tokenizer(args.tokenizer)
    raise CliError("Give --tokenizer DIR or --run RUN.")


def cmd_tokenizer_encode(args) -> int:
    tok = _load_tokenizer(args)
    ids = tok.encode(args.text)
    if args.json:
        _out({"ids": ids, "tokens": [tok.token_text(i) for i in ids], "decoded": tok.decode(ids)})
    else:
        print(" ".join(map(str, ids)))
        print(" | ".join(repr(tok.token_text(i))[1:-1] for i in ids))
        print(f"{len(ids)} tokens, {len(args.text) / max(1, len(ids)):.2f} characters per token")
    return 0


# --------------------------------------------------------------------------- model


def _model_config(args, base=None):
    from desktop_llm.core.config import ModelConfig, preset

    m = preset(args.preset) if args.preset else (base or ModelConfig())
    over = {}
    for name, attr in (("layers", "num_layers"), ("heads", "num_heads"), ("width", "hidden_dim"),
                       ("ffn", "intermediate_dim"), ("context", "sequence_length"),
                       ("dropout", "dropout")):
        v = getattr(args, name, None)
        if v is not None:
            over[attr] = v
    if getattr(args, "untied", False):
        over["tie_embeddings"] = False
    if over.get("hidden_dim") and "intermediate_dim" not in over:
        over["intermediate_dim"] = 4 * over["hidden_dim"]
    return replace(m, **over)


def cmd_model_info(args) -> int:
    from desktop_llm.core.config import estimate, human_bytes, human_count

    _check_flags(args)
    m = replace(_model_config(args), vocabulary_size=args.vocab_size)
    m.validate()
    e = estimate(m, args.batch_size)
    if args.json:
        _out({"model": m.__dict__, **e.to_dict()})
        return 0
    print(f"layers {m.num_layers}, heads {m.num_heads}, width {m.hidden_dim}, feed-forward "
          f"{m.intermediate_dim}, context {m.sequence_length}, vocabulary {m.vocabulary_size}")
    print(f"parameters:        {e.parameters:,} ({human_count(e.parameters)})")
    print(f"FLOPs per token:   {e.flops_per_token:,} (training, 6N + 12LTd)")
    print(f"weights:           {human_bytes(e.weights_bytes)}")
    print(f"training memory:   ~{human_bytes(e.training_bytes)} at batch {args.batch_size}")
    return 0


def cmd_devices(args) -> int:
    from desktop_llm.core.device import describe, devices

    devs = devices()
    if args.json:
        _out({"devices": devs, "summary": describe(devs)})
    else:
        for d in devs:
            print(f"{d['kind']}: {d['name']}")
        print(f"training will use: {describe(devs)}")
    return 0


# --------------------------------------------------------------------------- train


# Ranges of the numeric flags, checked before anything is loaded or created so that a bad value
# gets one line naming the flag (the configs' own validation speaks of fields, not flags).
_AT_LEAST_1 = ("steps", "batch_size", "eval_interval", "eval_batches", "log_interval", "layers", "heads",
               "width", "ffn", "context", "vocab_size", "max_windows")
_AT_LEAST_0 = ("warmup", "checkpoint_interval", "sample_tokens", "weight_decay", "clip", "min_lr", "seed")


def _check_flags(args) -> None:
    def bad(name, v, must):
        raise CliError(f"--{name.replace('_', '-')} must be {must} (got {v}).")

    for name in _AT_LEAST_1:
        v = getattr(args, name, None)
        if v is not None and v < 1:
            bad(name, v, "at least 1")
    for name in _AT_LEAST_0:
        v = getattr(args, name, None)
        if v is not None and v < 0:
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


def _encodings(args, paths) -> dict:
    """--encoding ENC: every file given, and every file in a folder given, is read with ENC
    (an unknown name is one `error:` line)."""
    from desktop_llm.core.corpus import check_encoding

    encoding = getattr(args, "encoding", None)
    if not encoding:
        return {}
    encoding = check_encoding(encoding)
    return {str(p): encoding for p in paths}


def _require_corpus(paths, texts=(), column=None, encodings=None):
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


def _run_config(args):
    from desktop_llm.core.config import RunConfig, TokenizerConfig, TrainConfig
    from desktop_llm.resources import sample_corpus

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    paths = tuple(str(Path(p).resolve()) for p in args.paths) if args.paths else cfg.data.paths
    if not paths and not cfg.data.texts:
        paths = (str(sample_corpus()),)
    data = replace(cfg.data, paths=paths)
    if getattr(args, "encoding", None):  # replaces the config's choices: every file given, this one
        data = replace(data, encodings=tuple(_encodings(args, paths).items()))
    if args.column:
        data = replace(data, column=args.column)
    if args.val_fraction is not None:
        data = replace(data, val_fraction=args.val_fraction)
    tk = cfg.tokenizer
    if args.tokenizer_kind:
        tk = TokenizerConfig(kind=args.tokenizer_kind, vocabulary_size=tk.vocabulary_size)
    if args.vocab_size is not None:
        tk = replace(tk, vocabulary_size=args.vocab_size)
    if args.tokenizer:
        tk = replace(tk, path=str(Path(args.tokenizer).resolve()))
    model = _model_config(args, cfg.model)
    tr = cfg.training if args.config else TrainConfig()
    for name, attr in (("steps", "max_steps"), ("batch_size", "batch_size"), ("lr", "learning_rate"),
                       ("min_lr", "min_learning_rate"), ("warmup", "warmup_steps"),
                       ("weight_decay", "weight_decay"), ("clip", "grad_clip"),
                       ("eval_interval", "eval_interval"), ("eval_batches", "eval_batches"),
                       ("checkpoint_interval", "checkpoint_interval"), ("log_interval", "log_interval"),
                       ("sample_tokens", "sample_tokens"), ("seed", "seed"),
                       ("mixed_precision", "mixed_precision"), ("devices", "devices")):
        v = getattr(args, name, None)
        if v is not None:
            tr = replace(tr, **{attr: v})
    if args.no_xla:
        tr = replace(tr, jit_compile=False)
    tr = tr.fitted()  # the same rule as the window's (TrainConfig.fitted)
    name = args.name or cfg.name or Path(paths[0]).stem if paths else (args.name or "run")
    family = args.family or (cfg.family if args.config else "gpt")
    if getattr(args, "label_column", None):
        data = replace(data, label_column=args.label_column)
    if getattr(args, "target_column", None):
        data = replace(data, target_column=args.target_column)
    if getattr(args, "freeze_steps", None) is not None:
        tr = replace(tr, freeze_steps=args.freeze_steps)
    if getattr(args, "separate_tokenizers", False):
        if family != "translator":
            raise CliError("--separate-tokenizers gives a translator's source and target a tokenizer each: "
                           "add --family translator.")
        tk = replace(tk, separate=True)
    out = RunConfig(name=name, family=family, base_run=cfg.base_run if args.config else "", data=data,
                    tokenizer=tk, model=model, training=tr)
    if family == "classifier" and not args.config and args.steps is None:
        from desktop_llm.core.models.classifier import DEFAULT_EVAL_INTERVAL, DEFAULT_STEPS

        out = replace(out, training=replace(tr, max_steps=DEFAULT_STEPS, eval_interval=DEFAULT_EVAL_INTERVAL,
                                            warmup_steps=DEFAULT_STEPS // 10).fitted())
    if getattr(args, "base", None):
        from desktop_llm.core.models.classifier import on_base

        if family != "classifier":
            raise CliError("--base starts a classifier from a pretrained run: add --family classifier.")
        if args.tokenizer or args.tokenizer_kind or args.vocab_size is not None:
            raise CliError("A fine-tune reads text with its base run's tokenizer: leave out --tokenizer, "
                           "--tokenizer-kind and --vocab-size.")
        if any(getattr(args, a, None) is not None for a in ("preset", "layers", "heads", "width", "ffn",
                                                            "context")):
            raise CliError("A fine-tune has its base run's shape: leave out --preset, --layers, --heads, "
                           "--width, --ffn and --context.")
        out = on_base(replace(out, model=replace(out.model, dropout=args.dropout or 0.0)),
                      _store(args).resolve(args.base).folder, gentler=args.lr is None)
    return out


def _eta(seconds) -> str:
    """'…' while the first compiled call is still being timed (the event's eta is None)."""
    return "…" if seconds is None else f"{seconds:.0f}s"


def _run_card(run, info: dict) -> str:
    """`runs show` for a person: one fact a line (--json: everything)."""
    return "\n".join(f"{k:<10} {v}" for k, v in run_card(run, info)) + "\n(all of it: runs show --json)"


def _best(e: dict) -> str:
    b = e.get("best_val_loss")
    return "" if b is None else f", best val loss {b:.4f}"


def format_event(d: dict, run: str | None = None) -> str | None:
    """The line a person reads for one training event (None: nothing to show); `run` is the run's
    id where known. A phase's repeated progress updates are left out by `_HumanEvents`."""
    from desktop_llm.core import events as ev

    e = ev.parse(d)
    if isinstance(e, ev.Step):
        return (f"step {e.step:>6}/{e.max_steps}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
                f"{e.tokens_per_sec:,.0f} tok/s  {e.ms_per_step:.1f} ms/step  ETA {_eta(e.eta)}")
    if isinstance(e, ev.Eval):
        line = f"  eval at {e.step}: val loss {e.val_loss:.4f}"
        if e.classes is None:  # a classifier's loss is over its classes: no perplexity of text
            line += f"  perplexity {e.val_ppl:.2f}"
        if e.val_accuracy is not None:
            line += f"  accuracy {e.val_accuracy:.1%}"
        if e.val_macro_f1 is not None:
            line += f"  macro-F1 {e.val_macro_f1:.3f}"
        if e.val_bleu is not None:
            line += f"  BLEU {e.val_bleu:.1f}  exact {e.val_exact_match:.1%}"
        if e.sample:
            line += "\n  sample: " + e.sample.replace("\n", "\n          ")[:600]
        return line
    if isinstance(e, ev.Start):
        return (f"run {e.run}: {e.parameters:,} parameters, vocabulary {e.vocabulary_size}, "
                f"{e.train_tokens:,} train / {e.val_tokens:,} val tokens, on {e.device} ({e.policy})")
    if isinstance(e, ev.Phase):
        done = f"{100 * e.progress:.0f}%" if e.progress is not None else ""
        return f"[{e.phase or 'phase'}] " + " ".join(x for x in (e.message, done) if x)
    if isinstance(e, ev.Data) and e.classes is not None:
        counts = ", ".join(f"{c} {n:,}" for c, n in (e.counts or {}).items())
        return (f"[data] {e.examples:,} examples in {len(e.classes)} classes ({counts}): "
                f"{e.train_examples:,} train / {e.val_examples:,} validation")
    if isinstance(e, ev.Data) and e.examples is not None:
        return f"[data] {e.examples:,} sentence pairs: {e.train_examples:,} train / {e.val_examples:,} validation"
    if isinstance(e, ev.Data):
        chars = f" from {e.characters:,} characters" if e.characters is not None else ""
        return f"[data] {e.train_tokens or 0:,} train / {e.val_tokens or 0:,} validation tokens{chars}"
    if isinstance(e, ev.Checkpoint):
        return None
    at_step = {ev.ResumedFrom: "resuming from the checkpoint at step", ev.Paused: "paused at step",
               ev.Resumed: "resumed at step"}
    if type(e) in at_step:
        return f"{at_step[type(e)]} {e.step}"
    if isinstance(e, ev.Stopped):
        took = f", {duration(d['elapsed'])} of training" if d.get("elapsed") is not None else ""
        return (f"stopped at step {e.step}{_best(d)}{took}; "
                f"`desktop-llm train --resume {run or d.get('run') or 'RUN'}` continues")
    if isinstance(e, ev.Completed):
        took = f" in {duration(e.elapsed)}" if e.elapsed is not None else ""
        return f"completed: {e.step} steps{took}{_best(d)}"
    if isinstance(e, ev.Exported):
        return f"saved the best model (step {e.step}) to {e.path}"
    if isinstance(e, ev.Warning):
        return f"warning: {e.message}"
    if isinstance(e, ev.Failed):
        line = f"failed: {e.message}"
        if e.suggestion:
            line += f"\n  suggestion: {e.suggestion}"
        return line
    if isinstance(e, ev.RunFolder):
        return f"run folder: {e.folder}"
    return f"[{d.get('type')}] " + (d.get("message") or json.dumps(d, ensure_ascii=False))


class _HumanEvents:
    """Prints events as `format_event` lines: warnings and failures on stderr, a phase's message
    once (its later progress updates are the same message again and are not repeated)."""

    def __init__(self, run: str | None = None):
        self.run = run
        self.phase: tuple | None = None

    def __call__(self, e: dict) -> None:
        t = e.get("type")
        if t == "start":
            self.run = e.get("run") or self.run
        if t == "phase":
            same = self.phase is not None and e.get("phase") == self.phase[0]
            if same and (e.get("progress") is not None or e.get("message") == self.phase[1]):
                return  # a progress update of the phase already shown
            self.phase = (e.get("phase"), e.get("message"))
        line = format_event(e, self.run)
        if line is not None:
            print(line, flush=True, file=sys.stderr if t in ("warning", "failed") else sys.stdout)


def _quiet_when_orphaned(emit):
    """The run must not fail because nobody reads its output any more (the GUI was killed and
    the pipe is closed): events are still in metrics.jsonl and status.json."""

    def safe(e: dict) -> None:
        try:
            emit(e)
        except (BrokenPipeError, OSError, ValueError):
            pass  # stdout closed (the app that read it is gone): training goes on, unseen

    return safe


def cmd_train(args) -> int:
    from desktop_llm.core import events as ev
    from desktop_llm.core.training import Control

    _check_flags(args)
    store = _store(args)
    cluster = tuple(a.strip() for a in (args.cluster or "").split(",") if a.strip())
    chief = args.worker_index == 0
    if chief:
        store.require_writable()  # training writes checkpoints: refuse at once, with the reason
    if args.resume:
        if getattr(args, "encoding", None):
            raise CliError("--encoding applies to a new run: a resumed run reads its corpus as its config.json says.")
        run = store.resolve(args.resume)
        st = run.status().get("status")
        if chief and st in ("running", "paused", "starting"):
            raise CliError(f"Run {run.id} is already training (process {run.status().get('pid')}).")
        done = run.config.training.max_steps
        longer = f"To train longer, start a new run from its settings: desktop-llm train --config {run.config_path}"
        if args.steps is not None and args.steps != done:  # its learning-rate schedule is fixed by it
            raise CliError(f"--steps applies to a new run: run {run.id} keeps its {done} steps. {longer} "
                           f"--steps {args.steps}")
        if chief and st == "completed" and (run.status().get("step") or 0) >= done:
            raise CliError(f"Run {run.id} has completed its {done} steps; there is nothing to resume. {longer} --steps N")
        if args.devices and chief and args.devices != run.config.training.devices:
            run.save_config(replace(run.config, training=replace(run.config.training, devices=args.devices)))
    else:
        cfg = _run_config(args)
        cfg.validate()
        _check_devices(cfg.training.devices)
        if cfg.tokenizer.path and not (Path(cfg.tokenizer.path) / "tokenizer.json").exists():
            raise CliError(f"No tokenizer in {cfg.tokenizer.path} (tokenizer.json is missing).")
        _require_corpus(cfg.data.paths, cfg.data.texts, cfg.data.column, dict(cfg.data.encodings))
        if cfg.family == "classifier":  # refuse bad labels now, in one line, before a run exists
            from desktop_llm.core.models.classifier.examples import read_examples

            read_examples(cfg.data.paths, cfg.data.column, cfg.data.label_column, cfg.data.encodings)
        if cfg.family == "translator":  # and a line without a tab
            from desktop_llm.core.models.translator.pairs import read_pairs

            read_pairs(cfg.data.paths, cfg.data.column, cfg.data.target_column, cfg.data.encodings)
        run = store.create(cfg)
    from desktop_llm.native_log import retarget_native_stderr

    if chief:
        retarget_native_stderr(run.log_path)  # TensorFlow's own messages stay with the run
    emit = _quiet_when_orphaned(_out if args.json else _HumanEvents(run.id))
    if not args.json:
        print(f"run folder: {run.folder}", flush=True)
    else:
        _out(ev.RunFolder(run=run.id, folder=str(run.folder)).to_dict())
    control = Control()
    control.install_signal_handlers()
    if args.control_stdin:
        control.listen_stdin()
    _quiet_keras()
    from desktop_llm.core.training import train_run

    scratch = _own_temp_folder()
    try:
        st = train_run(run, emit=emit, control=control, store=store if chief else None,
                       cluster=cluster, worker_index=args.worker_index)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    code = 0 if st.get("status") in ("completed", "stopped") else 2
    # Everything is on disk (fsynced) by now. Skip the interpreter's teardown: TensorFlow's and
    # h5py's can crash after a real OOM (a corrupt heap) or a full disk (measured: exit 139 after
    # ENOSPC), which would turn a clean end into a "crash" for whoever started us.
    if not os.environ.get("DESKTOP_LLM_NO_FAST_EXIT"):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # the reader is gone (closed pipe): nothing left to tell it
        os._exit(code)
    return code


def _own_temp_folder() -> Path:
    """Point this process's temporary files at a folder of its own, removed when training ends.

    TensorFlow's autograph writes a module per traced function to the temp folder and deletes
    them at interpreter exit, which the trainer's fast exit skips: 14 files were left in /tmp
    by every run."""
    folder = Path(tempfile.mkdtemp(prefix="desktop_llm-train-"))
    tempfile.tempdir = str(folder)
    return folder


def _check_devices(spec: str | None) -> None:
    """Refuse an impossible --devices in one line before a run folder exists (the trainer would
    only find out after, leaving a failed run behind). GPU specs need TensorFlow's GPU list."""
    from desktop_llm.core.distribute import parse_devices

    s = (spec or "auto").strip().lower()
    if s in ("auto", "all", "cpu") or s.startswith("cpu:"):
        parse_devices(s, 0)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    parse_devices(s, len(tf.config.list_physical_devices("GPU")))


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (bound to port 0 together, so none repeats)."""
    import socket

    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def cmd_launch(args) -> int:
    """One run trained by N worker processes on this machine, talking over loopback exactly as
    machines of a cluster do (`train --cluster ... --worker-index i`). Worker 0, the chief,
    writes the run and its output is ours; the others' output goes to the run's workers/ folder."""
    import subprocess

    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import ensure_tokenizer

    _check_flags(args)
    if args.workers < 2:
        raise CliError("--workers must be 2 or more (one worker is `desktop-llm train`).")
    store = _store(args)
    store.require_writable()
    if args.resume:
        run = store.resolve(args.resume)
        if run.status().get("status") in ("running", "paused", "starting"):
            raise CliError(f"Run {run.id} is already training (process {run.status().get('pid')}).")
    else:
        cfg = _run_config(args)
        cfg.validate()
        _require_corpus(cfg.data.paths, cfg.data.texts, cfg.data.column, dict(cfg.data.encodings))
        run = store.create(cfg)
    emit = _out if args.json else _HumanEvents(run.id)
    # The tokenizer and token data are made once, here, so the workers do not race to write them.
    get_family(run.config.family).prepare_data(run, run.config, ensure_tokenizer(run, run.config, emit), emit)
    cluster = ",".join(f"127.0.0.1:{p}" for p in _free_ports(args.workers))
    logs = run.folder / "workers"  # the other workers' output stays with the run it belongs to
    logs.mkdir(exist_ok=True)
    base = [sys.executable, "-m", "desktop_llm", "--home", str(store.home), "train", "--resume", run.id,
            "--cluster", cluster] + (["--json"] if args.json else []) + (
            ["--devices", args.devices] if args.devices else [])
    procs = []
    for i in range(args.workers):
        out = None if i == 0 else open(logs / f"worker-{i}.out", "w")
        err = None if i == 0 else open(logs / f"worker-{i}.err", "w")
        procs.append(subprocess.Popen(base + ["--worker-index", str(i)], stdout=out, stderr=err))
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        codes = [p.wait() for p in procs]
    finals = []
    for i in range(1, args.workers):
        lines = [ln for ln in (logs / f"worker-{i}.out").read_text().splitlines() if ln.startswith("{")]
        finals.append(json.loads(lines[-1]) if lines else {})
    summary = {"type": "workers", "exit_codes": codes, "logs": str(logs),
               "weights_sha256": [f.get("weights_sha256") for f in finals]}
    if args.json:
        _out(summary)
    else:
        print(f"workers ended with exit codes {codes}; the other workers' output is in {logs}", flush=True)
    return codes[0] if codes[0] else max(codes)


# --------------------------------------------------------------------------- inference


def _load_run(args, family: str | tuple[str, ...] = "gpt"):
    _quiet_keras()
    from desktop_llm.core.loading import load_for_inference, require_family

    store = _store(args)
    families = (family,) if isinstance(family, str) else family
    run = store.resolve(args.run) if args.run else _newest_trained(store, families)
    if run is None:
        raise CliError("No runs yet: train one with `desktop-llm train`.")
    require_family(run, families, args.command)
    model, tok, ckpt = load_for_inference(run, args.checkpoint)
    return run, model, tok, ckpt


def cmd_fill_mask(args) -> int:
    from desktop_llm.core.models.masked_lm.fill_mask import fill_mask

    if args.top_k < 1:
        raise CliError(f"--top-k must be at least 1 (got {args.top_k}).")
    run, model, tok, ckpt = _load_run(args, family="masked_lm")
    masks = fill_mask(model, tok, args.text, top_k=args.top_k)
    if args.json:
        _out({"run": run.id, "checkpoint_step": ckpt.step, "text": args.text, "masks": masks})
        return 0
    for i, m in enumerate(masks, 1):
        print(f"[MASK] {i}: " + "  ".join(f"{c['token']!r} {c['p']:.1%}" for c in m["candidates"]))
    return 0


def cmd_classify(args) -> int:
    from desktop_llm.core.models.classifier.examples import LabelledData
    from desktop_llm.core.models.classifier.report import classify, report

    texts = list(args.texts)
    if args.file:
        try:
            texts += Path(args.file).read_text("utf-8", errors="replace").splitlines()
        except OSError as e:
            raise CliError(f"Cannot read {args.file}: {e.strerror or e}") from None
    if not texts and not args.report:
        raise CliError("Give texts to classify, --file, or --report.")
    run, model, tok, ckpt = _load_run(args, family="classifier")
    data = LabelledData(run.data_dir)
    out: dict = {"run": run.id, "checkpoint_step": ckpt.step, "classes": data.classes}
    if texts:
        out["results"] = classify(model, tok, data.classes, texts, run.config.model.sequence_length, data.specials)
    if args.report:
        out["report"] = report(model, data)
    if args.json:
        _out(out)
        return 0
    for r in out.get("results", []):
        probs = "  ".join(f"{c} {p:.0%}" for c, p in list(r["probabilities"].items())[:5])
        print(f"{r['label']}\t{probs}\t{r['text'][:80]}" + ("  (cut to the context)" if r["cut"] else ""))
    if args.report:
        rep = out["report"]
        width = max(len(c) for c in data.classes)
        print(f"accuracy {rep['accuracy']:.1%}   macro-F1 {rep['macro_f1']:.3f}   "
              f"({sum(pc['support'] for pc in rep['per_class'])} validation texts)")
        print(f"{'class':<{width}}  precision  recall  f1     support")
        for c, pc in zip(data.classes, rep["per_class"]):
            print(f"{c:<{width}}  {pc['precision']:9.1%}  {pc['recall']:6.1%}  {pc['f1']:.3f}  {pc['support']}")
        print("confusion (rows: true, columns: predicted): " + json.dumps(rep["confusion"]))
        for m in rep["misclassified"][:10]:
            print(f"wrong: {m['true']} read as {m['predicted']} ({m['p']:.0%}): {m['text'][:70]!r}")
    return 0


def cmd_translate(args) -> int:
    from desktop_llm.core.models.translator.decode import Translator

    run, model, tok, ckpt = _load_run(args, family="translator")
    translator = Translator(model, tok, run.config.model.sequence_length)
    if args.json:
        text = translator.stream(args.text, lambda piece: _out({"type": "piece", "text": piece}))
        _out({"type": "done", "run": run.id, "checkpoint_step": ckpt.step, "source": args.text, "translation": text})
    else:
        translator.stream(args.text, lambda piece: print(piece, end="", flush=True))
        print()
    return 0


ENCODERS = ("masked_lm", "classifier")  # runs with a BERT encoder: sentence embeddings


def cmd_similar(args) -> int:
    from desktop_llm.core.inference.embeddings import build_index, embed

    if args.top_k < 1:
        raise CliError(f"--top-k must be at least 1 (got {args.top_k}).")
    run, model, tok, ckpt = _load_run(args, family=ENCODERS)
    index = build_index(model, tok, run, args.pooling)
    hits = index.search(embed(model, tok, [args.text], args.pooling)[0], args.top_k)
    if args.json:
        _out({"run": run.id, "checkpoint_step": ckpt.step, "query": args.text, "pooling": args.pooling,
              "searched": len(index.items), "results": hits})
        return 0
    for h in hits:
        print(f"{h['score']:.3f}  [{h['source']}]  {h['text'][:100]}")
    return 0


def cmd_embed(args) -> int:
    from desktop_llm.core.inference.embeddings import build_index, embed, write_projector

    if not args.text and not args.projector:
        raise CliError("Give --text to embed, or --projector DIR to write the run's sentences for "
                       "TensorBoard's projector.")
    run, model, tok, ckpt = _load_run(args, family=ENCODERS)
    out: dict = {"run": run.id, "checkpoint_step": ckpt.step, "pooling": args.pooling}
    if args.text:
        vectors = embed(model, tok, args.text, args.pooling)
        out["embeddings"] = [{"text": t, "vector": [round(float(x), 6) for x in v]}
                             for t, v in zip(args.text, vectors)]
    if args.projector:
        index = build_index(model, tok, run, args.pooling)
        vec, meta = write_projector(args.projector, index)
        agree, chance = index.neighbour_agreement()
        out.update({"vectors": str(vec), "metadata": str(meta), "sentences": len(index.items),
                    "nearest_same_source": agree, "by_chance": chance})
    if args.json:
        _out(out)
        return 0
    for e in out.get("embeddings", []):
        print(f"{e['text'][:60]!r}: {len(e['vector'])} numbers, first {e['vector'][:4]}")
    if args.projector:
        print(f"wrote {out['vectors']} and {out['metadata']} ({out['sentences']:,} sentences): load them at "
              "projector.tensorflow.org, or in TensorBoard's projector")
        print(f"nearest neighbour from the same source: {out['nearest_same_source']:.0%} "
              f"(by chance {out['by_chance']:.0%})")
    return 0


def _newest_trained(store, family: str | tuple[str, ...] = "gpt"):
    """The newest run of `family` that has a checkpoint (one that failed at once or is still
    preparing has nothing to load), else the newest run, else None."""
    rows = store.list()
    for r in rows:
        run = store.get(r["id"])
        if (run.checkpoints_dir / "index.json").exists() and run.config.family in (
                (family,) if isinstance(family, str) else family):
            return run
    return store.get(rows[0]["id"]) if rows else None


def cmd_eval(args) -> int:
    from desktop_llm.core.evaluation import evaluate_text, evaluate_windows, split_windows

    _check_flags(args)
    if args.text is not None and args.file:
        raise CliError("Give --file or --text, not both.")
    text = _read_text_file(args.file) if args.file else args.text  # before loading the model
    run, model, tok, ckpt = _load_run(args)
    if text is not None:
        ev, per_token = evaluate_text(model, tok, text)
        source = "text" if args.text is not None else args.file
    else:
        from desktop_llm.core.data import TokenData

        data = TokenData(run.data_dir)
        x, y = split_windows(data.val, model.backbone.max_sequence_length, args.max_windows)
        ev, per_token = evaluate_windows(model, x, y), None
        source = "validation split"
    result = {"run": run.id, "checkpoint_step": ckpt.step, "source": source, **ev.to_dict()}
    if args.per_token and per_token is not None:
        result["per_token"] = [{"id": i, "token": t, "loss": None if l != l else l}
                               for i, t, l in zip(per_token.token_ids, per_token.tokens, per_token.losses)]
    if args.json:
        _out(result)
    else:
        print(f"{source}: loss {ev.loss:.4f}  perplexity {ev.perplexity:.3f}  "
              f"({ev.tokens:,} tokens, checkpoint at step {ckpt.step})")
        if args.per_token and per_token is not None:
            for t, l in zip(per_token.tokens, per_token.losses):
                print(f"  {t!r:>14}  {'-' if l != l else f'{l:.3f}'}")
    return 0


def _read_text_file(path: str) -> str:
    return "".join(_require_corpus([path]).iter_text())


def _sampling(args):
    """The sampling settings, checked (before the model is loaded)."""
    from desktop_llm.core.generation import SamplingConfig

    cfg = SamplingConfig(max_new_tokens=args.max_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                         stop=tuple(s.encode().decode("unicode_escape") for s in args.stop or ()))
    cfg.validate()
    return cfg


def cmd_generate(args) -> int:
    from desktop_llm.core.generation import Generator

    cfg = _sampling(args)
    run, model, tok, _ = _load_run(args)
    gen = Generator(model, tok)
    if args.json:
        result = gen.generate(args.prompt, cfg, on_token=lambda t: _out(
            {"type": "token", "id": t.id, "text": t.text, "p": t.probability}))
        _out({"type": "done", "text": result.text, "tokens": len(result.tokens),
              "tokens_per_sec": result.tokens_per_second, "stopped_by": result.stopped_by})
    else:
        if sys.stderr.isatty():  # the first token waits for XLA to compile the decoding loop
            print("(compiling the decoding loop: seconds the first time, then cached on disk)", file=sys.stderr)
        sys.stdout.write(args.prompt)
        result = gen.generate(args.prompt, cfg, on_token=lambda t: (sys.stdout.write(t.text), sys.stdout.flush()))
        print(flush=True)  # the text ends with a line break, also where stdout goes to a file
        print(f"[{len(result.tokens)} tokens, {result.tokens_per_second:.0f} tokens/s]", file=sys.stderr)
    return 0


def cmd_chat(args) -> int:
    from desktop_llm.core.generation import ChatSession, Generator

    cfg = _sampling(args)
    run, model, tok, _ = _load_run(args)
    chat = ChatSession(Generator(model, tok), args.user_prefix, args.bot_prefix)
    print(f"Chatting with run {run.id}. Empty line or Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print()  # Ctrl-D leaves the cursor after the prompt: end the line
            break
        if not line.strip():
            if not sys.stdin.isatty():
                print()  # nobody's Enter was echoed after the prompt
            break
        sys.stdout.write("  ")
        chat.reply(line, cfg, on_token=lambda t: (sys.stdout.write(t.text), sys.stdout.flush()))
        print()
    return 0


ATTENTION_SHOWN = 12  # tokens listed per head in the terminal


def cmd_attention(args) -> int:
    import numpy as np

    from desktop_llm.core.inspection import inspect_text

    run, model, tok, ckpt = _load_run(args, family=("gpt", "masked_lm", "classifier", "translator"))
    if args.kind != "self" and run.config.family != "translator":  # a translator's three; others have one
        raise CliError(f"--kind {args.kind} is for translator runs: run {run.id} ({run.config.family}) has "
                       "self-attention only (leave --kind out).")
    maps = inspect_text(model, tok, args.text, args.kind)
    if args.out:
        np.savez_compressed(args.out, weights=maps.weights, token_ids=np.array(maps.token_ids))
    if args.json:
        _out({"tokens": maps.tokens, "token_ids": maps.token_ids, "key_tokens": maps.columns, "kind": maps.kind,
              "notes": maps.notes, "shape": list(maps.weights.shape), "weights": maps.weights.round(5).tolist()})
    else:
        L, H, T, _ = maps.weights.shape
        shown = min(T, ATTENTION_SHOWN)
        note = f"; each head below lists the first {shown} of the {T} tokens (--json or --out for all)"
        print(f"{T} tokens, {L} layers x {H} heads, {maps.kind} attention (checkpoint step {ckpt.step})"
              + (note if shown < T else ""))
        for layer in range(L):
            for head in range(H):
                w = maps.weights[layer, head]
                top = [int(np.argmax(w[i])) for i in range(shown)]
                print(f"layer {layer} head {head}: each token attends most to -> "
                      + " ".join(f"{maps.tokens[i]!r}->{maps.columns[j]!r}" for i, j in enumerate(top)))
        for note in maps.notes:
            print(note)
    return 0


# --------------------------------------------------------------------------- runs


def cmd_runs(args) -> int:
    store = _store(args)
    action = args.action
    if getattr(args, "id", None) and action in ("show", "delete", "export"):
        args.id = store.resolve(args.id).id  # a name or the start of an id, like the other commands
    if action == "list":
        rows = store.list()
        if args.json:
            _out({"runs": [{k: v for k, v in r.items() if k != "config"} for r in rows]})
            return 0
        if not rows:
            print(f"No runs in {store.home}.")
        for r in rows:
            best = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
            print(f"{r['id']:<40} {r['status']:<12} step {r['step'] or 0:>6}/{r['max_steps']:<6} "
                  f"best val {best:<8} {r['summary']}")
    elif action == "show":
        run = store.get(args.id) if args.id else store.latest()
        if run is None:
            raise CliError("No runs yet: train one with `desktop-llm train`.")
        info = {"id": run.id, "folder": str(run.folder), **run.status(), "config": run.config.to_dict()}
        _out(info) if args.json else print(_run_card(run, info))
    elif action == "delete":
        store.delete(_need(args.id))
        print(f"deleted {args.id}")
    elif action == "export":
        if args.dest and args.out and args.dest != args.out:
            raise CliError("Give the destination once: --out PATH.")
        dest = store.export(_need(args.id), args.out or args.dest)  # default: <workspace>/exports/
        _out({"path": str(dest)}) if args.json else print(f"exported to {dest}")
    elif action == "import":
        if not args.id:
            raise CliError("Give the zip to import: desktop-llm runs import FILE.zip")
        run = store.import_run(args.id)
        if args.json:
            _out({"id": run.id, "folder": str(run.folder)})
        else:
            print(f"imported {args.id} as run {run.id} ({run.folder})")
    elif action == "rebuild":
        n = store.rebuild()
        print(f"catalog rebuilt from {n} run folders")
    return 0


def _need(v):
    if not v:
        raise CliError("Give a run id.")
    return v


# --------------------------------------------------------------------------- doctor


def cmd_doctor(args) -> int:
    from desktop_llm.about import doctor, format_doctor

    report = doctor(args.home, with_devices=not args.no_devices)
    _out(report) if args.json else print(format_doctor(report))
    return 0


def _version() -> str:
    from desktop_llm.about import version

    return version()


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """A mistyped command or flag value gets one `error: ...` line, like every other mistake
    (argparse's default prints the whole usage first). Subcommands inherit this class."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="desktop-llm", description=__doc__.splitlines()[0])
    p.add_argument("--home", help="workspace folder (default: $DESKTOP_LLM_HOME or the user data dir)")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                   help="print desktop_llm's version and exit")
    sub = p.add_subparsers(dest="command")

    g = sub.add_parser("gui", help="open the desktop application (the default)")
    g.add_argument("--corpus", nargs="+", action="extend", metavar="PATH",
                   help="files or folders to load at start (several after one --corpus, or repeat it)")
    g.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # desktop-llm-gui --home
    # Hidden, for checks of a build (packaging/smoke_test.sh): save the window to PATH once it has
    # been shown for --screenshot-delay seconds, then quit (exit status 1 if it could not be saved).
    g.add_argument("--screenshot", metavar="PATH", help=argparse.SUPPRESS)
    g.add_argument("--screenshot-delay", type=float, default=3.0, metavar="SECONDS", help=argparse.SUPPRESS)

    dr = sub.add_parser("doctor", help="versions, devices, workspace and what is missing")
    dr.add_argument("--json", action="store_true", help="print one JSON object")
    dr.add_argument("--no-devices", action="store_true",
                    help="skip listing the devices (that imports TensorFlow: seconds)")
    dr.set_defaults(func=cmd_doctor)

    c = sub.add_parser("corpus", help="inspect a corpus").add_subparsers(dest="action", required=True)
    cs = c.add_parser("stats", help="documents, characters, encodings and split of a corpus")
    cs.add_argument("paths", nargs="+", help="text files or folders")
    cs.add_argument("--column", help="text column of JSONL/CSV files")
    cs.add_argument("--encoding", metavar="ENC",
                      help="read every file with this encoding, not the detected one (big5, cp1252...)")
    cs.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of the text held out for validation (default %(default)s)")
    cs.add_argument("--json", action="store_true", help="print one JSON object")
    cs.set_defaults(func=cmd_corpus_stats)

    t = sub.add_parser("tokenizer", help="train and try tokenizers").add_subparsers(dest="action", required=True)
    tt = t.add_parser("train", help="train a tokenizer on a corpus")
    tt.add_argument("paths", nargs="+", help="text files or folders to train on")
    tt.add_argument("--kind", default="char", choices=["char", "byte", "wordpiece", "sentencepiece", "bpe"],
                    help="tokenizer kind (default %(default)s)")
    tt.add_argument("--vocab-size", type=int, help="vocabulary size (default: the kind's own)")
    tt.add_argument("--column", help="text column of JSONL/CSV files")
    tt.add_argument("--encoding", metavar="ENC",
                      help="read every file with this encoding, not the detected one (big5, cp1252...)")
    tt.add_argument("--out", required=True, help="folder to save the tokenizer in")
    tt.set_defaults(func=cmd_tokenizer_train)
    te = t.add_parser("encode", help="split a text into tokens")
    te.add_argument("text", help="the text to encode")
    te.add_argument("--tokenizer", metavar="DIR", help="a tokenizer folder")
    te.add_argument("--run", help="use this run's tokenizer (id, start of an id, or name)")
    te.add_argument("--json", action="store_true", help="print ids, tokens and the decoded text as JSON")
    te.set_defaults(func=cmd_tokenizer_encode)

    def model_args(sp):
        sp.add_argument("--preset", choices=["tiny", "small", "base", "large"],
                        help="model size to start from (the options below override it)")
        sp.add_argument("--layers", type=int, help="number of Transformer blocks")
        sp.add_argument("--heads", type=int, help="attention heads per block")
        sp.add_argument("--width", type=int, help="hidden (embedding) width")
        sp.add_argument("--ffn", type=int, help="feed-forward width (default 4 x width)")
        sp.add_argument("--context", type=int, help="context length in tokens")
        sp.add_argument("--dropout", type=float, help="dropout rate, 0 to below 1")
        sp.add_argument("--untied", action="store_true", help="separate output projection")

    m = sub.add_parser("model", help="model sizes").add_subparsers(dest="action", required=True)
    mi = m.add_parser("info", help="parameters, FLOPs and memory of a configuration")
    model_args(mi)
    mi.add_argument("--vocab-size", type=int, default=65, help="vocabulary size (default %(default)s)")
    mi.add_argument("--batch-size", type=int, default=12,
                    help="batch size for the memory estimate (default %(default)s)")
    mi.add_argument("--json", action="store_true", help="print one JSON object")
    mi.set_defaults(func=cmd_model_info)

    d = sub.add_parser("devices", help="the devices TensorFlow sees")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=cmd_devices)

    tr = sub.add_parser("train", help="train a model (or resume a run)")
    tr.add_argument("paths", nargs="*", help="corpus files/folders (default: the bundled sample)")
    tr.add_argument("--config", help="a run's config.json: repeat that run")
    tr.add_argument("--resume", metavar="RUN", help="continue a stopped or interrupted run (id, start of an id, or name)")
    tr.add_argument("--name", help="the run's name (default: the corpus file's name)")
    tr.add_argument("--family", choices=["gpt", "masked_lm", "classifier", "translator"],
                    help="what the model learns: gpt (next token, the default), masked_lm (BERT-style "
                         "masked tokens), classifier (a label per text) or translator (sentence pairs)")
    tr.add_argument("--base", metavar="RUN",
                    help="classifier: the pretrained masked_lm or gpt run to fine-tune (default: from scratch)")
    tr.add_argument("--label-column", help="classifier: the label column of CSV/JSONL files "
                                           "(default: one named label, class, category...)")
    tr.add_argument("--target-column", help="translator: the target field of JSONL pairs (--column: the source; "
                                            "TSV: the first two columns)")
    tr.add_argument("--freeze-steps", type=int,
                    help="classifier: train only the head for this many steps first (default 0)")
    tr.add_argument("--column", help="text column of JSONL/CSV files")
    tr.add_argument("--encoding", metavar="ENC",
                      help="read every file with this encoding, not the detected one (big5, cp1252...)")
    tr.add_argument("--val-fraction", type=float, help="share of the text held out for validation (default 0.1)")
    tr.add_argument("--tokenizer-kind", choices=["char", "byte", "wordpiece", "sentencepiece", "bpe"],
                    help="tokenizer to train for the run (default char)")
    tr.add_argument("--vocab-size", type=int, help="tokenizer vocabulary size (default: the kind's own)")
    tr.add_argument("--tokenizer", help="a tokenizer folder to use instead of training one")
    tr.add_argument("--separate-tokenizers", action="store_true",
                    help="translator: one tokenizer for the source, one for the target (default: one shared)")
    model_args(tr)
    tr.add_argument("--steps", type=int, help="training steps (default 2000)")
    tr.add_argument("--batch-size", type=int, help="global batch size in sequences (default 12)")
    tr.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    tr.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay (default 1e-4)")
    tr.add_argument("--warmup", type=int, help="warm-up steps (default 100)")
    tr.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.1)")
    tr.add_argument("--clip", type=float, help="gradient norm clipping, 0 turns it off (default 1.0)")
    tr.add_argument("--eval-interval", type=int, help="steps between evaluations (default 250)")
    tr.add_argument("--eval-batches", type=int, help="validation batches per evaluation (default 20)")
    tr.add_argument("--checkpoint-interval", type=int,
                    help="steps between checkpoints (default 0: at every evaluation)")
    tr.add_argument("--log-interval", type=int,
                    help="steps fused into one compiled call and one metrics line (default 10)")
    tr.add_argument("--sample-tokens", type=int, help="tokens of sample text at each evaluation (default 120)")
    tr.add_argument("--seed", type=int, help="random seed (default 1337)")
    tr.add_argument("--mixed-precision", choices=["auto", "off", "bfloat16", "float16"],
                    help="auto: bfloat16 on GPUs of compute capability 8+, else float32 (default auto)")
    tr.add_argument("--no-xla", action="store_true", help="turn off XLA compilation")
    tr.add_argument("--json", action="store_true", help="stream events as JSON lines on stdout")
    tr.add_argument("--control-stdin", action="store_true",
                    help="obey 'pause', 'resume', 'stop' lines on stdin (used by the GUI)")
    distribution_args(tr)
    tr.set_defaults(func=cmd_train)

    la = sub.add_parser("launch", help="train one run with N worker processes on this machine "
                                       "(multi-worker data parallelism over loopback)",
                        parents=[], conflict_handler="resolve")
    la.add_argument("--workers", type=int, required=True, help="number of worker processes (2 or more)")
    for action in tr._actions:  # every `train` option means the same here
        if action.dest not in ("help", "cluster", "worker_index", "control_stdin") and action.option_strings:
            la._add_action(action)
        elif action.dest == "paths":
            la._add_action(action)
    la.set_defaults(func=cmd_launch)

    def run_args(sp):
        sp.add_argument("run", nargs="?",
                        help="run id, the start of one, or run name (default: the newest trained run)")
        sp.add_argument("--checkpoint", default="best", choices=["best", "latest"],
                        help="which checkpoint of the run to load (default %(default)s)")

    ev = sub.add_parser("eval", help="perplexity on the validation split, a file or a text")
    run_args(ev)
    ev.add_argument("--file", help="a text file to measure (default: the run's validation split)")
    ev.add_argument("--text", help="a text to measure")
    ev.add_argument("--per-token", action="store_true", help="also list each token's loss (--file, --text)")
    ev.add_argument("--max-windows", type=int, default=2000,
                    help="at most this many windows of the validation split (default %(default)s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_eval)

    def sampling_args(sp):
        sp.add_argument("--max-tokens", type=int, default=200, help="tokens to generate (default %(default)s)")
        sp.add_argument("--temperature", type=float, default=0.8,
                        help="sampling temperature, 0 for greedy (default %(default)s)")
        sp.add_argument("--top-k", type=int, default=0,
                        help="sample from the k likeliest tokens, 0 for all (default %(default)s)")
        sp.add_argument("--top-p", type=float, default=1.0,
                        help="nucleus sampling probability mass, 1 for off (default %(default)s)")
        sp.add_argument("--seed", type=int, help="random seed, for a repeatable text")
        sp.add_argument("--stop", action="append", help="stop sequence (repeatable; \\n allowed)")

    ge = sub.add_parser("generate", help="generate text from a prompt, streaming")
    run_args(ge)
    ge.add_argument("--prompt", default="", help="the text to continue (default: none)")
    sampling_args(ge)
    ge.add_argument("--json", action="store_true", help="stream tokens as JSON lines")
    ge.set_defaults(func=cmd_generate)

    ch = sub.add_parser("chat", help="chat with a model in the terminal")
    run_args(ch)
    sampling_args(ch)
    ch.add_argument("--user-prefix", default="User: ", help="put before your lines (default %(default)r)")
    ch.add_argument("--bot-prefix", default="Bot: ", help="put before the model's replies (default %(default)r)")
    ch.set_defaults(func=cmd_chat)

    fm = sub.add_parser("fill-mask", help="a masked-LM run's top guesses for each [MASK] in a text")
    run_args(fm)
    fm.add_argument("--text", required=True, help='the text, with [MASK] where a token is hidden, e.g. "To be or [MASK]"')
    fm.add_argument("--top-k", type=int, default=10, help="candidates per mask (default %(default)s)")
    fm.add_argument("--json", action="store_true", help="print one JSON object")
    fm.set_defaults(func=cmd_fill_mask)

    cl = sub.add_parser("classify", help="a classifier run's class probabilities for texts, or its report")
    run_args(cl)
    cl.add_argument("--text", action="append", dest="texts", default=[],
                    help="a text to classify (repeatable)")
    cl.add_argument("--file", help="classify each line of this file")
    cl.add_argument("--report", action="store_true",
                    help="accuracy, macro-F1, confusion matrix, per-class precision/recall and the "
                         "misclassified texts of the validation split")
    cl.add_argument("--json", action="store_true", help="print JSON")
    cl.set_defaults(func=cmd_classify)

    for name, helptext in (("similar", "the corpus' sentences closest in meaning to a text (an encoder run)"),
                           ("embed", "sentence embeddings of texts, or of the run's sentences for TensorBoard's "
                                     "projector (an encoder run)")):
        sp = sub.add_parser(name, help=helptext)
        run_args(sp)
        sp.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                        help="mean of the token states, or the [CLS] state (default %(default)s)")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "similar":
            sp.add_argument("--text", required=True, help="the text to search for")
            sp.add_argument("--top-k", type=int, default=10, help="how many sentences (default %(default)s)")
            sp.set_defaults(func=cmd_similar)
        else:
            sp.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
            sp.add_argument("--projector", metavar="DIR",
                            help="write vectors.tsv and metadata.tsv of the run's sentences to DIR")
            sp.set_defaults(func=cmd_embed)

    tl = sub.add_parser("translate", help="a translator run's translation of a text, streamed")
    run_args(tl)
    tl.add_argument("--text", required=True, help="the text to translate")
    tl.add_argument("--json", action="store_true", help="stream pieces as JSON lines, then the whole")
    tl.set_defaults(func=cmd_translate)

    at = sub.add_parser("attention", help="attention weights of each layer and head for a text")
    run_args(at)
    at.add_argument("--text", required=True, help="the text to look at")
    at.add_argument("--out", help="save the weights to an .npz file")
    at.add_argument("--kind", choices=["self", "encoder", "decoder", "cross"], default="self",
                    help="a translator's attention: encoder (source), decoder (its translation) or cross "
                         "(translation -> source); other runs have one kind (default %(default)s)")
    at.add_argument("--json", action="store_true", help="print tokens and weights as JSON")
    at.set_defaults(func=cmd_attention)

    r = sub.add_parser("runs", help="list, show, delete, export, import runs; rebuild the catalog")
    r.add_argument("action", nargs="?", default="list",
                   choices=["list", "show", "delete", "export", "import", "rebuild"],
                   help="what to do (default %(default)s)")
    r.add_argument("id", nargs="?", help="run id (show: default the newest run); for import, the zip")
    r.add_argument("dest", nargs="?", help=argparse.SUPPRESS)  # the older spelling of --out
    r.add_argument("--out", metavar="PATH",
                   help="export: zip file or folder to write (default: <workspace>/exports/)")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=cmd_runs)

    from desktop_llm.cli_export import add_parser as add_export_parser

    add_export_parser(sub)  # `desktop-llm export`: keras-hub, savedmodel, onnx, litert
    return p


def distribution_args(sp) -> None:
    sp.add_argument("--devices", help="where to train: all (every GPU, the default), a count (2), GPU "
                                      "numbers (0,2), cpu, or cpu:N (N logical CPU devices, for trying "
                                      "data parallelism without GPUs)")
    sp.add_argument("--cluster", help="host:port of every worker of a multi-machine run, comma-separated "
                                      "(the same list on every machine; or set TF_CONFIG)")
    sp.add_argument("--worker-index", type=int, default=0,
                    help="this machine's position in --cluster (0 is the chief, which writes the run)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        from desktop_llm.app import run_app

        return run_app(home=args.home, corpus=getattr(args, "corpus", None),
                       screenshot=getattr(args, "screenshot", None),
                       screenshot_delay=getattr(args, "screenshot_delay", 3.0))
    from desktop_llm.native_log import redirect_native_stderr

    redirect_native_stderr()
    if args.command in ("generate", "chat", "eval", "attention", "fill-mask", "classify", "similar", "embed",
                        "translate"):
        from desktop_llm.core import xla_cache

        xla_cache.enable()  # before TensorFlow loads: the decoding loop compiled once, reused
    try:
        return args.func(args)
    except (DesktopLLMError, ValueError) as e:  # what a person can act on: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
