"""What every family panel of the Generate page shares: the run chosen above it, one status line,
and a model task that runs on the model thread (with "loading TensorFlow…" said while it waits)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from desktop_llm.gui.widgets import label, set_role
from desktop_llm.gui.workers import model_pool_telling, run_task


class FamilyPanel(QWidget):
    """A tab of the Generate page for runs of one or more families.

    Subclasses set TITLE (the tab's title) and RUNS (what to choose, for the "choose a run"
    message), build their widgets, and start work with `start(work, on_done, on_error)`.
    """

    TITLE = ""
    RUNS = "a run"

    def __init__(self, session, run_id_fn, intro: str, parent=None):
        super().__init__(parent)
        self.session = session
        self.run_id_fn = run_id_fn  # () -> (run id, which checkpoint) chosen on the page
        self.task = None
        self.status = label(intro, "hint")

    def primary(self) -> None:
        """The panel's main action (its primary button: fill, classify, search, translate)."""
        raise NotImplementedError

    def say(self, text: str, role: str = "hint") -> None:
        set_role(self.status, role)
        self.status.setText(text)

    def chosen(self) -> tuple[str, str] | None:
        """(run id, checkpoint) chosen on the page, or None (and the status line says what to do)."""
        run_id, which = self.run_id_fn()
        if not run_id:
            self.say(f"Choose {self.RUNS} above.", "error")
            return None
        return run_id, which

    def start(self, work, on_done, on_error, on_emit=None) -> None:
        """Run `work(report, cancelled, emit)` on the model thread; its progress messages go to the
        status line."""
        self.say(self.status.text())
        pool = model_pool_telling(lambda msg: (self.status.setText(msg), self.status.repaint()))
        self.task = run_task(self, work, on_done, on_error, on_emit=on_emit, pool=pool,
                             on_progress=lambda _f, msg: msg and self.status.setText(msg))
