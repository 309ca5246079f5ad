"""The whole point-and-click flow on real widgets: corpus, tokenizer, a tiny run trained in the
child process (stopped mid-way and resumed), then attention, generation and evaluation."""

import math
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from tests.gui.conftest import set_tiny_model, wait_task


class LoopLatency:
    """Event-loop latency: how late a 20 ms timer fires while the window is busy."""

    def __init__(self):
        self.samples: list[float] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)

    def start(self):
        self.clock.start()
        self.timer.start()

    def _tick(self):
        self.samples.append(max(0.0, self.clock.restart() - 20.0))

    def stop(self):
        self.timer.stop()

    def p99(self) -> float:
        return float(np.percentile(self.samples, 99))


def test_full_flow(window, qtbot, shakespeare_small):
    w = window
    # 1. Data: the corpus loads with its statistics
    w.data_page.add_paths([str(shakespeare_small)])
    wait_task(qtbot, w.data_page)
    assert w.data_page.stat_labels["characters"].text() == "200,000"
    assert w.data_page.table.model().index(0, 2).data() == "utf-8"
    assert w.session.paths == [str(shakespeare_small)]

    # 2. Tokenizer: a character tokenizer, and text split into tokens
    w.show_page("Tokenizer")
    tp = w.tokenizer_page
    tp.kind.setCurrentIndex(tp.kind.findData("char"))
    qtbot.mouseClick(tp.train_btn, Qt.LeftButton)
    wait_task(qtbot, tp)
    assert w.session.tokenizer is not None and w.session.tokenizer.vocabulary_size > 50
    assert tp.vocab_list.count() == w.session.tokenizer.vocabulary_size
    tp.input.setPlainText("hello")
    assert tp.ratio.text().startswith("5 tokens")

    # 3. Model: a tiny one; the estimates follow the form
    w.show_page("Model")
    set_tiny_model(w)
    assert w.model_page.validation.text() == ""
    params = w.model_page.figures["params"].text()
    w.model_page.heads.setValue(3)  # 32 is not divisible by 3
    assert "divisible" in w.model_page.validation.text()
    w.model_page.heads.setValue(2)
    assert w.model_page.figures["params"].text() == params
    assert w.session.model_config.hidden_dim == 32

    # 4. Train in the child process; stop mid-way. The run is set far longer than it can get
    # before Stop lands (on any machine); its end is set just before it is resumed (step 5).
    w.show_page("Train")
    t = w.train_page
    t.steps.setValue(1_000_000)
    t.batch.setValue(8)
    t.eval_every.setValue(20)
    t.warmup.setValue(10)
    latency = LoopLatency()
    latency.start()  # from Start to Stop: trainer start-up, compilation, steps, evaluations
    qtbot.mouseClick(t.start_btn, Qt.LeftButton)
    assert t.training and not t.start_btn.isEnabled()
    run_id = t.run_id
    qtbot.waitUntil(lambda: t.plots.point_count(run_id) >= 3, timeout=120_000)
    qtbot.waitUntil(lambda: len(t.plots.series[run_id].vsteps) >= 2, timeout=120_000)
    assert "step" in t.progress.format() and "ETA" in t.progress.format()
    assert "validation loss" in t.sample.toPlainText()
    # The plots redraw at most 10 times a second: the drawn curve follows the data within 0.1 s.
    qtbot.waitUntil(lambda: len(t.plots.series[run_id].items["loss"].getData()[0]) >= 3, timeout=5_000)
    curve = t.plots.series[run_id].items["loss"].getData()
    assert all(math.isfinite(v) for v in curve[1])
    qtbot.mouseClick(t.stop_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: not t.training, timeout=60_000)
    latency.stop()
    stopped = w.session.store.get(run_id).status()
    assert stopped["status"] == "stopped", stopped
    assert stopped["step"] >= 40
    # The UI kept answering while the trainer worked: its timer kept firing. How late it fired is
    # a speed figure (benchmarks/gui_bench.py), not something a test can assert on every machine.
    assert len(latency.samples) > 0

    end = stopped["step"] + 60
    run = w.session.store.get(run_id)
    run.save_config(replace(run.config, training=replace(run.config.training, max_steps=end)))

    # 5. Runs: the run is listed; resume it from there and let it finish
    w.show_page("Runs")
    rp = w.runs_page
    assert [r["id"] for r in rp.rows] == [run_id]
    assert rp.table.item(0, 1).text() == "stopped"
    rp.select([run_id])
    assert rp.resume_btn.isEnabled()
    assert rp.plots.point_count(run_id) > 0
    qtbot.mouseClick(rp.resume_btn, Qt.LeftButton)
    assert w.current_page == "Train" and t.training
    qtbot.waitUntil(lambda: not t.training, timeout=240_000)
    done = w.session.store.get(run_id).status()
    assert done["status"] == "completed", done
    steps = w.session.store.get(run_id).metrics()
    step_numbers = [m["step"] for m in steps if m.get("type") == "step"]
    assert step_numbers == sorted(set(step_numbers)) and step_numbers[-1] == end  # no duplicates
    assert rp.table.item(0, 1).text() == "completed"

    # 6. Attention for a sentence
    w.show_page("Attention")
    ap = w.attention_page
    assert ap.picker.run_id == run_id
    ap.text.setPlainText("To be, or not")
    qtbot.mouseClick(ap.go, Qt.LeftButton)
    wait_task(qtbot, ap)
    assert ap.maps is not None, ap.status.text()
    assert ap.single.weights.shape == (13, 13)
    np.testing.assert_allclose(ap.single.weights.sum(-1), 1.0, atol=1e-4)
    assert len([m for m in ap.grid_maps if not m.isHidden()]) == 2
    assert "attends to" in ap.single.describe(5, 2)

    # 7. Generate, streaming, with a fixed seed: the same text twice
    w.show_page("Generate")
    gp = w.generate_page
    gp.prompt.setPlainText("ROMEO:")
    gp.max_tokens.setValue(40)
    gp.seed.setValue(7)
    qtbot.mouseClick(gp.generate_btn, Qt.LeftButton)
    wait_task(qtbot, gp)
    first = gp.plain_output()
    assert first.startswith("ROMEO:") and len(first) > len("ROMEO:") + 10, gp.status.text()
    assert len(gp.output.tips) == 40 and gp.output.tips[0].startswith("token ")
    assert "tokens/s" in gp.status.text()
    qtbot.mouseClick(gp.generate_btn, Qt.LeftButton)
    wait_task(qtbot, gp)
    assert gp.plain_output() == first
    # the model's own next-token distribution after the prompt, best first
    qtbot.mouseClick(gp.next_btn, Qt.LeftButton)
    wait_task(qtbot, gp)
    probs = [p for _, p in gp.next_tokens]
    assert len(probs) == 10 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert "likeliest next tokens" in gp.status.text() and f"{probs[0]:.1%}" in gp.output.toPlainText()
    # chat keeps a history; a plain GPT chats in transcript mode, and says so
    gp.tabs.setCurrentIndex(1)
    assert gp.chat_view.placeholderText().startswith("Transcript mode") and not gp.system_input.isVisible()
    gp.chat_input.setText("Good morrow")
    qtbot.keyClick(gp.chat_input, Qt.Key_Return)
    wait_task(qtbot, gp)
    assert "Good morrow" in gp.chat_view.toPlainText()
    assert gp.chat is not None and len(gp.chat.history) == 2

    # the status bar learned the device from a child process (TensorFlow never loads in the UI)
    qtbot.waitUntil(lambda: "CPU" in w.device_label.text() or "GPU" in w.device_label.text(), timeout=60_000)

    # 8. Evaluate on the validation split
    w.show_page("Evaluate")
    ep = w.evaluate_page
    qtbot.mouseClick(ep.go, Qt.LeftButton)
    wait_task(qtbot, ep)
    assert ep.result is not None, ep.status.text()
    assert 1.0 < ep.result.perplexity < w.session.tokenizer.vocabulary_size
    # beside the baselines of the same split, and per byte (a character model: bytes per token of its text)
    said = ep.figures["baselines"].text()
    assert said.startswith("unigram loss") and "trigram" in said and "This model" in said
    assert float(ep.figures["bpb"].text()) > 0
    assert len(ep.view.tips) > 100 and "loss" in ep.view.tips[5]
    # the per-token view starts at a line of the validation split, not wherever the split was cut
    from desktop_llm.core.data import TokenData

    val = [int(i) for i in TokenData(w.session.store.get(ep.picker.run_id).data_dir).val]
    shown = [int(t.split()[1]) for t in ep.view.tips]
    at = next(i for i in range(len(val)) if val[i:i + len(shown)] == shown)
    assert at == 0 or w.session.tokenizer.token_text(val[at - 1]).endswith("\n"), at
    # hovering a token finds its tooltip
    ep.view.resize(600, 400)
    cursor = ep.view.cursorForPosition(ep.view.viewport().rect().center())
    assert ep.view.tip_at(ep.view.cursorRect(cursor).center()) .startswith("id ")


def test_a_killed_trainer_leaves_the_window_working(window, qtbot, shakespeare_small):
    import os
    import signal

    w = window
    w.data_page.add_paths([str(shakespeare_small)])
    wait_task(qtbot, w.data_page)
    w.tokenizer_page.train()
    wait_task(qtbot, w.tokenizer_page)
    set_tiny_model(w)
    t = w.train_page
    t.steps.setValue(1_000_000)  # it cannot finish before the kill, however fast the machine
    t.eval_every.setValue(20)
    t.batch.setValue(8)
    t.start()
    run_id = t.run_id
    qtbot.waitUntil(lambda: len(t.plots.series[run_id].vsteps) >= 1, timeout=120_000)
    os.kill(int(t.proc.proc.processId()), signal.SIGKILL)  # as the OOM killer would
    qtbot.waitUntil(lambda: not t.training, timeout=30_000)
    assert "ended unexpectedly" in t.status.text() and t.status.property("role") == "error"
    assert t.start_btn.isEnabled()
    assert w.session.store.get(run_id).status()["status"] == "interrupted"
    w.show_page("Runs")
    w.runs_page.select([run_id])
    assert w.runs_page.table.item(0, 1).text() == "interrupted"
    assert w.runs_page.resume_btn.isEnabled()


APP_SCRIPT = """
import sys
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_llm.core import atomic
from desktop_llm.gui.main_window import MainWindow
from desktop_llm.store import RunStore
from tests.gui.conftest import set_tiny_model

def wait(pred):
    while not pred():
        loop = QEventLoop(); QTimer.singleShot(50, loop.quit); loop.exec()

def last_step(run):
    return max([m["step"] for m in atomic.read_jsonl(run.metrics_path) if m["type"] == "step"], default=0)

store = RunStore(sys.argv[1])
w = MainWindow(store, restore=False)
w.show()
t = w.train_page
if len(sys.argv) > 3:  # resume the run from the Runs page, as a user would after a crash
    run = store.get(sys.argv[3])
    before = last_step(run)
    w.show_page("Runs")
    w.runs_page.select([run.id])
    w.runs_page.resume_btn.click()
    wait(lambda: last_step(run) > before)
else:
    w.data_page.add_paths([sys.argv[2]])
    wait(lambda: w.data_page.task is not None and not w.data_page.task.running)
    w.tokenizer_page.train()
    wait(lambda: w.session.tokenizer is not None)
    set_tiny_model(w)
    t.steps.setValue(1_000_000); t.eval_every.setValue(20); t.batch.setValue(8)
    t.start()
    wait(lambda: t.run_id in t.plots.series and len(t.plots.series[t.run_id].vsteps) >= 1)
print("RUN", t.run_id, flush=True)
wait(lambda: False)  # keep running until killed
"""


def test_killing_the_whole_application_again_and_again_loses_nothing(tmp_path, shakespeare_small):
    """SIGKILL the app twice at random moments, resuming from the Runs page in between:
    each time its trainer sees its control pipe close, checkpoints and stops; the run is listed
    as stopped, its history has no torn or repeated lines, and each resume goes further."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from desktop_llm.core import atomic
    from desktop_llm.store import RunStore

    home = tmp_path / "ws"
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(root))
    rng = random.Random(5)

    def alive(pid):
        try:
            os.kill(pid, 0)
            return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"
        except (ProcessLookupError, FileNotFoundError):
            return False

    run_id, reached = None, 0
    for attempt in range(2):
        args = [str(home), str(shakespeare_small)] + ([run_id] if run_id else [])
        app = subprocess.Popen([sys.executable, "-c", APP_SCRIPT, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env, cwd=root)
        started = next((line.split()[1] for line in app.stdout if line.startswith("RUN ")), None)
        assert started, f"attempt {attempt}: the application did not start or resume a run"
        run_id = run_id or started
        assert started == run_id
        run = RunStore(home).get(run_id)
        trainer_pid = run.status()["pid"]
        time.sleep(rng.uniform(0.0, 1.5))
        app.send_signal(signal.SIGKILL)
        app.wait(30)
        deadline = time.time() + 180
        while time.time() < deadline and (run.status()["status"] in ("running", "starting", "paused")
                                          or alive(trainer_pid)):
            time.sleep(0.5)
        assert not alive(trainer_pid)  # the trainer is gone too: nothing trains unseen
        st = run.status()
        assert st["status"] == "stopped", (attempt, st)
        assert reached < st["step"] < 1_000_000, (attempt, reached, st)  # each resume went further
        reached = st["step"]
        assert json_latest(run) == f"step-{st['step']:07d}"  # it checkpointed where it stopped
        lines = run.metrics_path.read_bytes().splitlines()
        assert all(line.endswith(b"}") for line in lines), "a torn metrics line"
        steps = [m["step"] for m in atomic.read_jsonl(run.metrics_path) if m["type"] == "step"]
        assert steps == sorted(set(steps)), "repeated or out-of-order step lines"
    assert RunStore(home).list()[0]["status"] == "stopped"


def json_latest(run) -> str:
    import json

    return json.loads((run.checkpoints_dir / "index.json").read_text())["latest"]
