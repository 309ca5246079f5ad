"""Kill soak: SIGKILL the trainer again and again at random moments, resuming in between, and
count what a crash may never do: corrupt the run, lose more than one checkpoint interval, or
repeat a metrics line.

    .venv/bin/python benchmarks/kill_soak.py --kills 100      # about 20-30 min on 2 cores

Each cycle resumes the run in a fresh `desktop-llm train --resume RUN --json` process, waits for
a random number of its step events (0 to 6, so kills land during start-up, compilation, steps,
validation and checkpoint writes), sleeps 0-300 ms more, and SIGKILLs it. A final resume must
finish the run. Prints a JSON summary and writes it to benchmarks/results/soak-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from desktop_llm.core import atomic
    from desktop_llm.core.checkpoints import CheckpointManager
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig
    from desktop_llm.store import RunStore

    home = Path(tempfile.mkdtemp(prefix="desktop_llm-soak-"))
    corpus = home / "corpus.txt"
    corpus.write_text((ROOT / "resources" / "corpora" / "tinyshakespeare.txt").read_text("utf-8")[:200_000])
    interval = 20
    cfg = RunConfig(name="soak", data=DataConfig(paths=(str(corpus),)), tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                                      sequence_length=16),
                    training=TrainConfig(max_steps=10_000_000, batch_size=8, eval_interval=interval, eval_batches=2,
                                         log_interval=10, warmup_steps=5, sample_tokens=0))
    store = RunStore(home / "ws")
    run = store.create(cfg)
    env = dict(os.environ, DESKTOP_LLM_HOME=str(store.home), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    rng = random.Random(args.seed)
    stats = {"kills": 0, "corrupt": 0, "lost_beyond_interval": 0, "duplicate_metric_lines": 0,
             "torn_lines_before_last": 0, "max_lost_steps": 0, "resume_failures": 0, "checkpoint_notes": 0}
    reached = 0
    t0 = time.time()
    for i in range(args.kills):
        p = subprocess.Popen([sys.executable, "-m", "desktop_llm", "train", "--resume", run.id, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        wait_steps = rng.randint(0, 6)
        for line in p.stdout:
            e = json.loads(line) if line.startswith("{") else {}
            if e.get("type") == "resumed_from":
                lost = reached - e["step"]
                stats["max_lost_steps"] = max(stats["max_lost_steps"], lost)
                stats["lost_beyond_interval"] += lost > interval
            if e.get("type") == "failed":
                stats["resume_failures"] += 1
                break
            if e.get("type") == "step":
                reached = max(reached, e["step"])
                if wait_steps == 0:
                    break
                wait_steps -= 1
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(60)
        stats["kills"] += 1
        lines = run.metrics_path.read_bytes().splitlines() if run.metrics_path.exists() else []
        stats["torn_lines_before_last"] += sum(not ln.endswith(b"}") for ln in lines[:-1])
        steps = [m["step"] for m in atomic.read_jsonl(run.metrics_path) if m.get("type") == "step"]
        stats["duplicate_metric_lines"] += len(steps) - len(set(steps))
        manager = CheckpointManager(run.checkpoints_dir)
        if run.checkpoints_dir.exists() and (run.checkpoints_dir / "index.json").exists():
            found = manager.find("latest")
            stats["checkpoint_notes"] += len(manager.notes)
            stats["corrupt"] += found is None
        print(f"kill {i + 1}/{args.kills}: reached step {reached}", file=sys.stderr, flush=True)

    end = reached + 2 * interval
    run.save_config(replace(run.config, training=replace(run.config.training, max_steps=end - end % interval)))
    final = subprocess.run([sys.executable, "-m", "desktop_llm", "train", "--resume", run.id, "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
    events = [json.loads(ln) for ln in final.stdout.splitlines() if ln.startswith("{")]
    stats["final_completed"] = final.returncode == 0 and events[-1]["type"] == "completed"
    steps = [m["step"] for m in run.metrics() if m.get("type") == "step"]
    stats["final_history_clean"] = steps == list(range(10, steps[-1] + 1, 10)) if steps else False
    stats["checkpoint_interval"] = interval
    stats["minutes"] = round((time.time() - t0) / 60, 1)
    print(json.dumps(stats, indent=2))
    out = ROOT / "benchmarks" / "results" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(stats, indent=2))
    return 0 if (stats["corrupt"] == stats["lost_beyond_interval"] == stats["duplicate_metric_lines"] == 0
                 and stats["final_completed"] and stats["final_history_clean"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
