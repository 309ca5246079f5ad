"""What every family panel of the Generate page shares: the run chosen above it, one status line,
and its model work, done by the model worker (core/worker_process.py) while a thread waits."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from desktop_llm.gui.widgets import label, set_role
from desktop_llm.gui.workers import in_worker


class FamilyPanel(QWidget):
    """A tab of the Generate page for runs of one or more families.

    Subclasses set TITLE (the tab's title) and RUNS (what to choose, for the "choose a run"
    message), build their widgets, and start work with `run_with_model(...)` or `call_worker(...)`.
    """

    TITLE = ""
    DESCRIPTION = ""  # the page's line under the title while this tab is open
    RUNS = "a run"

    def __init__(self, session, run_id_fn, intro: str, parent=None):
        super().__init__(parent)
        self.session = session
        self.run_id_fn = run_id_fn  # () -> (run id, which checkpoint) chosen on the page
        self.task = None
        self.status = label(intro, "hint")
        self._example = None  # the example text last put in the input (replaced only while unedited)

    def primary(self) -> None:
        """The panel's main action (its primary button: fill, classify, search, translate)."""
        raise NotImplementedError

    def secondary(self) -> None:
        """A second action shown with the first (a classifier's validation report); none by default."""

    # --- the example input: the chosen run's own kind of text, until the user types their own ----
    def example_box(self):
        """The input widget an example text goes into (a QLineEdit or QPlainTextEdit), or None."""
        return

    def example_from(self, sample: str) -> str:
        """The example made from a sample of the run's data (fill mask: with a [MASK] in it)."""
        return sample

    def adopt_example(self, sample: str | None) -> None:
        """Put the run's own kind of text in the input, unless the user has typed something there."""
        box = self.example_box()
        if box is None or not sample:
            return
        current = box.toPlainText() if hasattr(box, "toPlainText") else box.text()
        if self._example is None:
            self._example = current  # the built-in default counts as an example
        if current.strip() and current != self._example:
            return  # the user's own text stays
        self._example = self.example_from(sample)
        box.setPlainText(self._example) if hasattr(box, "setPlainText") else box.setText(self._example)

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

    def run_with_model(self, function: str, stage: str, on_done, on_error, on_emit=None, **kwargs) -> None:
        """`function(model, tokenizer, run, emit, **kwargs)` (in the family's folder) on the
        chosen run's model, in the model worker (core/worker_jobs.with_model)."""
        if chosen := self.chosen():
            self.call_worker("desktop_llm.core.worker_jobs:with_model", on_done, on_error, on_emit, run_id=chosen[0],
                             which=chosen[1], function=function, stage=stage, **kwargs)

    def call_worker(self, job: str, on_done, on_error, on_emit=None, **kwargs) -> None:
        """`job(**kwargs)` in the model worker (gui/workers.in_worker), its progress on the status line."""
        self.task = in_worker(self, self.session, job, self.say, on_done, on_error,
                              lambda _f, msg: msg and self.status.setText(msg), on_emit, **kwargs)
