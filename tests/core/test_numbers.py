"""NaN and infinity are refused wherever a number is read: a config file's values and every numeric
flag (NaN passes `v < 0`, so a range check alone lets it through to fail at the first step)."""

import json
import math
import os
import subprocess
import sys

import pytest

from desktop_llm.core.config import ConfigError, TrainConfig


@pytest.mark.parametrize("field", ["learning_rate", "min_learning_rate", "weight_decay", "grad_clip",
                                   "beta_1", "beta_2"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_config_refuses_a_number_that_is_not_finite(field, value):
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig(**{field: value}).validate()


def test_a_config_file_with_nan_is_refused_in_one_line(tmp_path):
    from desktop_llm.core.config import RunConfig

    cfg = RunConfig().to_dict()
    cfg["data"]["paths"] = ["x.txt"]
    cfg["training"]["learning_rate"] = float("nan")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))  # json writes NaN, and reads it back
    with pytest.raises(ConfigError, match="Learning rate must be a finite number"):
        RunConfig.load(path).validate()


@pytest.mark.parametrize("flag", ["--clip", "--weight-decay", "--min-lr", "--lr", "--dropout"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_numeric_flags_refuse_nan_and_infinity_before_anything_is_created(tmp_path, flag, value):
    from desktop_llm.cli import build_parser
    from desktop_llm.cli.common import CliError, check_flags

    args = build_parser().parse_args(["train", flag, value])
    with pytest.raises(CliError, match=flag):
        check_flags(args)


def test_the_command_line_says_it_in_one_line(tmp_path):
    env = dict(os.environ, DESKTOP_LLM_HOME=str(tmp_path / "ws"))
    p = subprocess.run([sys.executable, "-m", "desktop_llm", "train", "--clip", "nan"], check=False,
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == "error: --clip must be 0 or more (got nan)."
    assert not (tmp_path / "ws" / "runs").exists() or not any((tmp_path / "ws" / "runs").iterdir())
