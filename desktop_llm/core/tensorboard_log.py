"""TensorBoard event files for each run, so `tensorboard --logdir <workspace>/runs` shows them all.

Why this exists: TensorBoard is the tool people already know for comparing training curves, and
it reads runs from anywhere (other projects, other machines, a colleague's exported run) beside
ours, with no GUI of this app needed. The trainer's callback hands every `step` and `eval` event it records to `TensorBoardLog.record`, so
the values in TensorBoard are exactly those in metrics.jsonl (stored as float32, as TensorBoard's
scalars are):

    loss/train             `loss` of each step event (mean over the fused steps)
    learning_rate          `lr`
    speed/tokens_per_sec   `tokens_per_sec`
    speed/ms_per_step      `ms_per_step`
    loss/val               `val_loss` of each eval event
    perplexity/val         `val_ppl`
    sample                 the eval event's `sample` (text; indented four spaces, a Markdown code
                           block, so TensorBoard shows its lines and spaces as generated)
    <name>/train, <name>/val   any other number a model family adds to the events (`accuracy`,
                           `val_accuracy`)

How, and why that way:

- The files go to `<run>/tensorboard/`, inside the run folder, so they travel with it (copies,
  `runs export`/`import`) and are deleted with it.
- Written as the Summary records that `tf.summary.scalar`/`tf.summary.text` write (a value's
  tensor and its plugin's metadata), without importing the `tensorboard` package, which
  TensorFlow 2.21 no longer installs. Training needs only TensorFlow; viewing needs TensorBoard.
- Only from the Keras callback, once per fused call (every `log_interval` steps) and once per
  evaluation: all of an event's values in one record, written by one eager op outside the
  compiled train function; nothing per step.
- Flushed at each evaluation, at the first write `FLUSH_SECONDS` after the last flush, and when
  closed. The trainer closes it when training ends (before the `completed`/`stopped` event), and
  `train_run` closes it if an error ended the run.
- Only the chief of a multi-machine run writes (the trainer creates no log on other workers).
- A TensorBoard file is a nicety: any error (disk full, no permission, `tensorboard` taken by a
  file) becomes one `warning` event, the writer is dropped and the run goes on without TensorBoard
  files from there; training never stops for it.
- Resuming appends: TensorFlow starts a new event file in the same folder and TensorBoard reads a
  folder's files in name (= start time) order. metrics.jsonl is cut back to the checkpoint a run
  resumes from, but event files cannot be: the steps between that checkpoint and the
  interruption are written again. TensorBoard shows the later values for a repeated step (its
  data server drops a series' points at steps >= a step that comes again), which is what
  metrics.jsonl says too; only the legacy Python loader (`--load_fast=false`) may show both.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

FOLDER = "tensorboard"
FLUSH_SECONDS = 5  # besides each evaluation and the end: a write flushes if the last flush is older

STEP_SCALARS = {"loss": "loss/train", "lr": "learning_rate", "tokens_per_sec": "speed/tokens_per_sec",
                "ms_per_step": "speed/ms_per_step"}
EVAL_SCALARS = {"val_loss": "loss/val", "val_ppl": "perplexity/val"}
SAMPLE_TAG = "sample"
NOT_CURVES = {"type", "step", "elapsed", "eta", "max_steps", "best_val_loss"}  # bookkeeping, not metrics


def scalars(event: dict) -> dict[str, float]:
    """{tag: value} of a `step` or `eval` event's numbers (see the module docstring)."""
    known = STEP_SCALARS if event.get("type") == "step" else EVAL_SCALARS
    out = {}
    for key, value in event.items():
        if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key in known:
            out[known[key]] = value
        elif event.get("type") == "step":
            out[f"{key}/train"] = value
        else:
            out[f"{key.removeprefix('val_')}/val"] = value
    return out


def as_markdown(sample: str) -> str:
    """The sample as a Markdown code block (TensorBoard's text plugin renders Markdown)."""
    return "\n".join("    " + line for line in sample.split("\n"))


class TensorBoardLog:
    """One run's TensorBoard writer. Its methods never raise (see the module docstring)."""

    def __init__(self, run_folder: str | Path, emit: Callable[[dict], None]):
        self.folder = Path(run_folder) / FOLDER
        self._emit = emit
        self._writer = None
        self._failed = False
        try:
            import tensorflow as tf

            self._tf = tf
            self._writer = tf.summary.create_file_writer(
                str(self.folder), max_queue=10_000, flush_millis=FLUSH_SECONDS * 1000)
        except Exception as e:  # noqa: BLE001 - TensorFlow reports file errors as several types
            self._fail(e)

    @property
    def active(self) -> bool:
        return self._writer is not None

    def record(self, event: dict) -> None:
        """Write a `step` or `eval` event's values (other events are ignored)."""
        kind = event.get("type")
        if self._writer is None or kind not in ("step", "eval"):
            return
        try:
            tf = self._tf
            step = int(event["step"])
            # One Summary holding all of the event's values, written by one op: what a
            # `tf.summary.write` per value writes, at a fifth of the cost (each eager op took
            # 0.5-1 ms between the fused calls, where the training loop waits for it).
            from tensorflow.core.framework import summary_pb2

            values = [summary_pb2.Summary.Value(tag=tag, metadata=_metadata("scalars"),
                                                tensor=tf.make_tensor_proto(np.float32(value)))
                      for tag, value in scalars(event).items()]
            if kind == "eval" and event.get("sample"):
                values.append(summary_pb2.Summary.Value(
                    tag=SAMPLE_TAG, metadata=_metadata("text"),
                    tensor=tf.make_tensor_proto(as_markdown(event["sample"]).encode("utf-8"))))
            with self._writer.as_default():
                tf.summary.experimental.write_raw_pb(
                    tf.constant(summary_pb2.Summary(value=values).SerializeToString()), step=step)
            if kind == "eval":
                self._writer.flush()
        except Exception as e:  # noqa: BLE001 - a full disk surfaces as several TensorFlow errors
            self._fail(e)

    def close(self) -> None:
        """Flush and close; safe to call more than once."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):  # already failing; the warning below says why
                writer.close()
        if not self._failed:
            self._failed = True
            from desktop_llm.core.events import Warning

            self._emit(Warning(message=f"Could not write the TensorBoard files in {self.folder} ({_reason(e)}); "
                               "this run goes on without them. Training and metrics.jsonl are not affected.").to_dict())


def _metadata(plugin: str):
    """SummaryMetadata naming the TensorBoard plugin that shows the value (version 0, empty
    content: what tensorboard.summary's scalar and text write)."""
    cached = _METADATA.get(plugin)
    if cached is None:
        from tensorflow.core.framework import summary_pb2

        cached = _METADATA[plugin] = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=b""))
    return cached


_METADATA: dict = {}


def _reason(e: BaseException) -> str:
    """A TensorFlow error's message without its op decorations: 'Not a directory', '...: File too
    large'."""
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = text.split(" [Op:")[0].strip()
    return (text.splitlines() or [type(e).__name__])[0][:200]


# --------------------------------------------------------------------------- one log per run folder
# The trainer opens a run's log in `_train` and closes it in `train_run` once training ended in
# any way (completed, stopped, failed, or an exception out of `model.fit`).

_open: dict[str, TensorBoardLog] = {}
_lock = threading.Lock()


def open_log(run_folder: str | Path, emit: Callable[[dict], None]) -> TensorBoardLog:
    log = TensorBoardLog(run_folder, emit)
    with _lock:
        previous = _open.pop(str(run_folder), None)
        _open[str(run_folder)] = log
    if previous is not None:
        previous.close()
    return log


def close_log(run_folder: str | Path) -> None:
    with _lock:
        log = _open.pop(str(run_folder), None)
    if log is not None:
        log.close()
