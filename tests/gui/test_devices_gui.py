"""Issue 12 in the window: the Train page's device picker and replica split, the cluster dialog, the
Runs page following run folders written elsewhere, GPU memory hygiene and the memory warning.

No GPU is needed: the device probe's answer is handed to the pages as the window would get it
from `desktop-llm devices --json`, and `nvidia-smi` is a script on PATH where a test needs one."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from desktop_llm.core.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig, estimate, preset
from desktop_llm.core.distribute import parse_devices
from desktop_llm.store import RunStore

GIB = 2**30


def probe(*gpus) -> list[dict]:
    """A device list as `desktop-llm devices --json` gives it: these GPUs, then the CPU."""
    devs = [{"kind": "GPU", "name": name, "memory": mem, "memory_used": GIB // 2, "compute_capability": list(cc),
             "id": f"/physical_device:GPU:{i}"} for i, (name, mem, cc) in enumerate(gpus)]
    return devs + [{"kind": "CPU", "name": "x86_64", "cores": 2, "id": "/physical_device:CPU:0"}]


TWO_A100 = probe(("NVIDIA A100-SXM4-40GB", 40 * GIB, (8, 0)), ("NVIDIA A100-SXM4-40GB", 40 * GIB, (8, 0)))


@pytest.fixture()
def session(qtbot, home):
    from desktop_llm.gui.session import Session

    return Session(RunStore(home))


@pytest.fixture()
def train_page(qtbot, session, shakespeare_small):
    from desktop_llm.gui.pages.train_page import TrainPage

    page = TrainPage(session)
    qtbot.addWidget(page)
    session.set_corpus([str(shakespeare_small)], None, 0.1)
    yield page
    page.shutdown()


def stand_in_tokenizer(session, tmp_path):
    """A real char tokenizer, saved: Start needs one (the Tokenizer page makes it in the app)."""
    from desktop_llm.core.tokenizers import train_tokenizer
    from tests.conftest import SHAKESPEARE

    tok = train_tokenizer("char", [SHAKESPEARE.read_text("utf-8")[:50_000]])
    folder = tmp_path / "tok"
    tok.save(folder)
    session.set_tokenizer(tok, str(folder))
    return tok


def items(combo) -> list[tuple[str, str]]:
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


# ---------------------------------------------------------------------------- 1. device picker
def test_device_picker_lists_the_probed_gpus_and_the_trainer_reads_the_choice(train_page, session, tmp_path,
                                                                             monkeypatch):
    t = train_page
    assert items(t.devices) == [("Auto (all GPUs, else the CPU)", "auto"), ("CPU", "cpu"),
                                ("CPU split in 2 (test)", "cpu:2")]  # before the probe answers
    t.apply_settings({"devices": "1,"})  # remembered from last time; GPU 1 is not known yet
    assert t.device_spec() == "auto"
    session.set_devices(TWO_A100)  # the probe answers
    assert items(t.devices) == [("Auto (all GPUs)", "auto"), ("GPU 0 · NVIDIA A100-SXM4-40GB · 40 GB", "0,"),
                                ("GPU 1 · NVIDIA A100-SXM4-40GB · 40 GB", "1,"), ("CPU", "cpu"),
                                ("CPU split in 2 (test)", "cpu:2")]
    assert t.device_spec() == "1,"  # the remembered choice, once it exists
    assert "compute capability 8.0" in t.devices.itemData(2, Qt.ToolTipRole)
    assert t.run_config().training.devices == "1,"
    assert parse_devices("1,", 2) == ("gpu", [1])  # what the trainer makes of it: GPU 1 alone
    t.devices.setCurrentIndex(t.devices.findData("cpu:2"))
    assert t.run_config().training.devices == "cpu:2"
    assert t.settings()["devices"] == "cpu:2"
    assert session.train_config.devices == "cpu:2"

    # Start writes the run's config.json with the choice: the file is what the child trainer reads.
    stand_in_tokenizer(session, tmp_path)
    launched = []
    monkeypatch.setattr(t, "launch", lambda run_id, fresh: launched.append(run_id))
    t.start()
    assert len(launched) == 1, t.status.text()
    run = session.store.get(launched[0])
    assert RunConfig.load(run.config_path).training.devices == "cpu:2"
    assert json.loads(run.config_path.read_text("utf-8"))["training"]["devices"] == "cpu:2"


def test_replicas_and_per_replica_batch_follow_the_batch_and_devices(train_page, session, tmp_path):
    t = train_page
    session.set_devices(TWO_A100)
    assert t.split.text() == "2 replicas × 6 = 12"  # Auto: both GPUs, the default batch of 12
    t.batch.setValue(16)
    assert t.split.text() == "2 replicas × 8 = 16"
    t.devices.setCurrentIndex(t.devices.findData("0,"))
    assert t.split.text() == "1 replica × 16 = 16"
    t.devices.setCurrentIndex(t.devices.findData("cpu:2"))
    t.batch.setValue(7)
    assert t.split.text() == "7 does not split over 2 replicas: use 6 or 8"
    assert t.split.property("role") == "error"

    # Start is refused before anything is created, with the reason
    stand_in_tokenizer(session, tmp_path)
    assert t.start_btn.isEnabled()
    t.start_btn.click()
    assert "split evenly" in t.status.text() and "use 6 or 8" in t.status.text(), t.status.text()
    assert t.status.property("role") == "error"
    assert t.proc is None and session.store.list() == []
    t.batch.setValue(8)
    assert t.split.text() == "2 replicas × 4 = 8" and t.split.property("role") == "hint"


def test_the_model_split_reaches_the_run_and_is_refused_off_jax(train_page, session, tmp_path, monkeypatch):
    """The Train page's Model split is the CLI's --model-parallel: in the run's config, the batch
    split over the devices' groups, and the CLI's own one-line refusal on a backend that cannot shard."""
    t = train_page
    session.set_devices(TWO_A100)
    t.devices.setCurrentIndex(t.devices.findData("cpu:2"))
    t.batch.setValue(8)
    t.model_parallel.setValue(2)
    assert t.split.text() == "1 replica × 8 = 8"  # two devices, one group sharing each weight
    assert t.run_config().training.model_parallel == 2 and t.settings()["model_parallel"] == 2
    stand_in_tokenizer(session, tmp_path)
    t.backend.setCurrentIndex(t.backend.findData("tensorflow"))
    t.start()
    assert "shards the weights on the jax backend only" in t.status.text() and t.status.property("role") == "error"
    assert session.store.list() == []  # refused before a run exists
    if t.backend.model().item(t.backend.findData("jax")).isEnabled():
        launched = []
        monkeypatch.setattr(t, "launch", lambda run_id, fresh: launched.append(run_id))
        t.backend.setCurrentIndex(t.backend.findData("jax"))
        t.model_parallel.setValue(4)  # more than the two devices: the CLI's refusal, before a run exists
        t.start()
        assert "--model-parallel 4 shards each weight over the devices of one machine: --devices cpu:2 gives 2" \
            in t.status.text() and not launched and session.store.list() == []
        t.model_parallel.setValue(2)
        t.start()
        assert len(launched) == 1, t.status.text()
        assert session.store.get(launched[0]).config.training.model_parallel == 2


def test_the_trainers_start_event_shows_replicas_and_device(train_page):
    t = train_page
    t._on_event({"type": "start", "step": 0, "max_steps": 100, "device": "GPU: NVIDIA A100-SXM4-40GB, 2 replicas",
                 "policy": "mixed_bfloat16", "parameters": 1_234_567, "vocabulary_size": 65, "train_tokens": 180_000,
                 "val_tokens": 20_000, "steps_per_execution": 10, "replicas": 2, "per_replica_batch": 6,
                 "workers": 1, "worker_index": 0})
    text = t.status.text()
    assert text.startswith("Training on GPU: NVIDIA A100-SXM4-40GB, 2 replicas")
    assert "2 replicas × 6 = batch 12" in text and "1,234,567 parameters" in text
    t._on_event({"type": "start", "step": 0, "max_steps": 100, "device": "CPU (2 cores)", "policy": "float32",
                 "parameters": 10, "vocabulary_size": 65, "train_tokens": 1, "val_tokens": 1,
                 "steps_per_execution": 1, "replicas": 4, "per_replica_batch": 3, "workers": 2, "worker_index": 1})
    assert "4 replicas × 3 = batch 12" in t.status.text() and "worker 1 of 2" in t.status.text()


def test_a_run_started_on_the_split_cpu_trains_on_two_replicas(qtbot, train_page, session, tmp_path):
    """The real child trainer: the page's choice reaches it and its start event comes back."""
    t = train_page
    session.set_model_config(replace(preset("tiny"), num_layers=1, hidden_dim=32, intermediate_dim=64,
                                     sequence_length=32))
    stand_in_tokenizer(session, tmp_path)
    t.devices.setCurrentIndex(t.devices.findData("cpu:2"))
    t.steps.setValue(1_000)
    t.batch.setValue(4)
    t.start()
    assert t.training, t.status.text()
    try:
        qtbot.waitUntil(lambda: "2 replicas × 2 = batch 4" in t.status.text() or not t.training, timeout=240_000)
        assert "2 replicas × 2 = batch 4" in t.status.text(), (t.status.text(), t.proc.stderr_tail[-2000:])
        assert "CPU" in t.status.text()
        assert session.store.get(t.run_id).config.training.devices == "cpu:2"
    finally:
        t.proc.kill()
        qtbot.waitUntil(lambda: not t.training, timeout=30_000)


# ---------------------------------------------------------------------------- 2. cluster dialog
def test_cluster_dialog_writes_the_pages_config_and_each_workers_command(train_page, session, tmp_path,
                                                                        monkeypatch, home):
    from desktop_llm.gui import cluster_dialog

    t = train_page
    t.name.setText("shakes")
    t.batch.setValue(12)
    t.devices.setCurrentIndex(t.devices.findData("cpu"))
    d = t.open_cluster_dialog()
    assert d.isVisible()
    assert d.config_path == home / "cluster" / "shakes.json"  # the default
    assert len(d.machines) == 2  # the two example lines
    assert not d.copy_all_btn.isEnabled()  # nothing to copy before the file exists

    d.hosts.setPlainText("h1:2222\n\nh2.lab:2223  # the second\n[fe80::1]:2224\n")
    assert d.machines == ["h1:2222", "h2.lab:2223", "[fe80::1]:2224"]
    target = tmp_path / "my configs" / "cluster run.json"  # a space: the command must quote it
    asked = []
    monkeypatch.setattr(cluster_dialog.QFileDialog, "getSaveFileName",
                        lambda parent, title, start, filt: (asked.append(start), (str(target), filt))[1])
    d.save_btn.click()
    assert asked == [str(home / "cluster" / "shakes.json")]
    assert (home / "cluster").is_dir()  # the save dialog opens in the default folder

    # the file is the page's run configuration, and round-trips
    assert target.read_text("utf-8") == t.run_config().to_json() + "\n"
    loaded = RunConfig.load(target)
    assert loaded == t.run_config()
    assert loaded.training.devices == "cpu" and loaded.name == "shakes"

    quoted = "'" + str(target) + "'"
    expected = [f"desktop-llm train --config {quoted} --cluster h1:2222,h2.lab:2223,[fe80::1]:2224 --worker-index {i}"
                for i in range(3)]
    assert d.commands() == expected
    assert shlex.split(expected[1])[3] == str(target)
    assert [lab.text() for lab in d.command_labels] == expected  # what is shown is what is copied
    d.copy_all_btn.click()
    assert QGuiApplication.clipboard().text() == "\n".join(expected) + "\n"
    notes = d.notes.text()
    assert str(t.run_config().data.paths[0]) in notes and "same path" in notes and "Worker 0" in notes

    d.hosts.setPlainText("h1:2222\nh2\n")  # a line without a port
    assert d.machines == [] and d.commands() == []
    assert "Line 2 (h2) is not host:port" in d.hosts_error.text() and d.hosts_error.isVisibleTo(d)
    d.hosts.setPlainText("a:1\nb:2\nc:3\nd:4\ne:5\n")  # 12 does not split over 5 machines
    assert not d.save_btn.isEnabled() and "use 10 or 15" in d.config_note.text()


# ---------------------------------------------------------------------------- 3. runs page follows folders
def test_runs_page_shows_a_run_folder_that_appears_and_changes_on_disk(qtbot, session, tmp_path, home):
    from desktop_llm.gui.pages.runs_page import RunsPage

    page = RunsPage(session)
    qtbot.addWidget(page)
    page.show()  # (a closed window follows nothing)
    assert page.table.rowCount() == 0
    # a run written by another machine's trainer, in its own workspace
    remote = RunStore(tmp_path / "other-machine")
    cfg = RunConfig(name="remote run", data=DataConfig(paths=("x.txt",)), tokenizer=TokenizerConfig(kind="char"),
                    model=preset("tiny"), training=TrainConfig(max_steps=20))
    run = remote.create(cfg)
    run.metrics_path.write_text(json.dumps({"type": "step", "step": 10, "loss": 2.5, "lr": 1e-3, "tokens_per_sec": 900.0}) + "\n")
    run.write_status(status="stopped", step=10)

    shutil.copytree(run.folder, home / "runs" / run.id)  # synced in, behind the page's back

    def cells(r=0):
        return [page.table.item(r, c).text() for c in range(page.table.columnCount())]

    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=15_000)
    from desktop_llm.gui.pages.runs_page import COLUMNS

    step, best = COLUMNS.index("Step"), COLUMNS.index("Best val loss")
    assert cells()[:2] == ["remote run", "stopped"] and cells()[step] == "10 / 20"
    page.select([run.id])
    assert page.plots.point_count(run.id) == 1

    # the other machine goes on: more metrics, then it completes; the sync brings the files here
    synced = home / "runs" / run.id
    with open(synced / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"type": "step", "step": 20, "loss": 2.0, "lr": 1e-3, "tokens_per_sec": 950.0}) + "\n")
        f.write(json.dumps({"type": "eval", "step": 20, "val_loss": 1.5, "val_ppl": 4.48}) + "\n")
    st = json.loads((synced / "status.json").read_text())
    (synced / "status.json").write_text(json.dumps({**st, "status": "completed", "step": 20}))
    qtbot.waitUntil(lambda: cells()[1] == "completed", timeout=15_000)
    assert cells()[step] == "20 / 20" and cells()[best] == "1.5000"
    qtbot.waitUntil(lambda: page.plots.point_count(run.id) == 2, timeout=5_000)  # the curve it shows grew

    shutil.rmtree(synced)  # and a folder that goes away leaves the table
    qtbot.waitUntil(lambda: page.table.rowCount() == 0, timeout=15_000)


# ---------------------------------------------------------------------------- 4. GPU hygiene
def test_the_windows_tensorflow_lets_gpu_memory_grow_before_any_op():
    """The model worker (`desktop-llm worker`: the window's Generate, Attention, Evaluate...),
    before the first model it loads, and the WordPiece trainer (Tokenizer page), after importing
    TensorFlow, call gpu_memory_growth. This machine may have no GPU, so the call itself is what
    is checked (and, on a GPU, that growth is on)."""
    code = textwrap.dedent("""
        import json, sys
        from desktop_llm.core import device, worker_jobs
        from desktop_llm.store.runs import Run
        calls = []
        real = device.gpu_memory_growth
        def spy():
            calls.append("keras" in sys.modules)  # (Keras imports TensorFlow: nothing has run on it yet)
            real()
        device.gpu_memory_growth = spy
        before = "tensorflow" in sys.modules
        try:
            worker_jobs.for_inference(Run("/no/such/run"), "best")  # the worker's first model
        except Exception as e:  # no such run: what is checked is the call made before loading
            print("expected:", type(e).__name__, file=sys.stderr)
        first = list(calls)
        worker_jobs.ready()  # once per worker
        import tensorflow as tf
        growth = [tf.config.experimental.get_memory_growth(g) for g in tf.config.list_physical_devices("GPU")]
        from desktop_llm.core.tokenizers import WordPieceTokenizer
        WordPieceTokenizer.train(["a small text to count pieces in"], 40)
        print(json.dumps({"before": before, "worker": first, "all": calls, "growth": growth}))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "DESKTOP_LLM_XLA_CACHE": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] is False
    assert got["worker"] == [False]  # once, before Keras and its model are loaded
    assert len(got["all"]) == 2  # and again by the WordPiece trainer, not again by the worker
    assert all(got["growth"])


def test_status_bar_shows_gpu_memory_only_when_there_is_a_gpu(window, qtbot, tmp_path, monkeypatch):
    # the real probe first (a child process): on a machine without a GPU, nothing is shown
    qtbot.waitUntil(lambda: window.session.devices is not None, timeout=120_000)
    real_gpus = [d for d in window.session.devices if d["kind"] == "GPU"]
    if not real_gpus:
        assert window.gpu_label.isHidden() and not window._gpu_timer.isActive()
    assert window.session.devices[-1]["kind"] == "CPU"
    assert "Device:" in window.device_label.text()

    # a machine with a GPU: the probe's figure at once, then nvidia-smi's as it changes
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, NVIDIA A100-SXM4-40GB, 40960, 5120'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    one = probe(("NVIDIA A100-SXM4-40GB", 40 * GIB, (8, 0)))
    window.apply_device_probe(json.dumps({"devices": one, "summary": "GPU: NVIDIA A100-SXM4-40GB"}) + "\n")
    assert not window.gpu_label.isHidden()
    assert window.gpu_label.text() == "GPU 0.5 / 40.0 GiB"
    assert window.device_label.text() == "Device: GPU: NVIDIA A100-SXM4-40GB"
    assert window.train_page.devices.findData("0,") >= 0  # the picker got the list too
    qtbot.waitUntil(lambda: window.gpu_label.text() == "GPU 5.0 / 40.0 GiB", timeout=15_000)
    assert "NVIDIA A100-SXM4-40GB: 5.0 of 40.0 GiB" in window.gpu_label.toolTip()


def test_nvidia_smi_lines_are_read_and_matched_to_tensorflows_gpus(monkeypatch):
    from desktop_llm.core.device import match_rows, parse_nvidia_smi, visible_rows

    rows = parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 81559, 1024\n1, Tesla T4, [N/A], [N/A]\n"
                            "2, Tesla T4, 15360, 0\nNo devices were found\n")
    assert rows == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory": 81559 * 2**20, "memory_used": GIB},
                    {"index": 2, "name": "Tesla T4", "memory": 15360 * 2**20, "memory_used": 0}]
    assert [r["index"] for r in match_rows(["Tesla T4", "NVIDIA H100 80GB HBM3"], rows)] == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert [r["index"] for r in visible_rows(rows)] == [2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f3a")  # by UUID: no figures rather than wrong ones
    assert visible_rows(rows) == []


# ---------------------------------------------------------------------------- 5. memory warning
def test_model_page_warns_when_one_replica_does_not_fit_its_device(qtbot, session, train_page, monkeypatch):
    from desktop_llm.gui import device_choice
    from desktop_llm.gui.pages.model_page import ModelPage

    mp = ModelPage(session)
    qtbot.addWidget(mp)
    t = train_page
    t.batch.setValue(32)
    assert mp.batch.value() == 32  # the estimate is for the Train page's batch
    m = replace(session.model_config, vocabulary_size=max(1, session.model_config.vocabulary_size))

    # the formula: every replica holds the whole model (weights, gradients, 2 AdamW moments) and
    # its share of the activations; bfloat16 activations take half the bytes
    e16 = estimate(m, 16)
    fixed, acts16 = 4 * e16.weights_bytes, e16.training_bytes - 4 * e16.weights_bytes
    assert device_choice.memory_per_replica(m, 32, 2) == fixed + acts16
    assert device_choice.memory_per_replica(m, 32, 2, half=True) == fixed + acts16 // 2
    one_fp32 = device_choice.memory_per_replica(m, 32, 1)
    two_fp32 = device_choice.memory_per_replica(m, 32, 2)
    one_bf16 = device_choice.memory_per_replica(m, 32, 1, half=True)
    assert two_fp32 == one_bf16 < one_fp32  # half the batch, or half the bytes: the same activations

    # GPUs too small for the whole batch on one, big enough for half of it on each of two
    between = (two_fp32 + one_fp32) // 2
    session.set_devices(probe(("Old GPU", between, (7, 0)), ("Old GPU", between, (7, 0))))
    assert mp.memory_warning.isHidden() and t.memory_note.isHidden()  # Auto: 2 replicas, it fits
    assert "per replica on 2 replicas" in mp.figures["memory"].text()
    t.devices.setCurrentIndex(t.devices.findData("0,"))  # one GPU: the whole batch on it
    assert not mp.memory_warning.isHidden()
    warning = mp.memory_warning.text()
    assert warning.startswith("Training may run out of memory") and "Old GPU" in warning
    assert "float32 activations" in warning and "batch 32 per replica" in warning
    assert mp.memory_warning.property("role") == "warning"
    assert t.memory_note.text() == warning and not t.memory_note.isHidden()  # seen before Start too

    # a card of that size with bfloat16 (compute capability 8+): half the activations, it fits
    session.set_devices(probe(("New GPU", between, (8, 0))))
    assert t.device_spec() == "0,"
    assert mp.memory_warning.isHidden()

    # the CPU: this machine's memory (psutil), logical CPU replicas sharing it
    class VM:
        total = one_fp32 - 1

    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM())
    t.devices.setCurrentIndex(t.devices.findData("cpu"))
    assert "this machine's" in mp.memory_warning.text() and not mp.memory_warning.isHidden()
    t.batch.setValue(8)  # a smaller batch fits
    assert mp.memory_warning.isHidden() and t.memory_note.isHidden()
    t.batch.setValue(32)
    assert not t.memory_note.isHidden()
    assert t.start_btn.isEnabled()  # a warning, never a refusal


def test_auto_says_it_is_the_cpu_on_a_machine_without_a_gpu(train_page, session):
    """"Auto (all GPUs)" and "split over every GPU found" on a machine the probe found no GPU on."""
    session.set_devices([{"kind": "CPU", "name": "CPU (2 cores)"}])
    assert train_page.devices.itemText(0) == "Auto (the CPU: no GPU here)"
    assert "GPU" not in train_page.split.text()


def test_the_backend_picker_offers_what_is_installed_and_the_trainer_gets_the_choice(train_page, tmp_path,
                                                                                     monkeypatch):
    from desktop_llm.core import backend
    from desktop_llm.gui.pages.train_page import backend_picker
    from desktop_llm.gui.training_process import TrainingProcess

    box = train_page.backend
    assert [box.itemData(i) for i in range(box.count())] == ["auto", "tensorflow", "jax", "torch"]
    auto = backend.choose("auto")
    assert box.itemText(0).startswith("Auto: ") and auto.reason in box.itemData(0, Qt.ToolTipRole)
    for i in range(1, box.count()):
        installed = backend.installed(box.itemData(i))
        assert box.model().item(i).isEnabled() == installed
        if not installed:
            assert "pip install" in box.itemData(i, Qt.ToolTipRole)
    if auto.cpu and len(backend.available()) > 1:  # with the backends' timing on (the suite turns it off)
        monkeypatch.setenv("DESKTOP_LLM_SPEED_PROBE", "1")
        timed = backend_picker()
        assert timed.itemText(0) == "Auto: the fastest here"
        assert "Start times TensorFlow, JAX" in timed.itemData(0, Qt.ToolTipRole)
    train_page._on_event({"type": "start", "step": 0, "max_steps": 10, "device": "CPU (2 cores)", "policy": "float32",
                          "backend": "jax", "parameters": 10, "vocabulary_size": 65, "train_tokens": 1,
                          "val_tokens": 1, "steps_per_execution": 1, "replicas": 1, "per_replica_batch": 8})
    assert train_page.status.text().startswith("Training on CPU (2 cores) with JAX")
    proc = TrainingProcess(str(tmp_path), "some-run", backend="torch")
    args = proc.proc.arguments()
    assert args[args.index("--backend") + 1] == "torch" and args[args.index("--resume") + 1] == "some-run"


def test_the_window_s_model_work_computes_with_the_backend_picked_for_training(train_page):
    """The Train page's Backend is also the model worker's (Generate, Attention, Evaluate…): picked
    anew, the next model task starts a worker on it."""
    box = train_page.backend
    session = train_page.session
    assert session.worker().backend == "auto"
    box.setCurrentIndex(box.findData("torch"))
    worker = session.worker()
    assert worker.backend == "torch" and worker.command[-2:] == ["--backend", "torch"]
    box.setCurrentIndex(box.findData("auto"))
    assert session.worker() is not worker and session.worker().backend == "auto"
