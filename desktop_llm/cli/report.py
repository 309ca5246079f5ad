"""`desktop-llm report RUN [RUN ...]`: a run's report card (store/report.py) as HTML and Markdown;
several runs give one comparison table too."""

from __future__ import annotations

from pathlib import Path

from desktop_llm.cli.common import store_of


def cmd_report(args) -> int:
    from desktop_llm.store import report

    store = store_of(args)
    runs = [store.resolve(r) for r in args.runs] if args.runs else [store.latest()]
    runs = [r for r in runs if r is not None]
    if not runs:
        from desktop_llm.cli.common import CliError

        raise CliError("No runs yet: train one first (`desktop-llm train`).")
    folder = Path(args.out) if args.out else (runs[0].folder / "report" if len(runs) == 1 else
                                             store.home / "reports" / "-".join(r.id[:15] for r in runs[:4]))
    peak = None
    if any(report.trained_here(r.status()) for r in runs):  # MFU: this CPU's peak, measured once (~5 s)
        from desktop_llm.core.peak import cpu_peak

        peak = cpu_peak()
    page, text = report.write(runs, folder, peak)
    print(page)
    print(text)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a run's report card (HTML and Markdown); several runs: a comparison")
    p.add_argument("runs", nargs="*", help="run ids or names (default: the newest run)")
    p.add_argument("--out", help="the folder to write report.html and report.md in (default: the run's report/)")
    p.set_defaults(func=cmd_report)
