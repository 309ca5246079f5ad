"""Side by side (issue 28): one prompt and seed through 2-4 runs, or one run at 2-4 points of its
training (its checkpoints and weight snapshots), for the `compare` command and the Generate page."""

from __future__ import annotations

from desktop_llm.core.config import ConfigError

MAX_COLUMNS = 4


def parse_target(text: str) -> tuple[str, str]:
    """"RUN", "RUN@best", "RUN@latest", "RUN@1200" -> (run reference, which), refused in one line."""
    ref, _, which = text.rpartition("@") if "@" in text else (text, "", "best")
    which = which or "best"
    if not ref:
        raise ConfigError(f"{text!r}: name a run before the @.")
    if which not in ("best", "latest") and not which.removeprefix("step:").isdigit():
        raise ConfigError(f"{text!r}: after the @ comes best, latest or a step number.")
    return ref, which


def choices(run) -> list[tuple[str, str]]:
    """(label, which) of every point of `run` a column can show: its best and latest checkpoints,
    then each kept weight snapshot, oldest first."""
    from desktop_llm.core import snapshots
    from desktop_llm.core.checkpoints import CheckpointManager

    out = []
    manager = CheckpointManager(run.checkpoints_dir)
    for which in ("best", "latest"):
        ckpt = manager.find(which)
        if ckpt is not None:
            out.append((f"{which} checkpoint (step {ckpt.step:,})", which))
    out += [(f"step {s:,} (snapshot)", str(s)) for s in snapshots.steps(run)]
    return out
