"""A run's report card (issue 28): one self-contained HTML page, and the same in Markdown, of what a
run is and how it went: identity (versions, hardware, seed), the run card (data, tokenizer, model,
training, baselines), the tokenizer against the character and byte tokenizers, the model's size and
FLOPs, the training's figures (MFU against this machine's peak where it trained here), its
milestones and pictures (store/pictures.py), its learning timeline (its probes), samples along the
way, and its family's own last evaluation. Several runs give one comparison table. Reads only run
folders (no TensorFlow); written atomically.
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


def best_figure(row: dict) -> str:
    """"best macro-F1 0.987" or "best loss 3.665": what chose a run's best checkpoint, for a
    catalog row (a classifier's best loss, near 0 on an easy task, said nothing useful)."""
    from desktop_llm.core.models import FAMILY_NAMES, get_family
    from desktop_llm.store.runs import row_family

    name = row_family(row)
    metric = get_family(name).selection_metric if name in FAMILY_NAMES else "loss"
    figure = next((f for f in FAMILY_FIGURES if f[0] == f"val_{metric}"), None)
    if figure is not None and row.get("best_score") is not None:
        return f"best {figure[1]} {figure[2].format(row['best_score'])}"
    return f"best loss {row['best_val_loss']:.3f}" if row.get("best_val_loss") is not None else ""


def versions() -> list[tuple[str, str]]:
    from importlib import metadata

    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return [("python", platform.python_version()), *found]


def figures(run, peak: tuple[float, str] | None = None) -> dict:
    """The training's figures: tokens seen, time, speed, FLOPs per token, MFU (given this machine's
    `peak` (GFLOP/s, library) and a run that trained on this machine's CPU), the lowest and the
    last validation loss."""
    from desktop_llm.store.speed import flops_per_token, median_tokens_per_sec

    info, t, m = run.status(), run.config.training, run.config.model
    evals = [e for e in run.metrics() if e.get("type") == "eval" and e.get("val_loss") is not None]
    step = info.get("step") or 0
    tps = median_tokens_per_sec(run, least=1) or info.get("tokens_per_sec")
    out = {"steps": step, "tokens": step * t.batch_size * m.sequence_length,
           "time": info.get("duration"), "tokens_per_sec": tps, "flops_per_token": flops_per_token(run)}
    if peak and tps and out["flops_per_token"] and trained_here(info):
        out["mfu"] = tps * out["flops_per_token"] / (peak[0] * 1e9)
        out["peak"] = peak
    if evals:
        best = min(evals, key=lambda e: e["val_loss"])
        out.update(min_val_loss=best["val_loss"], min_val_step=best["step"], final_val_loss=evals[-1]["val_loss"])
        for key, name, fmt in FAMILY_FIGURES:
            if evals[-1].get(key) is not None:
                out[name] = fmt.format(evals[-1][key])
    return out


def trained_here(info: dict) -> bool:
    """Whether a run trained on this machine's CPU (its MFU can use the peak measured here)."""
    from desktop_llm.core.speed_probe import machine

    return str(info.get("device", "")).startswith("CPU") and info.get("machine") == machine()


def tokenizer_rows(run, info: dict) -> list[tuple[str, str]]:
    """How much text a token holds on the validation text, against the character tokenizer (one
    character a token) and the byte tokenizer (one byte a token), and what a context holds."""
    base = info.get("baselines") or {}
    cpt, bpt = base.get("chars_per_token"), base.get("bytes_per_token")
    if not (cpt and bpt):
        return []
    T = run.config.model.sequence_length
    bpc = bpt / cpt
    return [("characters per token", f"{cpt:.2f} (a character tokenizer: 1; a byte tokenizer: {1 / bpc:.2f})"),
            ("bytes per token", f"{bpt:.2f} (a character tokenizer: {bpc:.2f}; a byte tokenizer: 1)"),
            ("a context holds", (f"{T:,} tokens: about {T * cpt:,.0f} characters, against {T:,} with the character "
                                f"tokenizer and {T / bpc:,.0f} with the byte tokenizer"))]


def pictures(run, info: dict, found: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """(caption, SVG) of the run's curves and views."""
    from desktop_llm.core import heads, probes
    from desktop_llm.store.pictures import head_grid, line_chart

    out = []
    metrics = run.metrics()
    train = [(r["step"], r["loss"]) for r in metrics if r.get("type") == "step" and r.get("loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in metrics if r.get("type") == "eval" and r.get("val_loss") is not None]
    if val:
        series = []
        if train:
            series.append({"name": "training loss", "x": [s for s, _ in train], "y": [v for _, v in train],
                           "colour": "#9ecae1"})
        series.append({"name": "validation loss", "x": [s for s, _ in val], "y": [v for _, v in val],
                       "colour": "#3574f0"})
        palette = iter(["#59a14f", "#e15759", "#edc948", "#76b7b2", "#f28e2b"])
        for name, fig in ((info.get("baselines") or {}).get("figures") or {}).items():
            if fig.get("loss") is not None:
                series.append({"name": name, "x": [], "y": [fig["loss"]], "colour": next(palette, "#999"),
                               "flat": True})
        out.append(("Loss, with the baselines (dashed) and the milestones (numbered, as listed above)",
                    line_chart(series, [(s, w) for s, w in found], y_label="loss")))
    recs = probes.records(run)
    last = next((r for r in reversed(recs) if r.get("heads")), None)
    if last:
        out.append((f"The head atlas at step {last['step']:,}: each head's role",
                    head_grid(heads.roles(last["heads"]), heads.COLOURS, heads.LABELS)))
        c = heads.curves(recs)
        out.append((("The heads over training: the best induction score, the lowest attention entropy, the largest "
                    "first-token mass"),
                    line_chart([{"name": "induction", "x": c["steps"], "y": c["induction"], "colour": "#f4a261"},
                                {"name": "lowest entropy", "x": c["steps"], "y": c["entropy"], "colour": "#3574f0"},
                                {"name": "sink", "x": c["steps"], "y": c["sink"], "colour": "#999999"}],
                               y_label="score")))
    rows = [r for r in recs if r.get("position_loss")]
    if len(rows) >= 2:
        picks = [rows[i] for i in spread(len(rows), 4)]
        palette = ["#c6dbef", "#6baed6", "#2171b5", "#08306b"]
        out.append(("In context: the mean loss at each position of the context, at four evaluations (later is darker)",
                    line_chart([{"name": f"step {r['step']:,}", "x": list(range(len(r["position_loss"]))),
                                 "y": r["position_loss"], "colour": palette[i]} for i, r in enumerate(picks)],
                               x_label="position in the context", y_label="loss")))
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
    """The timeline's prompts (the user's own where they set them) and, at up to six of the
    evaluations that ran them, each one's continuation."""
    from desktop_llm.core import probes

    spec = probes.spec(run)
    wanted = probes.prompts(run, spec)
    recs = probes.same_prompts(probes.records(run), spec, wanted)
    if not spec or not recs:
        return [], []
    picks = spread(len(recs), 6)
    return wanted, [(recs[i]["step"], ["".join(c["tokens"]) for c in recs[i]["continuations"]]) for i in picks]


def sections(run, peak: tuple[float, str] | None = None) -> list[tuple[str, list | dict]]:
    """(title, rows | table | {"pictures": [(caption, svg)]}) of one run's report, for either format."""
    from desktop_llm.core.probes import milestones

    info = run.status()
    hardware = info.get("device") or "-"
    if info.get("machine"):
        hardware += f" ({info['machine']})"
    out: list = [("Identity", [("run", run.id), ("name", run.config.name or run.id),
                               ("hardware", hardware), ("seed", str(run.config.training.seed)),
                               *versions()]),
                 ("The run", run_card(run, {"id": run.id, **info}))]
    tok_rows = tokenizer_rows(run, info)
    if tok_rows:
        out.append(("Tokenizer, on the validation text", tok_rows))
    f = figures(run, peak)
    rows = [("steps", f"{f['steps']:,}"), ("tokens seen", f"{f['tokens']:,}")]
    if f.get("flops_per_token"):
        rows.append(("FLOPs per token", f"{f['flops_per_token']:,} (training: forward and backward)"))
    if f.get("time"):
        rows.append(("time", duration(f["time"])))
    if f.get("tokens_per_sec"):
        rows.append(("tokens/s", f"{f['tokens_per_sec']:,.0f} (median)"))
    if f.get("mfu") is not None:
        rows.append(("MFU", (f"{f['mfu']:.1%} of this CPU's float32 peak ({f['peak'][0]:,.0f} GFLOP/s, "
                            f"{f['peak'][1]}'s 2048² matrix product)")))
    if f.get("min_val_loss") is not None:
        rows += [("lowest validation loss", f"{f['min_val_loss']:.4f} at step {f['min_val_step']:,}"),
                 ("final validation loss", f"{f['final_val_loss']:.4f}")]
    rows += [(name, f[name]) for _, name, _ in FAMILY_FIGURES if name in f]
    out.append(("Training", rows))
    evals = [e for e in run.metrics() if e.get("type") == "eval"]
    from desktop_llm.core.probes import records

    found = milestones(evals, info.get("baselines"), records(run))
    if found:
        out.append(("Milestones", [(f"{i}. step {s:,}", w) for i, (s, w) in enumerate(found, 1)]))
    drawn = pictures(run, info, found)
    if drawn:
        out.append(("Pictures", {"pictures": drawn}))
    prompts, timeline = _timeline(run)
    if prompts:
        from desktop_llm.core.models import get_family

        out.append((f"Learning timeline ({get_family(run.config.family).timeline_cells} of its prompts)",
                    [["step", *[f"“{p}”" for p in prompts]], *[[f"{s:,}", *texts] for s, texts in timeline]]))
    samples = _samples(run)
    if samples:
        out.append(("Samples", [(f"step {s:,}", text) for s, text in samples]))
    return out


def comparison(runs, peak: tuple[float, str] | None = None) -> list[list[str]]:
    """One table of several runs' key figures."""
    header = ["run", "family", "steps", "time", "tokens/s", "MFU", "lowest val loss", "final val loss",
              "bits per byte", "best baseline"]
    rows = [header]
    for run in runs:
        f, info = figures(run, peak), run.status()
        base = (info.get("baselines") or {}).get("figures") or {}
        best = min(((n, v.get("loss")) for n, v in base.items() if v.get("loss") is not None),
                   key=lambda x: x[1], default=None)
        from desktop_llm.core.baselines import bits_per_byte

        bpb = bits_per_byte(f.get("min_val_loss"), (info.get("baselines") or {}).get("bytes_per_token"))
        rows.append([run.config.name or run.id, run.config.family, f"{f['steps']:,}",
                     duration(f["time"]) if f.get("time") else "-",
                     f"{f['tokens_per_sec']:,.0f}" if f.get("tokens_per_sec") else "-",
                     f"{f['mfu']:.1%}" if f.get("mfu") is not None else "-",
                     f"{f['min_val_loss']:.4f}" if f.get("min_val_loss") is not None else "-",
                     f"{f['final_val_loss']:.4f}" if f.get("final_val_loss") is not None else "-",
                     f"{bpb:.3f}" if bpb else "-",
                     f"{best[0]} {best[1]:.4f}" if best else "-"])
    return rows


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ⏎ ")


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].rstrip("-")


def markdown(runs, peak: tuple[float, str] | None = None, pictures_dir: str = "pictures") -> tuple[str, dict[str, str]]:
    """(the report in Markdown, {file name under `pictures_dir`: SVG} of the pictures it links)."""
    files: dict[str, str] = {}
    parts = [f"# desktop_llm report: {', '.join(r.config.name or r.id for r in runs)}\n"]
    if len(runs) > 1:
        table = comparison(runs, peak)
        parts += ["## Comparison\n", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0]),
                  *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table[1:]], ""]
    for run in runs:
        parts.append(f"## {run.config.name or run.id}\n")
        for title, body in sections(run, peak):
            parts.append(f"### {title}\n")
            if isinstance(body, dict):
                for i, (caption, svg) in enumerate(body["pictures"], 1):
                    name = f"{run.id}-{i}-{_slug(caption)}.svg"
                    files[name] = svg
                    parts += [f"![{_md_cell(caption)}]({pictures_dir}/{name})", "", f"*{_md_cell(caption)}*", ""]
            elif body and isinstance(body[0], list):
                parts += ["| " + " | ".join(_md_cell(c) for c in body[0]) + " |", "|" + "---|" * len(body[0]),
                          *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body[1:]]]
            else:
                parts += [f"- **{k}**: {_md_cell(v)}" for k, v in body]
            parts.append("")
    return "\n".join(parts) + "\n", files


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1e1f22}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
         "text-align:left;vertical-align:top}th{background:#f3f4f6}td.k{color:#555;white-space:nowrap}"
         "pre{white-space:pre-wrap;margin:0;font-family:ui-monospace,monospace}h2{border-bottom:2px solid #3574f0}"
         "figure{display:inline-block;margin:0 1.5em 1.5em 0;vertical-align:top}"
         "figcaption{color:#555;font-size:90%;max-width:560px}")


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td><pre>{html.escape(str(c))}</pre></td>" for c in row) + "</tr>"
                   for row in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(runs, peak: tuple[float, str] | None = None) -> str:
    title = html.escape(", ".join(r.config.name or r.id for r in runs))
    parts = [(f"<!doctype html><meta charset='utf-8'><title>desktop_llm report: {title}</title>"
              f"<style>{STYLE}</style><h1>desktop_llm report: {title}</h1>")]
    if len(runs) > 1:
        parts.append("<h2>Comparison</h2>" + _html_table(comparison(runs, peak)))
    for run in runs:
        parts.append(f"<h2>{html.escape(run.config.name or run.id)}</h2>")
        for name, body in sections(run, peak):
            parts.append(f"<h3>{html.escape(name)}</h3>")
            if isinstance(body, dict):  # inline SVG: the page stays one self-contained file
                parts += [f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"
                          for caption, svg in body["pictures"]]
            elif body and isinstance(body[0], list):
                parts.append(_html_table(body))
            else:
                parts.append("<table>" + "".join(
                    f"<tr><td class='k'>{html.escape(k)}</td><td><pre>{html.escape(str(v))}</pre></td></tr>"
                    for k, v in body) + "</table>")
    return "".join(parts) + "\n"


def write(runs, folder: str | Path, peak: tuple[float, str] | None = None) -> tuple[Path, Path]:
    """report.html (self-contained) and report.md (with its pictures in pictures/) of `runs` in
    `folder`, each file written atomically. `peak`: this machine's (core/peak.py), for the MFU."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page, text = folder / "report.html", folder / "report.md"
    atomic.write_text(page, html_page(runs, peak))
    md, files = markdown(runs, peak)
    if files:
        (folder / "pictures").mkdir(exist_ok=True)
        for name, svg in files.items():
            atomic.write_text(folder / "pictures" / name, svg)
    atomic.write_text(text, md)
    return page, text
