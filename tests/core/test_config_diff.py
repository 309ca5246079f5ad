"""The settings that differ between runs: one rule for `runs diff` and the Runs page."""

import json
from dataclasses import replace

from desktop_llm.cli import main
from desktop_llm.core.config import DataConfig, RunConfig, TrainConfig, preset
from desktop_llm.store import RunStore
from desktop_llm.store.diff import config_diff, diff_text


def _cfg(**training):
    return RunConfig(name="a", data=DataConfig(paths=("/data/x.txt",)), model=preset("tiny"),
                     training=TrainConfig(**training))


def test_only_what_differs_in_the_configs_order():
    a, b = _cfg(max_steps=100), _cfg(max_steps=200, learning_rate=3e-4)
    c = replace(b, name="c", model=replace(b.model, num_layers=4), data=replace(b.data, paths=("/data/y.txt",)))
    rows = config_diff([a, b, c])
    assert [k for k, _ in rows] == ["data.paths", "model.num_layers", "training.max_steps", "training.learning_rate"]
    assert dict(rows)["training.learning_rate"] == ["0.001", "0.0003", "0.0003"]
    assert dict(rows)["data.paths"] == ["x.txt", "x.txt", "y.txt"]  # file names, not folders
    assert config_diff([a, replace(a, name="other")]) == []  # a name is not a setting


def test_runs_diff_on_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DESKTOP_LLM_NATIVE_STDERR", "1")  # errors to capsys's stderr, not the log
    store = RunStore(tmp_path / "ws")
    one = store.create(replace(_cfg(max_steps=100), name="short"))
    two = store.create(replace(_cfg(max_steps=300), name="long"))
    assert main(["--home", str(store.home), "runs", "diff", "short", "long"]) == 0
    text = capsys.readouterr().out
    assert text == diff_text([one, two]) + "\n"
    assert text.splitlines()[0].split() == ["short", "long"] and text.splitlines()[1].split() == ["training.max_steps", "100", "300"]
    assert main(["--home", str(store.home), "runs", "diff", one.id, two.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"runs": [one.id, two.id], "differences": [{"setting": "training.max_steps", "values": ["100", "300"]}]}
    assert main(["--home", str(store.home), "runs", "diff", "short"]) == 2
    assert "compares two runs or more" in capsys.readouterr().err
    assert main(["--home", str(store.home), "runs", "show", "short", "x", "y"]) == 2
    assert "too many arguments" in capsys.readouterr().err
