"""Typed training events: every line a real run prints (and keeps in metrics.jsonl) parses into
its class and back to the same JSON; unknown fields and types survive."""

import json
import subprocess
import sys

import pytest

from desktop_llm.core import events as ev


def test_every_event_of_a_real_run_round_trips(tmp_path, shakespeare_small):
    out = subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(tmp_path / "h"), "train",
                          str(shakespeare_small), "--preset", "tiny", "--context", "16", "--steps", "20",
                          "--eval-interval", "10", "--log-interval", "10", "--sample-tokens", "4", "--json"],
                         check=False, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    folder = next(d["folder"] for d in lines if d["type"] == "run")
    with open(f"{folder}/metrics.jsonl", encoding="utf-8") as f:
        lines += [json.loads(line) for line in f]
    kinds = set()
    for d in lines:
        e = ev.parse(d)
        assert not isinstance(e, ev.Other), d  # the trainer emits only types this module names
        assert e.to_dict() == d
        assert not e.extra, (type(e).__name__, e.extra)  # every field it emits is declared
        kinds.add(type(e))
    assert {ev.RunFolder, ev.Phase, ev.Data, ev.Start, ev.Step, ev.Eval, ev.Checkpoint, ev.Completed,
            ev.Exported} <= kinds
    step = next(ev.parse(d) for d in lines if d["type"] == "step")
    assert step.max_steps == 20 and step.loss > 0 and 0 <= step.accuracy <= 1  # next-token accuracy


def test_unknown_fields_and_types_ride_along():
    d = {"type": "eval", "step": 5, "val_loss": 1.0, "val_ppl": 2.7, "best_val_loss": 1.0, "sample": "",
         "elapsed": 1.0, "val_rouge": 12.5}
    e = ev.parse(d)
    assert isinstance(e, ev.Eval) and e.extra == {"val_rouge": 12.5} and e.to_dict() == d
    other = {"type": "token", "text": "a", "p": 0.5}
    assert isinstance(ev.parse(other), ev.Other) and ev.parse(other).to_dict() == other


@pytest.mark.parametrize("cls", sorted(ev.TYPES.values(), key=lambda c: c.TYPE))
def test_each_type_survives_json(cls):
    e = cls()
    assert ev.parse(json.loads(json.dumps(e.to_dict()))).to_dict() == json.loads(json.dumps(e.to_dict()))
