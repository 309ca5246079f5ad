"""What the probes cost (issue 28's budget: at most 5% of training time): the reference workload
(tiny Shakespeare, character level, 4 x 4 x 128, context 64, batch 12, validation every 250 steps)
trained with `desktop-llm train` with and without `--no-probes`, back to back, twice each,
alternating; plus the size of the probe records per evaluation.

    python benchmarks/probes_cost.py [--steps 1000]

Prints the medians and writes benchmarks/results/probes_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train(home: Path, steps: int, probes: bool) -> dict:
    args = [sys.executable, "-m", "desktop_llm", "--home", str(home), "train", "--preset", "small", "--steps",
            str(steps), "--eval-interval", "250", "--json", *([] if probes else ["--no-probes"])]
    p = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if p.returncode:
        sys.exit(p.stderr[-2000:])
    events = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    done = next(e for e in events if e["type"] == "completed")
    run = next(e for e in events if e["type"] == "start")["run"]
    records = home / "runs" / run / "probes" / "records.jsonl"
    lines = records.read_bytes().splitlines() if records.exists() else []
    probe_s = [json.loads(x).get("seconds", 0.0) for x in lines]
    return {"seconds": done.get("elapsed") or done.get("duration"), "record_bytes": max(map(len, lines), default=0),
            "probe_seconds": probe_s}


def cpu_name() -> str:
    try:
        return next(x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="probes_cost_"))
    rows: dict[str, list[dict]] = {"probes": [], "no probes": []}
    for _ in range(a.repeats):
        rows["no probes"].append(train(home, a.steps, False))
        rows["probes"].append(train(home, a.steps, True))
    on = statistics.median(r["seconds"] for r in rows["probes"])
    off = statistics.median(r["seconds"] for r in rows["no probes"])
    result = {"cpu": cpu_name(), "cores": os.cpu_count(), "steps": a.steps, "seconds_with_probes": on,
              "seconds_without": off, "overhead": on / off - 1, "record_bytes": rows["probes"][0]["record_bytes"],
              "runs": rows}
    # the probes' own time inside each run with them (the trainer records it): steadier than the
    # difference of two whole runs, which varied by up to 26% between identical runs on 2 cores
    shares = [sum(r["probe_seconds"]) / r["seconds"] for r in rows["probes"]]
    result["probe_share"] = statistics.median(shares)
    print(f"{a.steps} steps of the reference workload, median of {a.repeats}: {on:.1f} s with probes, {off:.1f} s "
          f"without: {100 * (on / off - 1):+.1f}%; the probes' own time: {100 * result['probe_share']:.1f}% of the run "
          f"(per evaluation: {', '.join(f'{x:.2f}' for x in rows['probes'][0]['probe_seconds'])} s); "
          f"one evaluation's record: {result['record_bytes']:,} bytes")
    out = ROOT / "benchmarks/results/probes_cost.json"
    out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
