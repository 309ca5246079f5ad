"""The Learning page's budget (issue 28): a slider step redraws in under 300 ms, and the window never
blocks. On a run of the reference workload (trained here unless --home names a workspace with
one), offscreen: the time of each slider step of the head atlas and the embedding map (to the
end of the repaint), of reading the records again (what a live run's poll does every 3 s), and the event loop's
longest stall while the prompts' replay computes in the model worker's child process (twice: the
first starts the child, which loads Keras; the window's own process never does, and the result
says which backends it had loaded at the end).

    QT_QPA_PLATFORM=offscreen python benchmarks/learning_bench.py [--home WORKSPACE]

Prints the figures and writes benchmarks/results/learning_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(home: Path) -> None:
    corpus = ROOT / "resources" / "corpora" / "tinyshakespeare.txt"
    subprocess.run([sys.executable, "-m", "desktop_llm", "--home", str(home), "train", str(corpus), "--preset", "small",
                    "--steps", "2000", "--eval-interval", "200", "--name", "bench"], check=True,
                   capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", help="a workspace whose newest run has probes (default: train one, ~2 min)")
    a = ap.parse_args()
    home = Path(a.home) if a.home else Path(tempfile.mkdtemp(prefix="learning_bench_"))
    if not a.home:
        train(home)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from desktop_llm.gui.main_window import MainWindow
    from desktop_llm.store import RunStore

    w = MainWindow(RunStore(home), restore=False)
    w.resize(1280, 800)
    w.show()
    w.show_page("Learning")
    page = w.learning_page
    stalls: list[float] = []
    last = [time.perf_counter()]

    def tick():  # the event loop's gaps: a 5 ms timer that fires late by the stall
        now = time.perf_counter()
        stalls.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)

    def step_times(slider, tab) -> list[float]:
        page.tabs.setCurrentWidget(tab)
        app.processEvents()
        out = []
        for i in [*range(slider.maximum() + 1), *range(slider.maximum(), -1, -1)]:
            t = time.perf_counter()
            slider.setValue(i)
            tab.repaint()
            app.processEvents()
            out.append(time.perf_counter() - t)
        return out

    atlas = step_times(page.atlas.slider, page.atlas)
    page.tabs.setCurrentWidget(page.embeddings)
    t0 = time.perf_counter()
    while page.embeddings.space is None and time.perf_counter() - t0 < 300:  # mapped in the background
        app.processEvents()
    embeddings = step_times(page.embeddings.slider, page.embeddings)
    refresh = []
    for _ in range(5):
        t = time.perf_counter()
        page.refresh()
        app.processEvents()
        refresh.append(time.perf_counter() - t)
    page.tabs.setCurrentIndex(0)
    run_id = page.picker.run_id
    replays = []
    for prompts in (["ROMEO:", "The king"], ["First Citizen:", "O, "]):  # the first starts the model worker
        stalls.clear()
        last[0] = time.perf_counter()
        page.edit_prompts(prompts)
        t0 = time.perf_counter()
        while (run_id, tuple(prompts)) not in page.replayed and time.perf_counter() - t0 < 300:
            app.processEvents()
        replays.append((time.perf_counter() - t0, max(stalls, default=0.0)))
    page.edit_prompts([])
    run = w.session.store.get(run_id)
    from desktop_llm.core import probes

    result = {"run": run_id, "evaluations": len(probes.records(run)),
              "atlas_step_ms": {"median": 1e3 * statistics.median(atlas), "max": 1e3 * max(atlas)},
              "embedding_step_ms": {"median": 1e3 * statistics.median(embeddings), "max": 1e3 * max(embeddings)},
              "refresh_ms": {"median": 1e3 * statistics.median(refresh), "max": 1e3 * max(refresh)},
              "replay_s": [r[0] for r in replays], "longest_stall_while_replaying_ms": [1e3 * r[1] for r in replays],
              "backends_loaded_in_the_window": sorted(m for m in ("tensorflow", "keras", "jax", "torch")
                                                      if m in sys.modules)}
    print(json.dumps(result, indent=1))
    out = ROOT / "benchmarks/results/learning_bench.json"
    out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    w.close()


if __name__ == "__main__":
    main()
