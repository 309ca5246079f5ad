"""The teaching experiment of issue 28: does an induction head form, and does in-context learning
appear, in a 1-layer against a 2-layer GPT trained on the same corpus? (Olsson et al., "In-context
Learning and Induction Heads", 2022: induction heads need two layers, one to copy the previous
token and one to match it.)

Trains both through the command line (`desktop-llm train`, as a user would), then reads their
probes (core/heads.py): the best induction score of any head at each evaluation, and the
in-context learning score, the mean loss at the last fifth of the context minus the mean loss at
8-16% of it (negative: later tokens are predicted better, from what came earlier).

    python benchmarks/induction.py                 # 2,000 steps each (about 6 minutes on 2 cores)
    python benchmarks/induction.py --steps 6000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def icl_score(position_loss: list[float]) -> float:
    """Mean loss over the last fifth of the context minus the mean at 8-16% of it."""
    T = len(position_loss)
    late = np.mean(position_loss[int(T * 0.8):])
    early = np.mean(position_loss[int(T * 0.08): max(int(T * 0.16), int(T * 0.08) + 1)])
    return float(late - early)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--corpus", default=str(ROOT / "resources" / "corpora" / "tinyshakespeare.txt"))
    args = ap.parse_args()
    from desktop_llm.core import heads, probes
    from desktop_llm.store import RunStore

    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, DESKTOP_LLM_HOME=home, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        for layers in (1, 2):
            t0 = time.time()
            subprocess.run([sys.executable, "-m", "desktop_llm", "train", args.corpus, "--layers", str(layers),
                            "--heads", "4", "--width", "128", "--ffn", "512", "--context", "128",
                            "--steps", str(args.steps), "--eval-interval", str(max(1, args.steps // 10)),
                            "--name", f"layers-{layers}"], env=env, check=True, capture_output=True)
            run = RunStore(home).resolve(f"layers-{layers}")
            recs = probes.records(run)
            curve = heads.curves(recs)
            last = [r for r in recs if r.get("position_loss")][-1]["position_loss"]
            val = min(e["val_loss"] for e in run.metrics() if e.get("type") == "eval")
            rows.append({"layers": layers, "steps": args.steps, "best_val_loss": round(val, 4),
                         "max_induction": round(max(curve["induction"]), 3),
                         "induction_formed_at": heads.induction_formed(recs),
                         "icl_score": round(icl_score(last), 3), "seconds": round(time.time() - t0)})
            print(rows[-1], flush=True)
    print("| layers | steps | best val loss | best induction score | induction heads formed | in-context score |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layers']} | {r['steps']:,} | {r['best_val_loss']:.3f} | {r['max_induction']:.3f} | "
              f"{r['induction_formed_at'] or 'no'} | {r['icl_score']:+.3f} |")
    out = ROOT / "benchmarks" / "results" / f"induction-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
