"""A run's report card (issue 28): one self-contained HTML page, and the same in Markdown, of what a
run is and how it went: identity (versions, hardware, seed), the run card (data, tokenizer, model,
training, baselines), the training's figures, its milestones and learning timeline (its probes),
samples along the way, and its family's own last evaluation. Several runs give one comparison
table. Reads only run folders (no TensorFlow); written atomically.
"""

from __future__ import annotations

import html
import platform
from pathlib import Path

from desktop_llm.core import atomic
from desktop_llm.store.card import duration, run_card

PACKAGES = ("desktop_llm", "keras", "keras-hub", "tensorflow", "jax", "torch")
SAMPLES = 5  # evaluations whose sample the report shows, spread over the run
FAMILY_FIGURES = (("val_accuracy", "accuracy", "{:.1%}"), ("val_macro_f1", "macro-F1", "{:.3f}"),
                  ("val_bleu", "BLEU", "{:.1f}"), ("val_chrf", "chrF", "{:.1f}"),
                  ("val_exact_match", "exact match", "{:.1%}"), ("val_stops", "replies that end", "{:.0%}"),
                  ("val_bits_per_byte", "bits per byte", "{:.3f}"))


def versions() -> list[tuple[str, str]]:
    from importlib import metadata

    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return [("python", platform.python_version()), *found]


def figures(run) -> dict:
    """The training's figures: tokens seen, time, speed, the lowest and the last validation loss."""
    info, t, m = run.status(), run.config.training, run.config.model
    evals = [e for e in run.metrics() if e.get("type") == "eval" and e.get("val_loss") is not None]
    step = info.get("step") or 0
    out = {"steps": step, "tokens": step * t.batch_size * m.sequence_length,
           "time": info.get("duration"), "tokens_per_sec": info.get("tokens_per_sec")}
    if evals:
        best = min(evals, key=lambda e: e["val_loss"])
        out.update(min_val_loss=best["val_loss"], min_val_step=best["step"], final_val_loss=evals[-1]["val_loss"])
        for key, name, fmt in FAMILY_FIGURES:
            if evals[-1].get(key) is not None:
                out[name] = fmt.format(evals[-1][key])
    return out


def spread(n: int, k: int) -> list[int]:
    """At most k indices of n, evenly spread, the first and the last among them."""
    k = min(k, n)
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})


def _samples(run) -> list[tuple[int, str]]:
    evals = [e for e in run.metrics() if e.get("type") == "eval" and e.get("sample")]
    if not evals:
        return []
    picks = spread(len(evals), SAMPLES)
    return [(evals[i]["step"], evals[i]["sample"]) for i in picks]


def _timeline(run) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The probe's prompts and, at up to six evaluations, each one's continuation."""
    from desktop_llm.core import probes

    spec, recs = probes.spec(run), probes.records(run)
    if not spec or not recs:
        return [], []
    picks = spread(len(recs), 6)
    return spec["prompts"], [(recs[i]["step"], ["".join(c["tokens"]) for c in recs[i]["continuations"]])
                             for i in picks]


def sections(run) -> list[tuple[str, list[tuple[str, str]] | list[list[str]] | str]]:
    """(title, rows | table | text) of one run's report, for either format."""
    from desktop_llm.core.probes import milestones

    info = run.status()
    out: list = [("Identity", [("run", run.id), ("name", run.config.name or run.id),
                               ("hardware", info.get("device") or "-"), ("seed", str(run.config.training.seed)),
                               *versions()]),
                 ("The run", run_card(run, {"id": run.id, **info}))]
    f = figures(run)
    rows = [("steps", f"{f['steps']:,}"), ("tokens seen", f"{f['tokens']:,}")]
    if f.get("time"):
        rows.append(("time", duration(f["time"])))
    if f.get("tokens_per_sec"):
        rows.append(("tokens/s", f"{f['tokens_per_sec']:,.0f}"))
    if f.get("min_val_loss") is not None:
        rows += [("lowest validation loss", f"{f['min_val_loss']:.4f} at step {f['min_val_step']:,}"),
                 ("final validation loss", f"{f['final_val_loss']:.4f}")]
    rows += [(name, f[name]) for _, name, _ in FAMILY_FIGURES if name in f]
    out.append(("Training", rows))
    evals = [e for e in run.metrics() if e.get("type") == "eval"]
    from desktop_llm.core.probes import records

    found = milestones(evals, info.get("baselines"), records(run))
    if found:
        out.append(("Milestones", [(f"step {s:,}", w) for s, w in found]))
    prompts, timeline = _timeline(run)
    if prompts:
        out.append(("Learning timeline (greedy continuations of the probe's prompts)",
                    [["step", *[f"“{p}”" for p in prompts]], *[[f"{s:,}", *texts] for s, texts in timeline]]))
    samples = _samples(run)
    if samples:
        out.append(("Samples", [(f"step {s:,}", text) for s, text in samples]))
    return out


def comparison(runs) -> list[list[str]]:
    """One table of several runs' key figures."""
    header = ["run", "family", "steps", "time", "tokens/s", "lowest val loss", "final val loss", "best baseline"]
    rows = [header]
    for run in runs:
        f, info = figures(run), run.status()
        base = (info.get("baselines") or {}).get("figures") or {}
        best = min(((n, v.get("loss")) for n, v in base.items() if v.get("loss") is not None),
                   key=lambda x: x[1], default=None)
        rows.append([run.config.name or run.id, run.config.family, f"{f['steps']:,}",
                     duration(f["time"]) if f.get("time") else "-",
                     f"{f['tokens_per_sec']:,.0f}" if f.get("tokens_per_sec") else "-",
                     f"{f['min_val_loss']:.4f}" if f.get("min_val_loss") is not None else "-",
                     f"{f['final_val_loss']:.4f}" if f.get("final_val_loss") is not None else "-",
                     f"{best[0]} {best[1]:.4f}" if best else "-"])
    return rows


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ⏎ ")


def markdown(runs) -> str:
    parts = [f"# desktop_llm report: {', '.join(r.config.name or r.id for r in runs)}\n"]
    if len(runs) > 1:
        table = comparison(runs)
        parts += ["## Comparison\n", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0]),
                  *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table[1:]], ""]
    for run in runs:
        parts.append(f"## {run.config.name or run.id}\n")
        for title, body in sections(run):
            parts.append(f"### {title}\n")
            if body and isinstance(body[0], list):
                parts += ["| " + " | ".join(_md_cell(c) for c in body[0]) + " |", "|" + "---|" * len(body[0]),
                          *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body[1:]]]
            else:
                parts += [f"- **{k}**: {_md_cell(v)}" for k, v in body]
            parts.append("")
    return "\n".join(parts) + "\n"


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1e1f22}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
         "text-align:left;vertical-align:top}th{background:#f3f4f6}td.k{color:#555;white-space:nowrap}"
         "pre{white-space:pre-wrap;margin:0;font-family:ui-monospace,monospace}h2{border-bottom:2px solid #3574f0}")


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td><pre>{html.escape(str(c))}</pre></td>" for c in row) + "</tr>"
                   for row in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(runs) -> str:
    title = html.escape(", ".join(r.config.name or r.id for r in runs))
    parts = [(f"<!doctype html><meta charset='utf-8'><title>desktop_llm report: {title}</title>"
              f"<style>{STYLE}</style><h1>desktop_llm report: {title}</h1>")]
    if len(runs) > 1:
        parts.append("<h2>Comparison</h2>" + _html_table(comparison(runs)))
    for run in runs:
        parts.append(f"<h2>{html.escape(run.config.name or run.id)}</h2>")
        for name, body in sections(run):
            parts.append(f"<h3>{html.escape(name)}</h3>")
            if body and isinstance(body[0], list):
                parts.append(_html_table(body))
            else:
                parts.append("<table>" + "".join(
                    f"<tr><td class='k'>{html.escape(k)}</td><td><pre>{html.escape(str(v))}</pre></td></tr>"
                    for k, v in body) + "</table>")
    return "".join(parts) + "\n"


def write(runs, folder: str | Path) -> tuple[Path, Path]:
    """report.html and report.md of `runs` in `folder`, each written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page, text = folder / "report.html", folder / "report.md"
    atomic.write_text(page, html_page(runs))
    atomic.write_text(text, markdown(runs))
    return page, text
