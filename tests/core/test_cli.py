"""The command line end to end in a temporary workspace (real subprocesses, real training)."""

import json
import os
import subprocess
import sys

import pytest


def cli(*args, home, check=True, input=None, **extra_env):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(home), **extra_env)
    p = subprocess.run([sys.executable, "-m", "desktop_llm", *args], capture_output=True, text=True,
                       env=env, timeout=600, input=input, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shakespeare_small):
    home = tmp_path_factory.mktemp("cli-ws")
    temp = _temp_of(home)
    temp.mkdir()
    p = cli("train", str(shakespeare_small), "--preset", "tiny", "--context", "32", "--steps", "120",
            "--eval-interval", "60", "--eval-batches", "2", "--batch-size", "8", "--sample-tokens", "20",
            "--json", home=home, TMPDIR=str(temp))
    events = jsonl(p.stdout)
    return home, events


def _temp_of(home):
    """The temporary folder the trained fixture's trainer was given (TMPDIR)."""
    return home.with_name(home.name + "-temp")


def test_train_streams_json_events(trained):
    home, events = trained
    assert list(_temp_of(home).iterdir()) == []  # TensorFlow's generated modules are gone too
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run" and "start" in kinds and kinds[-1] == "completed"
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [60, 120]
    assert evals[0]["sample"]  # text generated at each evaluation
    assert not any("I0000" in k for k in kinds)
    run_folder = next(e["folder"] for e in events if e["type"] == "run")
    with open(os.path.join(run_folder, "train.log"), encoding="utf-8") as f:
        assert "absl" in f.read()  # TensorFlow's own lines


def test_runs_eval_generate_attention(trained):
    home, _events = trained
    runs = json.loads(cli("runs", "--json", home=home).stdout)["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    ev = json.loads(cli("eval", "--json", home=home).stdout)
    assert ev["source"] == "validation split" and 1.0 < ev["perplexity"] < 70
    ev = json.loads(cli("eval", "--text", "ROMEO: hello there", "--per-token", "--json", home=home).stdout)
    assert len(ev["per_token"]) == len("ROMEO: hello there") and ev["per_token"][0]["loss"] is None
    out = jsonl(cli("generate", "--prompt", "ROMEO:", "--max-tokens", "15", "--seed", "3", "--json",
                    home=home).stdout)
    tokens = [e for e in out if e["type"] == "token"]
    assert len(tokens) == 15 and out[-1]["type"] == "done"
    assert out[-1]["text"] == "".join(t["text"] for t in tokens)
    top = json.loads(cli("generate", "--prompt", "ROMEO:", "--next-tokens", "5", "--json", home=home).stdout)
    probs = [t["p"] for t in top["tokens"]]
    assert top["type"] == "next_tokens" and len(probs) == 5 and probs == sorted(probs, reverse=True)
    table = cli("generate", "--prompt", "ROMEO:", "--next-tokens", "3", home=home).stdout.splitlines()
    assert [line.split()[0] for line in table] == [repr(t["text"]).split()[0] for t in top["tokens"][:3]]
    att = json.loads(cli("attention", "--text", "To be or", "--json", home=home).stdout)
    assert att["shape"] == [2, 2, 8, 8]
    cross = cli("attention", "--text", "To be or", "--kind", "cross", home=home, check=False)  # once ignored
    assert cross.returncode == 2 and "--kind cross is for translator runs" in cross.stderr
    chat = cli("chat", "--max-tokens", "10", "--seed", "1", home=home, input="hello\n\n")
    assert chat.returncode == 0 and chat.stdout.endswith("\n")  # quitting ends the line


def test_resuming_a_completed_run_or_changing_its_steps_is_one_clear_line(trained):
    """Both once exited 0 with the old "completed" line, --steps silently ignored."""
    home, events = trained
    run_id = events[0]["run"]
    status = (home / "runs" / run_id / "status.json").read_bytes()
    for extra, says in (([], "has completed its 120 steps"), (["--steps", "300"], "--steps applies to a new run")):
        p = cli("train", "--resume", run_id, *extra, home=home, check=False)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and says in lines[0] and "--config" in lines[0], p.stderr
    assert (home / "runs" / run_id / "status.json").read_bytes() == status  # the run is untouched


def test_runs_by_name_or_prefix_with_clean_output(trained):
    """`generate <name>`, a top-k beyond the vocabulary (as nanoGPT: all of it), nothing from Keras
    on stderr; `attention` says how many tokens it lists; `chat` ends its line on Ctrl-D."""
    home, events = trained
    run_id = next(e["run"] for e in events if e["type"] == "run")
    p = cli("generate", "shakespeare_small", "--prompt", "ROMEO:", "--top-k", "200", "--max-tokens", "8",
            "--seed", "1", home=home)
    assert p.stdout.startswith("ROMEO:") and p.stdout.endswith("\n")
    assert "Skipping variable loading" not in p.stderr and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"[run {run_id}: 8 tokens")  # it says which run
    p = cli("attention", run_id[:10], "--text", "To be or not to be, that is", home=home)
    assert "27 tokens" in p.stdout and "first 12 of the 27 tokens" in p.stdout
    chat = cli("chat", "shakespeare", "--max-tokens", "5", "--seed", "1", home=home, input="hello\n")
    assert chat.returncode == 0 and chat.stdout.endswith("\n")  # EOF (Ctrl-D) after the prompt


def test_corpus_tokenizer_and_model_commands(tmp_path, shakespeare_small):
    st = json.loads(cli("corpus", "stats", str(shakespeare_small), "--json", home=tmp_path).stdout)
    assert st["characters"] == 200_000 and st["documents"] == 1
    cli("tokenizer", "train", str(shakespeare_small), "--kind", "bpe", "--vocab-size", "400", "--out",
        str(tmp_path / "tok"), home=tmp_path)
    enc = json.loads(cli("tokenizer", "encode", "ROMEO: hi", "--tokenizer", str(tmp_path / "tok"), "--json",
                         home=tmp_path).stdout)
    assert enc["decoded"] == "ROMEO: hi" and len(enc["ids"]) < 9
    info = json.loads(cli("model", "info", "--preset", "small", "--json", home=tmp_path).stdout)
    assert info["parameters"] == 809_856


def test_bad_inputs_get_messages_not_tracebacks(tmp_path):
    p = cli("train", str(tmp_path / "missing.txt"), "--preset", "tiny", home=tmp_path, check=False)
    assert p.returncode == 2 and "No such file or folder" in p.stderr and "Traceback" not in p.stderr
    p = cli("train", "--width", "130", "--heads", "4", "--steps", "10", home=tmp_path, check=False)
    assert p.returncode == 2 and "divisible" in p.stderr and "Traceback" not in p.stderr
    p = cli("generate", "nope", home=tmp_path, check=False)
    assert p.returncode == 2 and "No run 'nope'" in p.stderr
    (tmp_path / "bin.txt").write_bytes(b"%PDF-1.4 binary")
    p = cli("corpus", "stats", str(tmp_path / "bin.txt"), home=tmp_path, check=False)
    assert p.returncode == 1 and "PDF" in p.stdout
    assert "documents:" not in p.stdout and "no readable text" in p.stderr  # no table of zeros


def test_native_messages_go_to_the_run_log_and_ours_to_the_terminal(tmp_path):
    log = tmp_path / "train.log"
    code = ("import os, sys\n"
            "from desktop_llm.native_log import redirect_native_stderr, retarget_native_stderr\n"
            "redirect_native_stderr()\n"
            "retarget_native_stderr(sys.argv[1])\n"
            "os.write(2, b'native line\\n')  # what C++ code writes\n"
            "print('python line', file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code, str(log)], check=False, capture_output=True, text=True,
                       timeout=60,
                       env={k: v for k, v in os.environ.items() if k != "DESKTOP_LLM_NATIVE_STDERR"})
    assert p.returncode == 0, p.stderr
    assert "python line" in p.stderr and "native line" not in p.stderr
    assert log.read_text() == "native line\n"


def test_compiled_programs_are_cached_across_processes(trained, tmp_path):
    """A second cold `generate` finds the first one's XLA programs on disk (same text)."""
    home, _ = trained
    env_cache = tmp_path / "cache"
    outs = []
    for _ in range(2):
        env = dict(os.environ, DESKTOP_LLM_HOME=str(home), XDG_CACHE_HOME=str(env_cache))
        env.pop("TF_XLA_FLAGS", None)
        p = subprocess.run([sys.executable, "-m", "desktop_llm", "generate", "--prompt", "ROMEO:", "--max-tokens", "20",
                            "--seed", "3", "--json"], capture_output=True, text=True, env=env, timeout=600,
                           check=False)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(jsonl(p.stdout)[-1]["text"])
        cached = list((env_cache / "desktop_llm" / "xla").glob("*XLA*"))
        assert cached, "no compiled program was cached"
    assert outs[0] == outs[1]


def test_the_xla_cache_is_trimmed_oldest_first(tmp_path, monkeypatch):
    from desktop_llm.core import xla_cache

    monkeypatch.setattr(xla_cache, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(xla_cache, "MAX_BYTES", 2500)
    monkeypatch.setenv("TF_XLA_FLAGS", "")  # restored after the test, whatever enable() sets
    for i in range(5):
        p = tmp_path / f"p{i}.pb"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (1000 + i, 1000 + i))
    assert xla_cache.enable() == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p3.pb", "p4.pb"]
    assert f"--tf_xla_persistent_cache_directory={tmp_path}" in os.environ["TF_XLA_FLAGS"]
    assert xla_cache.enable() is None  # already set: not added twice


def test_the_xla_cache_stays_off_where_its_writes_could_fail(tmp_path):
    """Measured: when TensorFlow cannot write a cache entry, the compiled step computes nothing
    (NaN at the first step). So no cache under a file-size limit or on a disk short of space,
    and none in the trainer at all (tests/core/test_full_disk.py trains under such a limit)."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); "
            "from desktop_llm.core import xla_cache; print(xla_cache.enable())")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    env.pop("TF_XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         check=False)
    assert out.stdout.strip() == "None", out.stderr

    from desktop_llm.core import xla_cache

    assert xla_cache._writes_may_fail(tmp_path) is False  # this test's own disk has room
    import shutil

    real = shutil.disk_usage
    try:
        shutil.disk_usage = lambda p: real(p)._replace(free=xla_cache.MIN_FREE_BYTES - 1)
        assert xla_cache._writes_may_fail(tmp_path) is True
    finally:
        shutil.disk_usage = real
