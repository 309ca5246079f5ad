"""Every family of the registry, without naming one: it trains a few steps on its own example
data, its checkpoint loads, its attention maps come out for each kind it has, it exports in each
format it offers (the keras-hub preset here; the GPT's other formats in test_export.py) and
refuses the others in one line, its run card describes it, and its commands are on the command
line. A new family is covered by this file as soon as it is in the registry."""

from dataclasses import replace

import numpy as np
import pytest

from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
from desktop_llm.core.models import FAMILY_NAMES, families, get_family
from desktop_llm.store import RunStore

TINY = ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, sequence_length=16, dropout=0.0)


def tiny_run_config(family, steps: int = 20) -> RunConfig:
    return RunConfig(name=f"{family.name}-tiny", family=family.name,
                     data=DataConfig(paths=(str(family.example_data()),)),
                     tokenizer=TokenizerConfig(kind="char"), model=TINY,
                     training=TrainConfig(max_steps=steps, batch_size=8, eval_interval=10, eval_batches=1,
                                          log_interval=10, warmup_steps=2, sample_tokens=4).fitted())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny completed run of every family, in one workspace."""
    from desktop_llm.core.training import train_run

    store = RunStore(tmp_path_factory.mktemp("workspace"))
    runs = {}
    for family in families():
        run = store.create(tiny_run_config(family))
        events = []
        result = train_run(run, emit=events.append, store=store)
        assert result["status"] == "completed", (family.name, result, events[-3:])
        runs[family.name] = run
        run.events = events  # (for the tests below)
    return store, runs


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_measures_its_baselines_and_says_how_it_compares(trained, name):
    """Issue 25: every figure beside the baseline it must beat, on the same split: a `baselines`
    event, the run's status and card, the verdict on the family's own metric, and bits per byte
    where the loss is over the text's tokens."""
    import math

    from desktop_llm.core.baselines import beaten
    from desktop_llm.store.card import run_card

    _store, runs = trained
    run, family = runs[name], get_family(name)
    announced = [e for e in run.events if e["type"] == "baselines"]
    assert len(announced) == 1 and announced[0]["figures"], name
    figures = announced[0]["figures"]
    metric = family.baseline_metric
    assert all(f.get(metric) is not None for f in figures.values()), (name, figures)
    assert run.status()["baselines"]["figures"] == figures
    assert (run.data_dir / "baselines.json").exists()  # made once: a resume reads it
    card = dict(run_card(run))
    assert card["baselines"].startswith(next(iter(figures))) and "this model" in card["baselines"]
    data = next(e for e in run.events if e["type"] == "data" and ("train_tokens" in e or "examples" in e))
    assert run.status()["leaked"] == (data.get("leaked") or 0)  # repeats of training data: counted, and said
    if data.get("leaked"):
        assert f"{data['leaked']:,} validation" in card["corpus"]
    evals = [e for e in run.events if e["type"] == "eval"]
    per = announced[0].get("bytes_per_token")
    if per:  # bits per byte of the model, from the same arithmetic as the baselines'
        assert evals[-1]["val_bits_per_byte"] == pytest.approx(evals[-1]["val_loss"] / math.log(2) / per)
    chosen = family.selection_metric
    if chosen != "loss":  # the best checkpoint is the evaluation with the highest score, not the lowest loss
        from desktop_llm.core.checkpoints import CheckpointManager

        top = max(evals, key=lambda e: e[f"val_{chosen}"])
        assert run.status()["best_score"] == pytest.approx(top[f"val_{chosen}"])
        assert CheckpointManager(run.checkpoints_dir).find("best").step == top["step"]
    value = (run.status()["best_val_loss"] if metric == "loss" else
             run.status()["best_score"] if metric == chosen else evals[-1][f"val_{metric}"])
    _, losses = beaten(value, figures, metric)
    said = [e["message"] for e in run.events if e["type"] == "warning" and "does not beat" in e["message"]]
    loses_to_uniform = family.loss_over_tokens and any("close to guessing" in e.get("message", "")
                                                       for e in run.events if e["type"] == "warning")
    assert bool(said) == (bool(losses) and not loses_to_uniform), (name, value, figures, said)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_probes_itself_and_its_timeline_is_its_own_inference(trained, name, capsys, monkeypatch):
    """Issue 28 for every family: a probe record at each evaluation, the health of every weight's
    group with the training step's gradient norms, and timeline cells that are what the family's
    own inference answers for the prompts (GPT, masked LM and chat: their own tests)."""
    from desktop_llm.core import health, probes
    from desktop_llm.core.loading import load_for_inference

    store, runs = trained
    run, family = runs[name], get_family(name)
    assert family.probes, name
    recs, spec = probes.records(run), probes.spec(run)
    assert [r["step"] for r in recs] == [10, 20] and spec["prompts"], name
    model, tok, _ = load_for_inference(run, "latest")
    groups = health.groups(model)
    assert sum(len(ws) for ws in groups.values()) == len(model.weights)  # each weight in one group
    for r in recs:
        h = r["health"]
        assert h["groups"] == list(groups) and h["grad_steps"] == 10, name
        assert len(h["grad_norm"]) == len(groups) and max(h["grad_norm"]) > 0 and min(h["grad_norm"]) >= 0
        assert all(10 * (r["step"] // 10 - 1) < s <= r["step"] for s in h["grad_peak_step"])  # in its interval
        assert len(r["continuations"]) == len(spec["prompts"]) and r["seconds"] > 0
    cells = recs[-1]["continuations"]
    T = run.config.model.sequence_length
    if name == "classifier":
        from desktop_llm.core.models.classifier.report import classify

        answers = classify(model, tok, spec["classes"], spec["prompts"], T, spec["specials"])
        assert [c["tokens"] for c in cells] == [[a["label"]] for a in answers]
        assert [c["surprise"][0] for c in cells] == pytest.approx([-np.log(a["p"]) for a in answers], abs=1e-3)
        assert sorted(spec["classes"]) == sorted(set(spec["classes"])) and len(spec["prompts"]) == len(spec["classes"])
    if name == "translator":
        from desktop_llm.core.models.translator.decode import Translator
        from desktop_llm.core.prober import CONTINUATION_TOKENS

        for full, cell in zip(Translator(model, tok, T).translate(spec["prompts"]), cells):
            shown = "".join(cell["tokens"])
            assert full == shown if len(cell["tokens"]) < CONTINUATION_TOKENS else full.startswith(shown)
            assert all(s >= 0 for s in cell["surprise"])
    from desktop_llm.cli import main  # the same records on the command line, whichever views the family has

    monkeypatch.setenv("DESKTOP_LLM_NATIVE_STDERR", "1")  # in this process: leave its descriptor 2 alone
    assert main(["--home", str(store.home), "probes", run.id]) == 0
    printed = capsys.readouterr().out
    assert f"{len(recs)} evaluations probed" in printed and "training health at step 20" in printed
    assert "gradient norm (mean since the evaluation before; the largest, at its step)" in printed


def test_the_registry_lists_every_family_once_with_its_interface():
    assert [f.name for f in families()] == list(FAMILY_NAMES)
    for family in families():
        assert get_family(family.name) is family
        assert family.title and family.summary and family.command, family.name
        assert family.example_data().exists(), family.name
        assert "self" in family.attention_kinds
    with pytest.raises(Exception, match="Unknown model family 'nope'"):
        get_family("nope")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_family_trains_loads_inspects_and_describes_itself(trained, name):
    from desktop_llm.core.loading import load_for_inference
    from desktop_llm.store.card import run_card

    _store, runs = trained
    run = runs[name]
    family = get_family(name)
    status = run.status()
    assert status["status"] == "completed" and status["step"] == 20
    model, tok, ckpt = load_for_inference(run, "best")
    assert ckpt.step in (10, 20)
    data = family.example_data()
    first = data if data.is_file() else min(p for p in data.rglob("*") if p.is_file())
    text = first.read_text("utf-8").strip().splitlines()[0].split("\t")[0][:12] or "abc"
    for kind in family.attention_kinds:
        maps = family.attention_maps(model, tok, text, kind)
        L, H, T, K = maps.weights.shape
        assert (L, H) == (TINY.num_layers, TINY.num_heads) and T == len(maps.tokens) and K == len(maps.columns)
        assert np.allclose(maps.weights.sum(-1), 1, atol=1e-3), (name, kind)  # each row a distribution
    card = dict(run_card(run, {"id": run.id, **run.status()}))
    assert card["family"] == family.title
    assert ("perplexity" in card["best val"]) == family.loss_over_tokens  # not for a classifier's classes
    # the family's own estimate counts exactly the parameters of the model it builds
    shape = replace(run.config.model, vocabulary_size=family.model_vocabulary(tok.vocabulary_size, run.config))
    estimate = family.estimate(shape, 8, run.config)
    head = 0
    if getattr(model, "num_classes", None):  # a classifier's estimate assumes two classes
        head = (model.num_classes - 2) * (TINY.hidden_dim + 1)
    assert estimate.parameters + head == model.count_params(), name
    assert estimate.flops_per_token >= 6 * estimate.parameters and estimate.training_bytes > 4 * estimate.weights_bytes


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_family_exports_what_it_offers_and_refuses_the_rest_in_one_line(trained, tmp_path, name):
    import json

    from desktop_llm.core.export import FORMATS, check_exportable, export_run
    from desktop_llm.errors import ExportError

    _store, runs = trained
    run = runs[name]
    family = get_family(name)
    assert set(family.export_formats) <= set(FORMATS) and family.export_formats
    for fmt in FORMATS:
        if fmt not in family.export_formats:
            with pytest.raises(ExportError, match=f"is a {name} run") as e:
                check_exportable(run, fmt)
            assert "\n" not in str(e.value)
    result = export_run(run, "keras-hub", out=tmp_path / "preset")
    meta = json.loads((result.path / "export.json").read_text("utf-8"))
    assert meta["format"] == "keras-hub" and meta["run"] == run.id and (result.path / "vocabulary.json").exists()


def test_every_family_puts_its_commands_on_the_command_line():
    from desktop_llm.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for family in families():
        assert family.command in commands, family.name
    train = commands["train"]
    family_flag = next(a for a in train._actions if a.dest == "family")
    assert list(family_flag.choices) == list(FAMILY_NAMES)


def test_a_family_default_training_and_base_rules_come_from_the_family():
    base = TrainConfig()
    for family in families():
        own = family.default_training(base)
        assert isinstance(own, TrainConfig)
        own.validate()
        if not family.starts_from_base:
            with pytest.raises(Exception, match="does not start from another run"):
                family.on_base(replace(RunConfig(), family=family.name), "/nowhere")


def test_the_parameter_split_adds_up_to_the_real_count():
    """The Model page's split (embeddings, attention, feed-forward, other) of every family's model:
    its parts sum to the built model's own count, and each part is what its layers hold."""
    m = ModelConfig(vocabulary_size=61, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=40,
                    sequence_length=12, dropout=0.0)
    for fam in families():
        e = fam.estimate(m)
        assert sum(e.split.values()) == e.parameters, fam.name
        assert e.split["feed-forward"] % (2 * 16 * 40 + 40 + 16) == 0 and e.split["attention"] % (4 * 16 * 16 + 4 * 16) == 0
        assert e.split["embeddings"] >= 61 * 16 and e.split["other"] >= 0
