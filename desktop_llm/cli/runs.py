"""`desktop-llm runs` (list, show, delete, export, import, rebuild) and `desktop-llm doctor`."""

from __future__ import annotations

import argparse

from desktop_llm.cli.common import NO_RUNS, CliError, need, out, store_of
from desktop_llm.cli.render import run_card_text


def cmd_runs(args) -> int:
    store = store_of(args)
    action = args.action
    if getattr(args, "more", None) and action != "diff":
        raise CliError(f"runs {action}: too many arguments ({' '.join(args.more)}).")
    if getattr(args, "id", None) and action in ("show", "delete", "export"):
        args.id = store.resolve(args.id).id  # a name or the start of an id, like the other commands
    if action == "list":
        rows = store.list()
        if args.json:
            out({"runs": [{k: v for k, v in r.items() if k != "config"} for r in rows]})
            return 0
        if not rows:
            print(f"No runs in {store.home}.")
        from desktop_llm.store.runs import row_family

        width = max((len(r["id"]) for r in rows), default=0)  # a long imported id keeps the columns
        for r in rows:
            best = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
            print(f"{r['id']:<{width}}  {r['status']:<11} {row_family(r):<10} step {r['step'] or 0:>6}/"
                  f"{r['max_steps']:<6} best val {best:<8} {r['summary']}")
    elif action == "show":
        run = store.get(args.id) if args.id else store.latest()
        if run is None:
            raise CliError(NO_RUNS)
        info = {"id": run.id, "folder": str(run.folder), **run.status(), "config": run.config.to_dict()}
        out(info) if args.json else print(run_card_text(run, info))
    elif action == "diff":  # runs diff A B [C ...]: the settings that differ
        refs = [x for x in (args.id, args.dest, *args.more) if x]
        if len(refs) < 2:
            raise CliError("runs diff compares two runs or more: desktop-llm runs diff RUN RUN [RUN ...]")
        runs = [store.resolve(ref) for ref in refs]
        from desktop_llm.store.diff import config_diff, diff_text

        if args.json:
            out({"runs": [r.id for r in runs],
                 "differences": [{"setting": k, "values": v} for k, v in config_diff([r.config for r in runs])]})
        else:
            print(diff_text(runs))
    elif action == "delete":
        store.delete(need(args.id))
        print(f"deleted {args.id}")
    elif action == "export":
        if args.dest and args.out and args.dest != args.out:
            raise CliError("Give the destination once: --out PATH.")
        from desktop_llm.store.sharing import export_zip

        dest = export_zip(store, need(args.id), args.out or args.dest)  # default: <workspace>/exports/
        out({"path": str(dest)}) if args.json else print(f"exported to {dest}")
    elif action == "import":
        if not args.id:
            raise CliError("Give the zip to import: desktop-llm runs import FILE.zip")
        from desktop_llm.store.sharing import import_run

        run = import_run(store, args.id)
        if args.json:
            out({"id": run.id, "folder": str(run.folder)})
        else:
            print(f"imported {args.id} as run {run.id} ({run.folder})")
    elif action == "rebuild":
        store.require_writable()  # the catalog is rewritten: a read-only workspace says so in one line
        n = store.rebuild()
        skipped = f"; {len(store.skipped)} other folders skipped (not runs, or damaged)" if store.skipped else ""
        print(f"catalog rebuilt from {n} run folders{skipped}")
    return 0



def cmd_doctor(args) -> int:
    from desktop_llm.about import doctor, format_doctor

    report = doctor(args.home, with_devices=not args.no_devices)
    out(report) if args.json else print(format_doctor(report))
    return 0


def add_doctor_parser(sub) -> None:
    dr = sub.add_parser("doctor", help="versions, devices, workspace and what is missing")
    dr.add_argument("--json", action="store_true", help="print one JSON object")
    dr.add_argument("--no-devices", action="store_true",
                    help="skip listing the devices (that imports TensorFlow: seconds)")
    dr.set_defaults(func=cmd_doctor)


def add_parser(sub) -> None:
    r = sub.add_parser("runs", help="list, show, diff (the settings that differ), delete, export, import runs; "
                                    "rebuild the catalog")
    r.add_argument("action", nargs="?", default="list",
                   choices=["list", "show", "diff", "delete", "export", "import", "rebuild"],
                   help="what to do (default %(default)s)")
    r.add_argument("id", nargs="?", help="run id (show: default the newest run; diff: two runs or more); "
                                         "for import, the zip")
    r.add_argument("dest", nargs="?", help=argparse.SUPPRESS)  # the older spelling of --out; diff: the second run
    r.add_argument("more", nargs="*", help=argparse.SUPPRESS)  # diff: the third run and on
    r.add_argument("--out", metavar="PATH",
                   help="export: zip file or folder to write (default: <workspace>/exports/)")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=cmd_runs)
