"""Render every page of the application to PNG, after a real (short) session on the sample corpus:
`python -m desktop_llm.gui.screenshots out/screenshots [--dark] [--steps N]`.

The pictures are how we review the look of the app; they are made by the same code paths a
user clicks through (corpus scan, tokenizer training, a run in the child trainer process).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def wait_until(predicate, timeout: float = 300.0) -> None:
    """Run the event loop until predicate() holds. A QEventLoop, not QTest.qWait: qWait keeps the
    GIL, which starves the worker threads (a 1 s qWait let a worker run once instead of ~8000 times)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for the application")
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()


def idle(page) -> bool:
    return page.task is not None and page.task.settled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="out/screenshots")
    ap.add_argument("--dark", action="store_true", help="render the dark theme")
    ap.add_argument("--steps", type=int, default=300, help="training steps of the sample run")
    ap.add_argument("--corpus", default=None, help="a text file (default: the bundled Shakespeare)")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from PySide6.QtWidgets import QApplication

    from desktop_llm.gui.fonts import ensure_cjk_font
    from desktop_llm.gui.main_window import MainWindow
    from desktop_llm.gui.theme import apply_theme
    from desktop_llm.resources import sample_corpus
    from desktop_llm.store import RunStore

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ensure_cjk_font()  # as the app does: the Chinese examples readable on any machine
    if args.dark:
        os.environ["DESKTOP_LLM_THEME"] = "dark"
    apply_theme(app)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="desktop_llm_shots_"))
    w = MainWindow(RunStore(home), restore=False)
    w.resize(1280, 820)
    w.show()
    suffix = "-dark" if args.dark else ""

    def shot(name: str) -> None:
        w.show_page(name)
        app.processEvents()
        time.sleep(0.05)
        app.processEvents()
        path = out / f"{name.lower()}{suffix}.png"
        w.grab().save(str(path))
        print(path)

    corpus = Path(args.corpus or sample_corpus("tinyshakespeare.txt"))
    w.data_page.add_paths([str(corpus)])
    wait_until(lambda: idle(w.data_page))
    shot("Data")
    w.tokenizer_page.train()
    wait_until(lambda: idle(w.tokenizer_page))
    shot("Tokenizer")
    shot("Model")
    t = w.train_page
    t.steps.setValue(args.steps)
    t.eval_every.setValue(max(10, args.steps // 6))
    t.warmup.setValue(min(50, args.steps // 5))
    t.name.setText(f"{corpus.stem}-small")  # the corpus it was trained on
    w.show_page("Train")
    t.start()
    wait_until(lambda: not t.training, timeout=1800)
    shot("Train")
    w.runs_page.select([t.run_id])
    shot("Runs")
    a = w.attention_page
    a.compute()
    wait_until(lambda: idle(a))
    a.layer.setValue(a.layer.maximum())
    shot("Attention")
    g = w.generate_page
    g.seed.setValue(1)
    g.generate()
    wait_until(lambda: idle(g))
    shot("Generate")
    e = w.evaluate_page
    e.evaluate()
    wait_until(lambda: idle(e))
    shot("Evaluate")
    w.close()
    w.train_page.shutdown()
    shutil.rmtree(home, ignore_errors=True)  # the sample run (tens of MB) is not kept in /tmp
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
