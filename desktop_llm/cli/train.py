"""`desktop-llm train` and `desktop-llm launch`: a run from flags or a config, trained here, by a
cluster's workers, or by N local worker processes."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from desktop_llm.cli.common import (
    CliError,
    check_flags,
    encodings_of,
    out,
    quiet_keras,
    require_corpus,
    store_of,
)
from desktop_llm.cli.model import model_args, model_config
from desktop_llm.cli.render import HumanEvents, quiet_when_orphaned


def run_config(args):
    """The run that `train` flags (and `--config`) describe; the family's own rules from its folder."""
    from desktop_llm.core.config import DEFAULT_FAMILY, RunConfig, TokenizerConfig, TrainConfig, run_name
    from desktop_llm.core.models import families, get_family
    from desktop_llm.resources import sample_corpus

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    paths = tuple(str(Path(p).resolve()) for p in args.paths) if args.paths else cfg.data.paths
    if not paths and not cfg.data.texts:
        paths = (str(sample_corpus()),)
    data = replace(cfg.data, paths=paths)
    if getattr(args, "encoding", None):  # replaces the config's choices: every file given, this one
        data = replace(data, encodings=tuple(encodings_of(args, paths).items()))
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
    model = model_config(args, cfg.model)
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
    name = run_name(args.name or cfg.name, paths)
    family = args.family or (cfg.family if args.config else DEFAULT_FAMILY)
    fam = get_family(family)
    if getattr(args, "label_column", None):
        data = replace(data, label_column=args.label_column)
    if getattr(args, "group_column", None):
        data = replace(data, group_column=args.group_column)
    if getattr(args, "accept_unknown", False):
        data = replace(data, accept_unknown=True)
    if getattr(args, "target_column", None):
        data = replace(data, target_column=args.target_column)
    if getattr(args, "freeze_steps", None) is not None:
        tr = replace(tr, freeze_steps=args.freeze_steps)
    if getattr(args, "no_probes", False):
        tr = replace(tr, probes=False)
    if getattr(args, "model_parallel", None) is not None:
        tr = replace(tr, model_parallel=args.model_parallel)
    if getattr(args, "snapshot_budget", None) is not None:
        tr = replace(tr, snapshot_budget_mb=args.snapshot_budget)
    if getattr(args, "lora_rank", None):
        if not fam.lora:
            can = " or ".join(f.name for f in families() if f.lora)
            raise CliError(f"--lora-rank fine-tunes a {can} run with LoRA; a {family} run trains its own way.")
        if not getattr(args, "base", None):
            raise CliError("LoRA adapts a trained run: give the run to start from (--base RUN).")
        tr = replace(tr, lora_rank=args.lora_rank)
    if getattr(args, "separate_tokenizers", False):
        if not fam.separate_tokenizers:
            raise CliError("--separate-tokenizers gives a translator's source and target a tokenizer each: "
                           "add --family translator.")
        tk = replace(tk, separate=True)
    result = RunConfig(name=name, family=family, base_run=cfg.base_run if args.config else "", data=data,
                    tokenizer=tk, model=model, training=tr,
                    pooling=getattr(args, "pooling", None) or (cfg.pooling if args.config else "mean"))
    if not args.config and args.steps is None:  # the family's own length (a classifier's: short)
        result = replace(result, training=fam.default_training(tr))
    if getattr(args, "base", None):
        if not fam.starts_from_base:
            can = " or ".join(f.name for f in families() if f.starts_from_base)
            raise CliError(f"--base starts a run from a trained one: add --family {can}.")
        if args.tokenizer or args.tokenizer_kind or args.vocab_size is not None:
            raise CliError("A fine-tune reads text with its base run's tokenizer: leave out --tokenizer, "
                           "--tokenizer-kind and --vocab-size.")
        if any(getattr(args, a, None) is not None for a in ("preset", "layers", "heads", "width", "ffn",
                                                            "context")):
            raise CliError("A fine-tune has its base run's shape: leave out --preset, --layers, --heads, "
                           "--width, --ffn and --context.")
        from desktop_llm.core.tokenizers import is_keras_hub_preset

        base = Path(args.base) if is_keras_hub_preset(args.base) else store_of(args).resolve(args.base).folder
        result = fam.on_base(replace(result, model=replace(result.model, dropout=args.dropout or 0.0)),
                          base, gentler=args.lr is None)
    return result


def cmd_train(args) -> int:
    from desktop_llm.core import events as ev
    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import Control

    check_flags(args)
    store = store_of(args)
    cluster = tuple(a.strip() for a in (args.cluster or "").split(",") if a.strip())
    chief = args.worker_index == 0
    if chief:
        store.require_writable()  # training writes checkpoints: refuse at once, with the reason
    if args.resume:
        if getattr(args, "encoding", None):
            raise CliError("--encoding applies to a new run: a resumed run reads its corpus as its config.json says.")
        run = store.resolve(args.resume)
        if chief:
            run.lock()  # before any check: of two trainers started together, one gets the run
        st = run.status().get("status")
        if chief and st in ("running", "paused", "starting"):  # a trainer on another machine (synced folder)
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
        cfg = run_config(args)
        cfg.validate()
        refuse_devices(cfg)
        if cfg.tokenizer.path and not (Path(cfg.tokenizer.path) / "tokenizer.json").exists():
            raise CliError(f"No tokenizer in {cfg.tokenizer.path} (tokenizer.json is missing).")
        corpus = require_corpus(cfg.data.paths, cfg.data.texts, cfg.data.column, dict(cfg.data.encodings))
        get_family(cfg.family).check_data(cfg)  # refuse bad labels or pairs now, before a run exists
        if args.vocab_size is not None and not cfg.tokenizer.path:  # a size the user chose: can it work?
            from desktop_llm.core.tokenizers import check_vocabulary

            check_vocabulary(cfg.tokenizer.kind, corpus.iter_text(), cfg.tokenizer.vocabulary_size)
        run = store.create(cfg)
        if chief:
            run.lock()  # held for this process's life (resumes and deletes wait for it to end)
    from desktop_llm.native_log import retarget_native_stderr

    if chief:
        retarget_native_stderr(run.log_path)  # TensorFlow's own messages stay with the run
    emit = quiet_when_orphaned(out if args.json else HumanEvents(run.id))
    if not args.json:
        print(f"run folder: {run.folder}", flush=True)
    else:
        out(ev.RunFolder(run=run.id, folder=str(run.folder)).to_dict())
    control = Control()
    control.install_signal_handlers()
    if args.control_stdin:
        control.listen_stdin()
    _fastest_backend(args, run, store, cluster, emit)
    quiet_keras()
    from desktop_llm.core.training import train_run

    scratch = own_temp_folder()
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


def own_temp_folder() -> Path:
    """Point this process's temporary files at a folder of its own, removed when training ends.

    TensorFlow's autograph writes a module per traced function to the temp folder and deletes
    them at interpreter exit, which the trainer's fast exit skips: 14 files were left in /tmp
    by every run."""
    folder = Path(tempfile.mkdtemp(prefix="desktop_llm-train-"))
    tempfile.tempdir = str(folder)
    return folder


def check_devices(spec: str | None) -> None:
    """Refuse an impossible --devices in one line before a run folder exists (the trainer would
    only find out after, leaving a failed run behind). GPU specs need TensorFlow's GPU list."""
    from desktop_llm.core import backend
    from desktop_llm.core.distribute import parse_devices

    s = (spec or "auto").strip().lower()
    name = backend.current().name
    several = s.startswith(("cpu:", "gpu:")) or "," in s.strip(",") or (s.isdigit() and int(s) > 1)
    if name == "torch" and several:
        raise CliError(f"--devices {spec}: the torch backend trains on one device (Keras has no data parallelism "
                       "for it yet); use --backend jax or tensorflow for several.")
    if name == "jax" and s.startswith("gpu:"):
        raise CliError(f"--devices {spec}: splitting one GPU is for the tensorflow backend.")
    if s in ("auto", "all", "cpu") or s.startswith("cpu:"):
        parse_devices(s, 0)
        return
    if name != "tensorflow":  # the runner counts its GPUs when it starts
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    parse_devices(s, len(tf.config.list_physical_devices("GPU")))


def _fastest_backend(args, run, store, cluster, emit) -> None:
    """`--backend auto` on a CPU with several backends: time them on this run's model and train on
    the fastest (core/backend_probe.py; once per machine and shape)."""
    from desktop_llm.core import backend, backend_probe
    from desktop_llm.core import events as ev

    if args.worker_index != 0 or not backend_probe.wanted(args.backend, run.config, cluster):
        return
    say = lambda text: emit(ev.Phase(phase="speed", message=text).to_dict())  # noqa: E731
    choice = backend_probe.choose(run, backend_probe.prepare(run, emit), store.home, say)
    if choice is not None and "keras" not in sys.modules:  # (preparing the data may have loaded it)
        backend.apply(choice=choice)


def free_ports(n: int) -> list[int]:
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

    from desktop_llm.core import backend
    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import ensure_tokenizer

    check_flags(args)
    if backend.current().name not in ("tensorflow", "jax"):  # tf.distribute, or JAX's multi-process runtime
        raise CliError(f"Several worker processes train on the tensorflow or jax backend (this one is "
                       f"{backend.current().name}): use --backend tensorflow or --backend jax.")
    if args.workers < 2:
        raise CliError("--workers must be 2 or more (one worker is `desktop-llm train`).")
    store = store_of(args)
    store.require_writable()
    if args.resume:
        run = store.resolve(args.resume)
        run.lock()  # while this process writes the data; the chief worker holds it while it trains
        if run.status().get("status") in ("running", "paused", "starting"):
            raise CliError(f"Run {run.id} is already training (process {run.status().get('pid')}).")
    else:
        cfg = run_config(args)
        cfg.validate()
        refuse_devices(cfg)
        require_corpus(cfg.data.paths, cfg.data.texts, cfg.data.column, dict(cfg.data.encodings))
        run = store.create(cfg)
        run.lock()
    emit = out if args.json else HumanEvents(run.id)
    # The tokenizer and token data are made once, here, so the workers do not race to write them.
    get_family(run.config.family).prepare_data(run, run.config, ensure_tokenizer(run, run.config, emit), emit)
    run.unlock()  # the chief worker takes it next
    cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(args.workers))
    logs = run.folder / "workers"  # the other workers' output stays with the run it belongs to
    logs.mkdir(exist_ok=True)
    base = [sys.executable, "-m", "desktop_llm", "--home", str(store.home), "train", "--resume", run.id,
            "--cluster", cluster] + (["--json"] if args.json else []) + (
            ["--devices", args.devices] if args.devices else []) + ["--backend", backend.current().name]
    procs = []
    for i in range(args.workers):
        stdout = None if i == 0 else open(logs / f"worker-{i}.out", "w")  # noqa: SIM115 - the worker's, for its life
        # the chief's messages to this terminal: descriptor 2 itself was sent to a log (native_log.py)
        stderr = sys.stderr if i == 0 else open(logs / f"worker-{i}.err", "w")  # noqa: SIM115
        procs.append(subprocess.Popen(base + ["--worker-index", str(i)], stdout=stdout, stderr=stderr))
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
        out(summary)
    else:
        print(f"workers ended with exit codes {codes}; the other workers' output is in {logs}", flush=True)
    return codes[0] or max(codes)



def refuse_devices(cfg) -> None:
    """Device choices that cannot work, refused before a run exists (`train` and `launch`): devices
    that do not exist, a model split on a backend that cannot shard, or one that does not divide
    a machine's CPU devices (a GPU count is known only once the backend starts: the runner checks)."""
    from desktop_llm.core.backend import current
    from desktop_llm.core.distribute import parse_devices
    from desktop_llm.core.models import get_family
    from desktop_llm.core.runners import refuse_model_parallel, refuse_uneven_split

    check_devices(cfg.training.devices)
    refuse_model_parallel(current().name, cfg.training.model_parallel)
    get_family(cfg.family).refuse_unsharded(cfg.training.model_parallel)
    spec = (cfg.training.devices or "").strip().lower()
    if spec == "cpu" or spec.startswith("cpu:"):
        refuse_uneven_split(cfg.training.model_parallel, parse_devices(spec, 0)[1], cfg.training.devices)


def distribution_args(sp) -> None:
    sp.add_argument("--devices", help="where to train: all (every GPU, the default), a count (2), GPU "
                                      "numbers (0,2), cpu, or cpu:N (N logical CPU devices, for trying "
                                      "data parallelism without GPUs)")
    sp.add_argument("--cluster", help="host:port of every worker of a multi-machine run, comma-separated "
                                      "(the same list on every machine; or set TF_CONFIG)")
    sp.add_argument("--worker-index", type=int, default=0,
                    help="this machine's position in --cluster (0 is the chief, which writes the run)")
    sp.add_argument("--model-parallel", type=int, metavar="N",
                    help="shard each weight over N of the devices (jax backend: a model too big for one "
                         "device); the rest split the batch")



def add_parser(sub) -> None:
    from desktop_llm.core.config import POOLINGS, PRECISIONS
    from desktop_llm.core.models import families
    from desktop_llm.core.tokenizers import KINDS

    tr = sub.add_parser("train", help="train a model (or resume a run)")
    tr.add_argument("paths", nargs="*", help="corpus files/folders (default: the bundled sample)")
    tr.add_argument("--config", help="a run's config.json: repeat that run")
    tr.add_argument("--resume", metavar="RUN", help="continue a stopped or interrupted run (id, start of an id, or name)")
    tr.add_argument("--name", help="the run's name (default: the corpus file's name)")
    tr.add_argument("--family", choices=[f.name for f in families()],
                    help="what the model learns: " + ", ".join(f"{f.name} ({f.summary})" for f in families())
                         + " (default gpt)")
    tr.add_argument("--base", metavar="RUN",
                    help="the trained run to start from: a gpt or masked_lm run to continue on new text, a gpt run "
                         "to fine-tune on conversations (--family chat), the masked_lm or gpt run a classifier "
                         "fine-tunes; or a keras-hub GPT-2 preset folder (gpt, chat). Default: from scratch")
    tr.add_argument("--label-column", help="classifier: the label column of CSV/JSONL files "
                                           "(default: one named label, class, category...)")
    tr.add_argument("--group-column", metavar="COLUMN",
                    help="classifier: a CSV/JSONL column naming each text's document (article, book, speaker); "
                         "validation holds out whole documents, so it scores texts from documents never trained on "
                         "(default: text by text)")
    tr.add_argument("--target-column", help="translator: the target field of JSONL pairs (--column: the source; "
                                            "TSV: the first two columns)")
    tr.add_argument("--accept-unknown", action="store_true",
                    help="fine-tune even where the base run's tokenizer cannot read much of the text "
                         "(refused above a quarter of it)")
    tr.add_argument("--lora-rank", type=int, metavar="N",
                    help="with --base: train only rank-N LoRA factors of each attention's query and value "
                         "(keras-hub's enable_lora; the base's weights stay as they are). 4-16 is usual")
    tr.add_argument("--no-probes", action="store_true",
                    help="skip the fixed probe at each evaluation (the Learning page, `probes`)")
    tr.add_argument("--pooling", choices=POOLINGS,
                    help="classifier on an encoder: the mean of its token states (default) or BERT's pooled "
                         "[CLS] token (keras-hub's BertTextClassifier)")
    tr.add_argument("--snapshot-budget", type=int, metavar="MB",
                    help="disk for the weight snapshots kept over training, thinned to fit (default 200; 0: none)")
    tr.add_argument("--freeze-steps", type=int,
                    help="classifier: train only the head for this many steps first (default 0)")
    tr.add_argument("--column", help="text column of JSONL/CSV files")
    tr.add_argument("--encoding", metavar="ENC",
                      help="read every file with this encoding, not the detected one (big5, cp1252...)")
    tr.add_argument("--val-fraction", type=float, help="share of the text held out for validation (default 0.1)")
    tr.add_argument("--tokenizer-kind", choices=KINDS,
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
    tr.add_argument("--mixed-precision", choices=list(PRECISIONS),
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
        if ((action.dest not in ("help", "cluster", "worker_index", "control_stdin") and action.option_strings)
                or action.dest == "paths"):
            la._add_action(action)
    la.set_defaults(func=cmd_launch)

    sp = sub.add_parser("speed-probe", help=argparse.SUPPRESS)  # core/backend_probe.py's child, one per backend
    sp.add_argument("run", help="a run whose tokenizer and data are prepared")
    sp.set_defaults(func=cmd_speed_probe)


def cmd_speed_probe(args) -> int:
    """Time this process's backend on a prepared run's model (core/backend_probe.py); one JSON line."""
    from desktop_llm.core import backend_probe

    quiet_keras()
    out(backend_probe.measure(store_of(args).resolve(args.run)))
    return 0

