"""Render each family's Generate-page tabs (and its other attention kinds) to PNG, after a tiny real
run of every family on its bundled example data: `python -m desktop_llm.gui.family_screenshots
docs/families [--steps N]`. README's family pictures are made this way.

Generic over the registry: each family's example data and panels come from
its Family (`example_data`) and `gui/families/<family>.py` (TABS); each panel's main action is its `primary()`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from desktop_llm.gui.screenshots import idle, wait_until


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def tiny_config(family, data: Path, steps: int):
    from desktop_llm.core.config import DataConfig, ModelConfig, RunConfig, TokenizerConfig, TrainConfig

    cfg = RunConfig(name=f"{family.name}-example", family=family.name, data=DataConfig(paths=(str(data),)),
                    tokenizer=TokenizerConfig(kind="char"),
                    model=ModelConfig(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256,
                                      sequence_length=64, dropout=0.0),
                    training=TrainConfig(max_steps=steps, batch_size=16, eval_interval=max(10, steps // 2),
                                         eval_batches=2, log_interval=10, warmup_steps=min(20, steps // 5),
                                         learning_rate=2e-3, sample_tokens=0))
    return replace(cfg, training=cfg.training.fitted())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="out/families")
    ap.add_argument("--steps", type=int, default=200, help="training steps of each family's run")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from PySide6.QtWidgets import QApplication

    from desktop_llm.core.models import families, get_family
    from desktop_llm.core.training import train_run
    from desktop_llm.gui.families import family_ui
    from desktop_llm.gui.fonts import ensure_cjk_font
    from desktop_llm.gui.main_window import MainWindow
    from desktop_llm.gui.theme import apply_theme
    from desktop_llm.store import RunStore

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ensure_cjk_font()  # as the app does: the Chinese examples readable on any machine
    apply_theme(app)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="desktop_llm_family_shots_"))
    store = RunStore(home)
    runs = {}
    for family in families():
        if family.writes_text:  # the main screenshots show prompt and chat
            continue
        run = store.create(tiny_config(family, family.example_data(), args.steps))
        print(f"training {run.id}", flush=True)
        if train_run(run, store=store)["status"] != "completed":
            raise SystemExit(f"the {family.name} example run did not complete: see {run.folder}")
        runs[family.name] = run
    w = MainWindow(store, restore=False)
    w.resize(1280, 800)
    w.show()

    def grab(name: str) -> None:
        app.processEvents()
        time.sleep(0.05)
        app.processEvents()
        path = out / f"{name}.png"
        w.grab().save(str(path))
        print(path, flush=True)

    g = w.generate_page
    shot: set[type] = set()
    for name, run in runs.items():
        w.show_page("Generate")
        g.picker.runs.setCurrentIndex(g.picker.runs.findData(run.id))
        for cls in family_ui(name).TABS:
            if cls in shot:
                continue
            shot.add(cls)
            panel = g.panel(cls)
            g.tabs.setCurrentIndex(g.tabs.indexOf(panel))
            panel.primary()
            wait_until(lambda p=panel: idle(p), timeout=600)
            panel.secondary()  # a classifier's validation report, where a panel has a second action
            wait_until(lambda p=panel: idle(p), timeout=600)
            grab(slug(cls.TITLE))
        for kind in [k for k in get_family(name).attention_kinds if k != "self"][-1:]:  # the last: cross
            a = w.attention_page
            w.show_page("Attention")
            a.picker.runs.setCurrentIndex(a.picker.runs.findData(run.id))
            a.kind.setCurrentIndex(a.kind.findData(kind))
            a.compute()
            wait_until(lambda a=a: idle(a))
            grab(f"attention_{kind}")
    w.close()
    w.train_page.shutdown()
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
