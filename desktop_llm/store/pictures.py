"""Small SVG pictures for a run's report (store/report.py): the loss curves with the baselines and
milestones, the head atlas at the last evaluation, the in-context learning curve.

Hand-written SVG rather than a plotting library: the report is one self-contained page written
from run folders alone, where pyqtgraph needs a Qt application and matplotlib is not installed;
three kinds of simple chart take less code than either would to set up.
"""

from __future__ import annotations

import html
import math

W, H = 560, 230  # a chart's size in pixels
PAD_L, PAD_R, PAD_T, PAD_B = 56, 150, 14, 34  # room for the axes' labels, the legend on the right
FONT = "font-family='system-ui,sans-serif' font-size='11'"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round values between lo and hi."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def line_chart(series: list[dict], markers: list[tuple[float, str]] = (), x_label: str = "step",
               y_label: str = "", title: str = "") -> str:
    """SVG of lines: each series {"name", "x", "y", "colour", "dashed"?: bool}; a series with one
    x value per end ("flat": True) is a horizontal reference line. `markers`: (x, text) as
    vertical ticks numbered in the legend."""
    xs = [x for s in series if not s.get("flat") for x in s["x"]] or [0.0, 1.0]
    ys = [y for s in series for y in s["y"] if y is not None and math.isfinite(y)] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    y0, y1 = y0 - 0.04 * (y1 - y0), y1 + 0.04 * (y1 - y0)
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(x):
        return PAD_L + (x - x0) / (x1 - x0) * iw

    def py(y):
        return PAD_T + (1 - (y - y0) / (y1 - y0)) * ih

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' viewBox='0 0 {W} {H}' {FONT}>",
           f"<rect x='{PAD_L}' y='{PAD_T}' width='{iw}' height='{ih}' fill='#fafafa' stroke='#ccc'/>"]
    if title:
        out.append(f"<title>{html.escape(title)}</title>")
    for t in _ticks(y0, y1):
        out.append(f"<line x1='{PAD_L}' x2='{PAD_L + iw}' y1='{py(t):.1f}' y2='{py(t):.1f}' stroke='#e6e6e6'/>"
                   f"<text x='{PAD_L - 4}' y='{py(t) + 4:.1f}' text-anchor='end' fill='#555'>{_fmt(t)}</text>")
    for t in _ticks(x0, x1):
        out.append(f"<text x='{px(t):.1f}' y='{PAD_T + ih + 14}' text-anchor='middle' fill='#555'>{_fmt(t)}</text>")
    out.append(f"<text x='{PAD_L + iw / 2}' y='{H - 4}' text-anchor='middle' fill='#333'>{html.escape(x_label)}</text>")
    if y_label:
        out.append(f"<text transform='translate(12,{PAD_T + ih / 2}) rotate(-90)' text-anchor='middle' "
                   f"fill='#333'>{html.escape(y_label)}</text>")
    legend_y = PAD_T + 8
    for s in series:
        dash = " stroke-dasharray='5,4'" if s.get("dashed") or s.get("flat") else ""
        if s.get("flat"):
            y = s["y"][0]
            pts = f"{PAD_L},{py(y):.1f} {PAD_L + iw},{py(y):.1f}"
        else:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s["x"], s["y"])
                           if y is not None and math.isfinite(y))
        out.append(f"<polyline points='{pts}' fill='none' stroke='{s['colour']}' stroke-width='2'{dash}/>")
        out.append(f"<line x1='{W - PAD_R + 10}' x2='{W - PAD_R + 28}' y1='{legend_y}' y2='{legend_y}' "
                   f"stroke='{s['colour']}' stroke-width='2'{dash}/><text x='{W - PAD_R + 32}' y='{legend_y + 4}' "
                   f"fill='#333'>{html.escape(s['name'])}</text>")
        legend_y += 16
    for i, (x, text) in enumerate(markers, 1):
        out.append(f"<line x1='{px(x):.1f}' x2='{px(x):.1f}' y1='{PAD_T}' y2='{PAD_T + ih}' stroke='#b07aa1' "
                   f"stroke-width='1'><title>{html.escape(text)}</title></line>"
                   f"<text x='{px(x) + 2:.1f}' y='{PAD_T + 11}' fill='#b07aa1'>{i}</text>")
    if markers:
        legend_y += 4
        for i, (x, _text) in enumerate(markers, 1):
            if legend_y > H - 8:
                break
            out.append(f"<text x='{W - PAD_R + 10}' y='{legend_y + 4}' fill='#b07aa1'>{i}: step {_fmt(x)}</text>")
            legend_y += 14
    out.append("</svg>")
    return "".join(out)


def head_grid(roles: list[list[str]], colours: dict[str, str], labels: dict[str, str], title: str = "") -> str:
    """SVG of a layer x head grid, each cell in its role's colour, with the legend below."""
    L, Hh = len(roles), len(roles[0]) if roles else 0
    cw, ch, left, top = 74, 26, 60, 20
    used = [r for r in labels if any(r in row for row in roles)]
    width = max(left + Hh * cw + 10, 360)
    height = top + L * ch + 16 + 18 * ((len(used) + 2) // 3)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {FONT}>"]
    if title:
        out.append(f"<title>{html.escape(title)}</title>")
    for h in range(Hh):
        out.append(f"<text x='{left + h * cw + cw / 2}' y='{top - 6}' text-anchor='middle' fill='#555'>head {h}</text>")
    for layer, row in enumerate(roles):
        y = top + layer * ch
        out.append(f"<text x='{left - 6}' y='{y + ch / 2 + 4}' text-anchor='end' fill='#555'>layer {layer}</text>")
        for h, role in enumerate(row):
            out.append(f"<rect x='{left + h * cw}' y='{y}' width='{cw - 2}' height='{ch - 2}' fill='{colours[role]}' "
                       f"stroke='#bbb'><title>layer {layer}, head {h}: {html.escape(labels[role])}</title></rect>")
    y = top + L * ch + 16
    for i, role in enumerate(used):
        x = 10 + (i % 3) * 120
        yy = y + (i // 3) * 18
        out.append(f"<rect x='{x}' y='{yy - 10}' width='12' height='12' fill='{colours[role]}' stroke='#bbb'/>"
                   f"<text x='{x + 16}' y='{yy}' fill='#333'>{html.escape(labels[role])}</text>")
    out.append("</svg>")
    return "".join(out)
