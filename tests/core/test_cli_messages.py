"""What the command line prints for people: training events as readable lines, and one `error: ...`
line (never a traceback) for the mistakes people make. Nothing here trains or loads a model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_llm.cli.render import HumanEvents, format_event

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, home, input=None):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True,
                          env=env, timeout=300, input=input, cwd=ROOT, check=False)


# --------------------------------------------------------------------------- training events


@pytest.mark.parametrize("event,expected", [
    ({"type": "completed", "step": 2000, "best_val_loss": 1.4321, "elapsed": 125.2},
     "completed: 2000 steps in 2 min 05 s, best val loss 1.4321"),
    ({"type": "completed", "step": 30, "best_val_loss": None, "elapsed": 3.4}, "completed: 30 steps in 3 s"),
    ({"type": "stopped", "step": 120}, "stopped at step 120; `desktop-llm train --resume RUN` continues"),
    ({"type": "resumed_from", "step": 500}, "resuming from the checkpoint at step 500"),
    ({"type": "paused", "step": 40}, "paused at step 40"),
    ({"type": "resumed", "step": 40}, "resumed at step 40"),
    ({"type": "exported", "path": "/w/runs/r/model.keras", "step": 60},
     "saved the best model (step 60) to /w/runs/r/model.keras"),
    ({"type": "data", "train_tokens": 1003874, "val_tokens": 111520, "dtype": "uint16", "characters": 1115394},
     "[data] 1,003,874 train / 111,520 validation tokens from 1,115,394 characters"),
    ({"type": "phase", "phase": "data", "message": "Tokenizing the corpus"}, "[data] Tokenizing the corpus"),
    ({"type": "phase", "phase": "data", "message": "Tokenizing the corpus", "progress": 0.456},
     "[data] Tokenizing the corpus 46%"),
    ({"type": "warning", "message": "disk nearly full"}, "warning: disk nearly full"),
    ({"type": "failed", "message": "Out of memory.", "suggestion": "Use a smaller batch."},
     "failed: Out of memory.\n  suggestion: Use a smaller batch."),
    ({"type": "checkpoint", "step": 60, "best": True}, None),
])
def test_every_event_reads_as_a_sentence(event, expected):
    line = format_event(event)
    assert line == expected
    assert line is None or "{" not in line  # never raw JSON


def test_known_run_is_named_in_the_resume_hint():
    assert "--resume 2026-x-ab12`" in format_event({"type": "stopped", "step": 3, "elapsed": 61}, run="2026-x-ab12")
    assert ", 1 min 01 s of training" in format_event({"type": "stopped", "step": 3, "elapsed": 61})


def test_a_phase_prints_once_and_its_progress_updates_not_at_all(capsys):
    show = HumanEvents("run-1")
    show({"type": "phase", "phase": "tokenizer", "message": "Training a char tokenizer"})
    show({"type": "phase", "phase": "data", "message": "Tokenizing the corpus"})
    for p in (0.2, 0.6, 1.0):
        show({"type": "phase", "phase": "data", "message": "Tokenizing the corpus", "progress": p})
    show({"type": "checkpoint", "step": 10, "best": True})
    show({"type": "warning", "message": "odd.bin: binary file"})
    show({"type": "completed", "step": 10, "best_val_loss": 2.5, "elapsed": 9})
    out, err = capsys.readouterr()
    assert out.splitlines() == ["[tokenizer] Training a char tokenizer", "[data] Tokenizing the corpus",
                                "completed: 10 steps in 9 s, best val loss 2.5000"]
    assert err == "warning: odd.bin: binary file\n"


# --------------------------------------------------------------------------- user errors


def one_error_line(p):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["train", "missing.txt", "--preset", "tiny"], "No such file or folder: "),
    (["train", "--steps", "-5"], "--steps must be at least 1 (got -5)"),
    (["train", "--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
    (["train", "--steps", "abc"], "argument --steps: invalid int value: 'abc'"),  # argparse's own, one line too
    (["train", "--lr", "2"], "--lr must be in (0, 1] (got 2.0)"),
    (["train", "--tokenizer", "no-such-tokenizer", "--steps", "10"], "No tokenizer in"),
    (["train", "--resume", "nope"], "No run 'nope'"),
    (["eval", "--file", "missing.txt"], "No such file or folder: missing.txt"),
    (["eval", "nope"], "No run 'nope'"),
    (["generate", "nope"], "No run 'nope'"),
    (["generate", "--top-p", "0"], "Top-p must be more than 0"),
    (["generate", "--temperature", "-1"], "temperature must be 0 or more"),
    (["chat", "--max-tokens", "0"], "Max tokens must be"),
    (["attention", "nope", "--text", "hi"], "No run 'nope'"),
    (["model", "info", "--layers", "0"], "--layers must be at least 1"),
    # impossible settings the trainer used to find only after the run folder existed
    (["train", "corpus.txt", "--tokenizer-kind", "bpe", "--vocab-size", "5"], "A bpe vocabulary needs at least 64"),
    # 256 byte pieces and Shakespeare's frequent characters do not fit in 300 (a failed run was left)
    (["train", "corpus.txt", "--tokenizer-kind", "bpe", "--vocab-size", "300"], "A vocabulary of 300 is too small"),
    (["train", "corpus.txt", "--devices", "7"], "--devices 7: this machine has"),
    (["train", "corpus.txt", "--devices", "cpu:0"], "--devices cpu:0: give a number of logical devices"),
])
def test_user_errors_are_one_line(tmp_path, args, message):
    args = [str(tmp_path / a) if a == "missing.txt" and args[0] == "train" else a for a in args]
    args = [str(ROOT / "resources" / "corpora" / "tinyshakespeare.txt") if a == "corpus.txt" else a for a in args]
    line = one_error_line(cli(*args, home=tmp_path / "ws"))
    assert message in line
    runs = tmp_path / "ws" / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # nothing was created


def test_a_binary_corpus_is_refused_before_a_run_exists(tmp_path):
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\x00\x01binary")
    line = one_error_line(cli("train", str(tmp_path / "doc.pdf"), "--preset", "tiny", home=tmp_path / "ws"))
    assert "No readable text" in line and "doc.pdf" in line
    assert not any((tmp_path / "ws" / "runs").iterdir())


def test_an_ambiguous_run_name_lists_the_runs(tmp_path):
    from desktop_llm.core.config import RunConfig
    from desktop_llm.store import RunStore

    store = RunStore(tmp_path / "ws")
    a, b = store.create(RunConfig(name="nu-tiny")), store.create(RunConfig(name="nu-tiny"))
    line = one_error_line(cli("generate", "nu-tiny", home=tmp_path / "ws"))
    assert "matches 2 runs" in line and a.id in line and b.id in line


# --------------------------------------------------------------------------- corpus folder


def test_the_bundled_corpora_folder_holds_only_corpora(tmp_path):
    p = cli("corpus", "stats", "resources/corpora", "--json", home=tmp_path)
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["documents"] == 2
    assert sorted(Path(s["path"]).name for s in st["sources"]) == ["tangshi300.txt", "tinyshakespeare.txt"]
    assert (ROOT / "resources" / "ATTRIBUTION.md").exists()


def test_a_run_that_failed_at_once_says_it_has_no_checkpoint(tmp_path):
    """Not "No tokenizer in …/tokenizer": what is missing is the checkpoint (the run never trained)."""
    from desktop_llm.core.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, preset
    from desktop_llm.store import RunStore

    store = RunStore(tmp_path / "ws")
    run = store.create(RunConfig(name="empty", data=DataConfig(paths=("x.txt",)), model=preset("tiny"),
                                 tokenizer=TokenizerConfig(kind="char"), training=TrainConfig(max_steps=5)))
    run.write_status(status="failed", step=0)
    store.sync(run)
    for args in (["generate", "empty"], ["export", "empty", "--format", "onnx"], ["eval", "empty", "--text", "hi"]):
        line = one_error_line(cli(*args, home=tmp_path / "ws"))
        assert "has no checkpoint yet" in line, (args, line)


def test_a_command_for_several_families_names_them_all(tmp_path):
    """`similar` takes a masked LM or a classifier: its refusal of a GPT run says both."""
    from desktop_llm.core.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, preset
    from desktop_llm.store import RunStore

    store = RunStore(tmp_path / "ws")
    run = store.create(RunConfig(name="gpt", data=DataConfig(paths=("x.txt",)), model=preset("tiny"),
                                 tokenizer=TokenizerConfig(kind="char"), training=TrainConfig(max_steps=5)))
    store.sync(run)
    line = one_error_line(cli("similar", "gpt", "--text", "hi", home=tmp_path / "ws"))
    assert "is a gpt run" in line and "needs a masked_lm or classifier run" in line, line


@pytest.mark.parametrize("args", [("similar", "--text", "  "), ("embed", "--text", ""), ("translate", "--text", "")])
def test_an_empty_text_is_refused_before_any_run_is_looked_for(tmp_path, args):
    """In an empty workspace the answer is about the text, not the missing run: checked first."""
    line = one_error_line(cli(*args, home=tmp_path / "ws"))
    assert "No runs" not in line and ("sentence" in line or "words" in line), line


def test_classify_file_is_read_as_a_corpus_is(tmp_path):
    """--file went through raw UTF-8: a binary file was classified line by line, and UTF-16 left NULs
    in every text. Now it is read with the corpus reader: a binary file is refused in one line."""
    binary = tmp_path / "photo.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    line = one_error_line(cli("classify", "--file", str(binary), home=tmp_path / "ws"))
    assert "photo.bin" in line and "No runs" not in line, line


def test_runs_lists_each_runs_family_in_columns_that_a_long_id_does_not_break(tmp_path):
    from desktop_llm.core.config import DataConfig, RunConfig
    from desktop_llm.store import RunStore

    store = RunStore(tmp_path / "ws")
    store.create(RunConfig(name="a-very-long-name-imported-from-another-machine-and-renamed", family="classifier",
                           data=DataConfig(paths=("x",))))
    store.create(RunConfig(name="short", data=DataConfig(paths=("x",))))
    p = cli("runs", home=tmp_path / "ws")
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and {line.split()[2] for line in lines} == {"classifier", "gpt"}
    assert len({line.index(" step ") for line in lines}) == 1  # the columns line up


def test_the_run_card_reports_the_median_speed_not_the_last_spike(tmp_path):
    import json

    from desktop_llm.core.config import DataConfig, RunConfig
    from desktop_llm.store import RunStore
    from desktop_llm.store.card import run_card

    store = RunStore(tmp_path / "ws")
    run = store.create(RunConfig(name="r", data=DataConfig(paths=("x",))))
    speeds = [900.0, 1000.0, 1000.0, 1100.0, 1000.0, 56802.0]  # the last interval: a spike
    run.metrics_path.write_text("".join(json.dumps({"type": "step", "step": 10 * (i + 1), "loss": 1.0, "lr": 1e-3,
                                                    "tokens_per_sec": s}) + "\n" for i, s in enumerate(speeds)))
    run.write_status(status="completed", step=60, device="CPU", policy="float32", tokens_per_sec=56802.0)
    device = dict(run_card(run))["device"]
    assert "1,000 tokens/s (median)" in device and "56,802" not in device


def test_a_workspace_that_is_a_file_and_a_projector_onto_a_file_are_one_line(tmp_path):
    """$DESKTOP_LLM_HOME pointing at a file read as an empty workspace ("No runs"); `embed
    --projector` onto an existing file ended in a traceback."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine", "utf-8")
    line = one_error_line(cli("runs", home=a_file))
    assert "is a file, not a folder" in line
    line = one_error_line(cli("embed", "--projector", str(a_file), home=tmp_path / "ws"))
    assert "is a file" in line and a_file.read_text("utf-8") == "mine"  # the user's file is untouched


@pytest.mark.parametrize("error", [MemoryError(), type("ResourceExhaustedError", (Exception,), {})(
    "OOM when allocating tensor with shape[1048576,1048576]"), RuntimeError("RESOURCE_EXHAUSTED: Out of memory")])
def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys, error):
    """Whatever command runs out (a shape too large for the machine: issue 26 item 20), one line
    that says what to do, never a traceback; other exceptions keep theirs (they are bugs)."""
    import gc

    from desktop_llm.cli import main, runs

    def oom(args):
        raise error

    monkeypatch.setenv("DESKTOP_LLM_NATIVE_STDERR", "1")  # keep this process's stderr where it is
    monkeypatch.setattr(runs, "store_of", oom)
    try:
        assert main(["--home", str(tmp_path), "runs"]) == 2
    finally:
        gc.enable()  # main turns collection off after an out-of-memory error (a possibly corrupt heap)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Out of memory") and "smaller model" in lines[0]
    monkeypatch.setattr(runs, "store_of", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["--home", str(tmp_path), "runs"])
