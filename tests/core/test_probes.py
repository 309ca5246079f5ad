"""Probes (issue 28): the fixed probe every evaluation runs, appended to the run folder, and the
analyses the Learning page and `desktop-llm probes` share."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_llm.core import probes
from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def train_probed(folder):
    """A workspace in `folder` with one tiny GPT run probed at steps 20, 40 and 60: (store, run).
    (The Learning page's tests use it too.)"""
    from desktop_llm.core.training import train_run
    from desktop_llm.resources import sample_corpus

    store = RunStore(folder)
    cfg = RunConfig(name="probed", data=DataConfig(paths=(str(sample_corpus()),)), tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=32),
                    training=TrainConfig(max_steps=60, batch_size=8, eval_interval=20, eval_batches=1, log_interval=10,
                                         warmup_steps=5, learning_rate=3e-3, sample_tokens=0, jit_compile=False))
    run = store.create(cfg)
    assert train_run(run, store=store)["status"] == "completed"
    return store, run


def test_every_evaluation_appends_one_probe_record_of_the_fixed_probe(probed):
    _store, run = probed
    spec = probes.spec(run)
    assert 1 <= len(spec["prompts"]) <= probes.PROMPTS and all(spec["prompts"])
    assert len(spec["window"]) == 33 and len(spec["starts"]) == 64  # 4,096 tokens of windows of 32, at most 64
    recs = probes.records(run)
    assert [r["step"] for r in recs] == [20, 40, 60]
    for r in recs:
        assert len(r["continuations"]) == len(spec["prompts"])
        c = r["continuations"][0]
        assert len(c["tokens"]) == len(c["surprise"]) == probes.CONTINUATION_TOKENS and min(c["surprise"]) >= 0
        assert len(r["token_losses"]) == len(r["position_loss"]) == 32
    steps, losses = probes.loss_matrix(recs)
    assert steps == [20, 40, 60]
    assert losses.shape == (3, 32) and losses[-1].mean() < losses[0].mean()  # it learns the probe text
    # a record is small: well under the 100 KB an evaluation may take
    assert max(len(line) for line in probes.records_path(run).read_text("utf-8").splitlines()) < 20_000


def test_a_resumed_run_drops_the_probes_past_its_checkpoint(probed):
    _store, run = probed
    saved = probes.records_path(run).read_text("utf-8")
    try:
        probes.truncate(run, 40)
        assert [r["step"] for r in probes.records(run)] == [20, 40]
        with open(probes.records_path(run), "ab") as f:
            f.write(b'{"step": 60, "continuations": [')  # torn by a SIGKILL mid-write: skipped
        assert [r["step"] for r in probes.records(run)] == [20, 40]
    finally:
        probes.records_path(run).write_text(saved, "utf-8")


def test_learned_when_milestones_and_changes():
    steps = [10, 20, 30, 40]
    losses = np.array([[3.0, 3.0, 0.5, 3.0],
                       [0.9, 3.0, 0.4, 2.0],
                       [0.8, 1.5, 0.3, 0.5],
                       [0.7, 0.9, 1.5, 0.6]])
    when = probes.learned_when(steps, losses)
    assert when["learned_at"] == [20, 40, None, 30]
    assert when["got_worse"] == [False, False, True, False]
    evals = [{"step": 10, "val_loss": 3.0}, {"step": 20, "val_loss": 2.2}, {"step": 30, "val_loss": 1.9},
             {"step": 40, "val_loss": 2.1}]
    figures = {"figures": {"unigram": {"loss": 2.5}, "bigram": {"loss": 2.0}, "trigram": {"loss": 1.5}}}
    assert probes.milestones(evals, figures) == [(20, "beats the unigram"), (30, "beats the bigram"),
                                                 (30, "validation minimum: overfitting after")]
    assert probes.changed(["a", "b"], ["a", "c", "d"]) == [False, True, True]


def test_the_probes_command_shows_the_timeline_and_json(probed):
    store, run = probed
    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id], capture_output=True, text=True,
                         env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "3 evaluations probed" in out.stdout and f"“{probes.spec(run)['prompts'][0]}”" in out.stdout
    assert "step     60:" in out.stdout and "mean loss by position" in out.stdout
    assert "training health at step 60" in out.stdout and "dormant feed-forward units: block 0" in out.stdout
    assert "head atlas at step 60" in out.stdout and "  layer 0: " in out.stdout and "best induction score" in out.stdout
    js = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id, "--json"], capture_output=True,
                        text=True, env=env, timeout=300, check=False)
    data = json.loads(js.stdout)
    assert [r["step"] for r in data["records"]] == [20, 40, 60] and len(data["learned_at"]) == 32
    assert isinstance(data["health_flags"], list) and len(data["head_roles"]) == 1 and len(data["head_roles"][0]) == 2 and data["head_curves"]["steps"] == [20, 40, 60]


def test_your_own_prompts_run_on_the_snapshots_and_at_the_next_evaluations(probed, tmp_path):
    """The timeline's prompts are editable: kept in the run folder, replayed on the weight snapshots
    of the steps before, and taken by the trainer at its later evaluations."""
    import shutil

    from desktop_llm.core.models import get_family
    from desktop_llm.core.training import train_run

    store, run = probed
    shutil.copytree(store.home, tmp_path / "ws")  # the shared run stays as it is
    copy = RunStore(tmp_path / "ws").get(run.id)
    spec, recs = probes.spec(copy), probes.records(copy)
    # replayed on the snapshots, the probe's own prompts give what the evaluations recorded
    again = probes.replay(copy, spec["prompts"], get_family("gpt").prober)
    assert [r["step"] for r in again] == [r["step"] for r in recs] == [20, 40, 60]
    pairs = [(a, b) for r, q in zip(recs, again) for a, b in zip(r["continuations"], q["continuations"])]
    assert all(abs(a["surprise"][0] - b["surprise"][0]) < 0.01 for a, b in pairs)  # float16 snapshots
    same = sum(x == y for a, b in pairs for x, y in zip(a["tokens"], b["tokens"]))
    assert same >= 0.9 * sum(len(a["tokens"]) for a, _ in pairs)

    env = dict(os.environ, DESKTOP_LLM_HOME=str(tmp_path / "ws"), PYTHONPATH=str(ROOT))
    js = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id, "--prompt", "ROMEO:", "--prompt",
                         "The king", "--json"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["prompts"] == ["ROMEO:", "The king"] == probes.prompts(copy, spec)
    assert [r["step"] for r in data["timeline"]] == [20, 40, 60]
    assert all(len(r["continuations"]) == 2 and len(r["continuations"][0]["tokens"]) == probes.CONTINUATION_TOKENS
               for r in data["timeline"])
    # the trainer, resumed for one more evaluation, runs them there
    cfg = copy.config
    copy.save_config(type(cfg).from_dict({**cfg.to_dict(), "training": {**cfg.to_dict()["training"], "max_steps": 80}}))
    assert train_run(copy, store=RunStore(tmp_path / "ws"))["status"] == "completed"
    last = probes.records(copy)[-1]
    assert last["step"] == 80 and last["prompts"] == ["ROMEO:", "The king"] and len(last["continuations"]) == 2
    assert probes.same_prompts(probes.records(copy), spec, ["ROMEO:", "The king"]) == [last]
    # one line for prompts it cannot use; an empty list goes back to the probe's own
    bad = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id, *[a for i in range(9)
                                                                                  for a in ("--prompt", f"p{i}")]], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == ["error: At most 8 prompts, please (9 given)."]
    assert probes.set_prompts(copy, []) == spec["prompts"] and not probes.prompts_path(copy).exists()


def test_a_run_without_probes_writes_none(tmp_path):
    from desktop_llm.cli.train import run_config
    from desktop_llm.core.training import train_run
    from desktop_llm.resources import sample_corpus

    store = RunStore(tmp_path / "ws")
    cfg = RunConfig(name="plain", data=DataConfig(paths=(str(sample_corpus()),)), tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, sequence_length=16),
                    training=TrainConfig(max_steps=20, batch_size=8, eval_interval=10, eval_batches=1, log_interval=10,
                                         warmup_steps=2, sample_tokens=0, jit_compile=False, probes=False))
    run = store.create(cfg)
    assert train_run(run, store=store)["status"] == "completed"
    assert not probes.folder(run).exists()
    import argparse

    from desktop_llm.cli import build_parser

    args = build_parser().parse_args(["train", str(sample_corpus()), "--no-probes"])
    assert isinstance(args, argparse.Namespace) and run_config(args).training.probes is False


def test_the_batched_greedy_continuations_are_the_generators(probed):
    """The probe's continuations (all prompts in one right-padded batch, no cache) are what the
    Generator writes greedily for each prompt alone."""
    from desktop_llm.core.generation import Generator, SamplingConfig
    from desktop_llm.core.loading import load_for_inference

    _store, run = probed
    model, tok, _ = load_for_inference(run, "latest")
    prompts = probes.spec(run)["prompts"]
    got = probes.Prober(model).continue_greedily([tok.encode(p) for p in prompts], 32, 12, tok.placeholder_ids)
    gen = Generator(model, tok, jit_compile=False)
    for prompt, (ids, surprise) in zip(prompts, got):
        want = gen.generate(prompt, SamplingConfig(max_new_tokens=12, temperature=0.0))
        assert ids == [t.id for t in want.tokens]
        np.testing.assert_allclose(surprise, [-np.log(t.probability) for t in want.tokens], rtol=0, atol=0.02)  # (a full window slides a token apart)


def test_a_report_card_of_a_run_and_a_comparison_of_two(probed, tmp_path):
    """`desktop-llm report`: one self-contained HTML page and its Markdown, from the run folder."""
    store, run = probed
    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "desktop_llm", "report", run.id, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "one" / "report.html").read_text("utf-8")
    text = (tmp_path / "one" / "report.md").read_text("utf-8")
    assert page.startswith("<!doctype html>") and "<script" not in page and "src=" not in page  # self-contained
    for doc in (page, text):
        assert "Identity" in doc and "keras" in doc and "Milestones" in doc and "Learning timeline" in doc
        assert "lowest validation loss" in doc and "baselines" in doc and "tokens seen" in doc
    assert f"“{probes.spec(run)['prompts'][0]}”" in text and "| 60 |" in text.replace(",", "")
    for doc in (page, text):  # the tokenizer against the character and byte ones; size, FLOPs and MFU
        assert "characters per token" in doc and "a context holds" in doc and "FLOPs per token" in doc
        assert "float32 peak (" in doc  # it trained here: the CLI measured the peak
    # the pictures: inline in the page, files beside the Markdown
    assert page.count("<svg") == 4 and "validation loss" in page and "layer 0" in page
    linked = re.findall(r"\]\((pictures/[^)]+\.svg)\)", text)
    assert len(linked) == 4 and all((tmp_path / "one" / f).read_text("utf-8").startswith("<svg") for f in linked)
    from desktop_llm.store import report

    report.write([run, run], tmp_path / "two")
    two = (tmp_path / "two" / "report.md").read_text("utf-8")
    assert "## Comparison" in two and two.count("| probed | gpt | 60 |") == 2


def test_the_reports_mfu_is_the_runs_flops_over_the_peak(probed):
    from desktop_llm.store import report
    from desktop_llm.store.speed import flops_per_token, median_tokens_per_sec

    _store, run = probed
    f = report.figures(run, peak=(100.0, "numpy"))
    tps = median_tokens_per_sec(run, least=1) or run.status()["tokens_per_sec"]
    assert f["flops_per_token"] == flops_per_token(run) > 0
    assert f["mfu"] == pytest.approx(tps * f["flops_per_token"] / 100e9)
    elsewhere = {**run.status(), "machine": "another CPU, 64 cores, Linux"}
    assert report.trained_here(run.status()) and not report.trained_here(elsewhere)


def test_a_line_chart_puts_each_value_where_its_axis_says():
    from desktop_llm.store.pictures import PAD_B, PAD_L, PAD_T, H, line_chart

    svg = line_chart([{"name": "loss", "x": [0, 10], "y": [1.0, 3.0], "colour": "#000"},
                      {"name": "bigram", "x": [], "y": [2.0], "colour": "#f00", "flat": True}], [(5, "beats")])
    lines = re.findall(r"<polyline points='([^']+)'", svg)
    (a, b), (c, d) = [[tuple(map(float, p.split(","))) for p in pts.split()] for pts in lines]
    assert a[0] == PAD_L and b[1] < a[1]  # the higher value is drawn higher
    assert c[1] == d[1] == pytest.approx((a[1] + b[1]) / 2)  # the flat line at 2.0: half way between 1 and 3
    assert PAD_T < b[1] and a[1] < H - PAD_B and "1: step 5" in svg


def test_the_probe_compiles_with_xla_only_where_it_repays_the_compile():
    from desktop_llm.core.prober import XLA_EVALUATIONS, compiles_with_xla

    many = TrainConfig(max_steps=100 * (XLA_EVALUATIONS + 1), eval_interval=100)
    assert compiles_with_xla(many) and not compiles_with_xla(TrainConfig(max_steps=2000, eval_interval=250))
    assert not compiles_with_xla(TrainConfig(max_steps=100 * (XLA_EVALUATIONS + 1), eval_interval=100, jit_compile=False))


def test_samples_at_evaluations_compile_with_xla_only_where_they_repay_it():
    from desktop_llm.core.config import ModelConfig
    from desktop_llm.core.models.backbones.gpt import build_model
    from desktop_llm.core.training.context import SAMPLE_XLA_EVALUATIONS, TrainingContext

    model = build_model(ModelConfig(num_layers=1, num_heads=1, hidden_dim=8, intermediate_dim=8,
                                    sequence_length=8, vocabulary_size=8))

    def sampler(training):
        ctx = TrainingContext.__new__(TrainingContext)  # only what causal_generator reads
        ctx.generator, ctx.model, ctx.tok = None, model, None
        ctx.cfg = type("Cfg", (), {"training": training})()
        gen = ctx.causal_generator()
        assert ctx.causal_generator() is gen  # one per run, reused at every evaluation
        return gen.jit_compile

    assert sampler(TrainConfig(max_steps=2000, eval_interval=250))  # the reference workload: 8 evaluations
    assert not sampler(TrainConfig(max_steps=20 * SAMPLE_XLA_EVALUATIONS, eval_interval=20))
    assert not sampler(TrainConfig(max_steps=2000, eval_interval=250, jit_compile=False))


def test_a_report_spreads_its_rows_over_the_run():
    from desktop_llm.store.report import spread

    assert spread(3, 6) == [0, 1, 2] and spread(10, 5) == [0, 2, 4, 7, 9] and spread(1, 5) == [0]


def test_the_probes_command_names_tokens_by_id_when_the_tokenizer_is_gone(probed):
    store, run = probed
    meta = run.tokenizer_dir / "tokenizer.json"
    saved = meta.read_bytes()
    meta.unlink()
    try:
        env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home), PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-m", "desktop_llm", "probes", run.id], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
    finally:
        meta.write_bytes(saved)
    assert out.returncode == 0, out.stderr
    learned = probes.learned_when(*probes.loss_matrix(probes.records(run)))["learned_at"]
    assert ("learned last: 'id " in out.stdout) == any(s is not None for s in learned)
