"""The trainer's child process as the GUI holds it: Stop's kill deadline belongs to the process
that was stopped, never to a run resumed after it."""

import sys

from desktop_llm.gui.training_process import TrainingProcess

# A trainer stuck in a long step: it reads "stop" and does not end.
STUCK = "import sys, time\nfor line in sys.stdin:\n    time.sleep(0.01)\ntime.sleep(600)\n"


def stuck_trainer(qtbot, tmp_path) -> TrainingProcess:
    tp = TrainingProcess(str(tmp_path), "run")
    tp.proc.setProgram(sys.executable)
    tp.proc.setArguments(["-c", STUCK])
    tp.start()
    qtbot.waitUntil(lambda: tp.proc.processId() != 0, timeout=10_000)
    return tp


def test_stop_kills_only_the_process_it_stopped(qtbot, tmp_path):
    old = stuck_trainer(qtbot, tmp_path)
    ended = []
    old.ended.connect(lambda code, msg: ended.append(code))
    old.stop(grace_ms=300)
    new = stuck_trainer(qtbot, tmp_path)  # the run resumed while the old one still checkpoints
    try:
        qtbot.waitUntil(lambda: not old.running, timeout=20_000)
        assert ended, "the stopped process ended (killed after its grace)"
        qtbot.wait(500)  # longer than the grace: a timer aimed at "the current process" has fired
        assert new.running
    finally:
        for tp in (old, new):
            tp.kill()
            tp.proc.waitForFinished(5000)


def test_stopping_an_ended_process_is_harmless(qtbot, tmp_path):
    tp = stuck_trainer(qtbot, tmp_path)
    tp.kill()
    qtbot.waitUntil(lambda: not tp.running, timeout=10_000)
    tp.stop(grace_ms=0)
    qtbot.wait(50)
    assert not tp.running
