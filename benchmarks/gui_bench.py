"""The application's own figures: time until the window shows, event-loop latency while a run
trains, and the training speed from the GUI against the same run headless, back to back.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_bench.py [--steps 300]
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STARTUP = """
import time, sys
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_llm.gui.theme import apply_theme
apply_theme(app)
from desktop_llm.gui.main_window import MainWindow
from desktop_llm.store import RunStore
w = MainWindow(RunStore(sys.argv[1]))
w.show()
app.processEvents()
print(time.perf_counter() - t0, "tensorflow" in sys.modules)
"""


def window_startup(home: str, repeats: int = 3) -> dict:
    """Seconds from interpreter start (after Python itself) to a painted window, in fresh processes."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", STARTUP, home], capture_output=True, text=True, check=True)
        inner, tf_loaded = out.stdout.split()
        times.append({"process_s": time.perf_counter() - t0, "window_s": float(inner), "tf_loaded": tf_loaded == "True"})
    return {"window_s": statistics.median(t["window_s"] for t in times),
            "process_s": statistics.median(t["process_s"] for t in times),
            "tensorflow_imported_before_window": any(t["tf_loaded"] for t in times)}


def median_tokens_per_sec(metrics: list[dict]) -> float:
    steps = [m["tokens_per_sec"] for m in metrics if m.get("type") == "step"]
    return statistics.median(steps[len(steps) // 5:])  # after compilation and warm-up


def headless(cfg_path: Path, home: str) -> float:
    from desktop_llm.store import RunStore

    subprocess.run([sys.executable, "-m", "desktop_llm", "--home", home, "train", "--config", str(cfg_path)],
                   check=True, capture_output=True)
    return median_tokens_per_sec(RunStore(home).latest().metrics())


def in_gui(cfg, home: str) -> dict:
    """Start the run from the Train page and sample the event loop every 20 ms while it trains."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_llm.gui.main_window import MainWindow
    from desktop_llm.store import RunStore

    app = QApplication.instance() or QApplication([])
    store = RunStore(home)
    w = MainWindow(store, restore=False)
    w.show()
    run = store.create(cfg)
    late: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(20)

    def tick():
        late.append(max(0.0, clock.restart() - 20.0))

    timer.timeout.connect(tick)
    w.train_page.launch(run.id, fresh=True)
    clock.start()
    timer.start()
    while w.train_page.training:
        loop = QEventLoop()
        QTimer.singleShot(100, loop.quit)
        loop.exec()
    timer.stop()
    late.sort()
    return {"tokens_per_sec": median_tokens_per_sec(store.get(run.id).metrics()),
            "latency_p50_ms": late[len(late) // 2], "latency_p99_ms": late[int(len(late) * 0.99)],
            "latency_max_ms": late[-1], "samples": len(late)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from benchmarks.train_bench import run_config

    corpus = str(ROOT / "resources" / "corpora" / "tinyshakespeare.txt")
    cfg = run_config({"training": {"eval_interval": 100}}, args.steps, corpus)
    work = Path(tempfile.mkdtemp(prefix="gui_bench_"))
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))

    startup = window_startup(str(work / "startup"))
    head = headless(cfg_path, str(work / "headless"))
    gui = in_gui(cfg, str(work / "gui"))
    ratio = gui["tokens_per_sec"] / head
    lines = [f"window shown after {startup['window_s']:.2f} s (process {startup['process_s']:.2f} s; "
             f"TensorFlow imported before it: {startup['tensorflow_imported_before_window']})",
             f"training tokens/s: headless {head:,.0f} · from the GUI {gui['tokens_per_sec']:,.0f} · ratio {ratio:.2f}",
             f"event loop latency while training: p50 {gui['latency_p50_ms']:.1f} ms · p99 {gui['latency_p99_ms']:.1f} ms · "
             f"max {gui['latency_max_ms']:.0f} ms ({gui['samples']} samples)"]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gui-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"startup": startup, "headless_tokens_per_sec": head, "gui": gui, "ratio": ratio,
                                "steps": args.steps}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
