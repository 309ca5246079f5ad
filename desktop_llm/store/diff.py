"""What differs between runs' settings (issue 28's "config diff"): the Runs page shows it when
several runs are selected, and `desktop-llm runs diff A B ...` prints it. One rule for both."""

from __future__ import annotations

from pathlib import Path

# Identity, not a setting: a run's name differs by design and is shown as the column's title.
LEFT_OUT = ("name",)


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _text(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(Path(str(v)).name if isinstance(v, str) and "/" in v else _text(v) for v in value) or "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_diff(configs: list) -> list[tuple[str, list[str]]]:
    """[(setting, [its value in each run, as text])] for the settings whose values differ, in the
    config's own order (data, tokenizer, model, training); a setting a run lacks reads "—"."""
    flats = [_flatten(c.to_dict()) for c in configs]
    keys: list[str] = []
    for flat in flats:
        keys += [k for k in flat if k not in keys and k not in LEFT_OUT]
    rows = []
    for key in keys:
        values = [_text(flat.get(key)) for flat in flats]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


def diff_text(runs: list) -> str:
    """The diff as aligned text, one setting a line, a column per run."""
    rows = config_diff([r.config for r in runs])
    if not rows:
        return "These runs have the same settings (besides their names)."
    titles = [r.config.name or r.id for r in runs]
    width = max(len(k) for k, _ in rows)
    cols = [max(len(t), *(len(v[i]) for _, v in rows)) for i, t in enumerate(titles)]
    lines = ["  ".join([" " * width, *(t.ljust(c) for t, c in zip(titles, cols))]).rstrip()]
    lines += ["  ".join([k.ljust(width), *(v.ljust(c) for v, c in zip(vals, cols))]).rstrip() for k, vals in rows]
    return "\n".join(lines)
