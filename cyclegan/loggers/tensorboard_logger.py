"""TensorBoard logging (`logger=tensorboard`, or `logger=[wandb,tensorboard]`): event files in
`<run dir>/tensorboard/`, viewed with `tensorboard --logdir <run dir or sweep dir>`.

Logged: every scalar at its step (and `epoch`), sample grids as images, the fixed test images of
an evaluation (an image grid and a table of their per-image metrics, as text), the resolved config
and the run's provenance as text, and at the end the evaluation table beside its baselines plus
the config as hyper-parameters with the final metrics (TensorBoard's HParams tab). Like the W&B
logger it also writes `metrics.jsonl`, never the only copy, and a failing write warns once and
leaves the files going.

One run per training: a resumed training (`resume`) writes into the same folder and sends only the
steps after the last one its event files hold (read back from disk, so events a killed process
never flushed are logged again); the steps it replays from its checkpoint are there already, with
the same values. A fresh training in a directory that has event files moves them to
`tensorboard.earlier-N/`, a run of its own in TensorBoard, rather than mixing two trainings.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from cyclegan.errors import ConfigError
from cyclegan.evaluation.report import format_evaluation
from cyclegan.loggers.basic import FileLogger
from cyclegan.loggers.tables import (
    flat_hparams,
    image_grid,
    markdown_table,
    numeric_columns,
    yaml_text,
)

log = logging.getLogger(__name__)

LOG_DIR = "tensorboard"
INSTALL = "pip install -e '.[tensorboard]' (or pip install tensorboard)"


def event_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("events.out.tfevents.*"))


def last_event_step(log_dir: Path) -> int:
    """The highest step of any summary in `log_dir`'s event files (0 when there are none)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    last = 0
    for path in event_files(log_dir):
        with contextlib.suppress(Exception):  # a torn last record: what was read counts
            for event in EventFileLoader(str(path)).Load():
                if event.HasField("summary"):
                    last = max(last, int(event.step))
    return last


def set_aside(log_dir: Path) -> Path | None:
    """Move an earlier training's event files to `tensorboard.earlier-N/` (kept, not mixed)."""
    if not event_files(log_dir):
        return None
    n = 1
    while (target := log_dir.with_name(f"{log_dir.name}.earlier-{n}")).exists():
        n += 1
    log_dir.rename(target)
    return target


class TensorBoardLogger:
    """Logs to TensorBoard event files in `<run dir>/tensorboard/`, and to `metrics.jsonl`."""

    def __init__(
        self, run_dir: str | Path, config: dict[str, Any] | None = None, resume: bool = False
    ) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(f"logger=tensorboard needs TensorBoard ({exc}): {INSTALL}") from None
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / LOG_DIR
        self.files = FileLogger(run_dir, resume=resume)
        self.config = dict(config or {})
        if not resume and (moved := set_aside(self.log_dir)) is not None:
            log.info("TensorBoard: an earlier training's events moved to %s", moved)
        # Steps up to here are on disk from before the resume; they are not written again.
        self.resumed_step = last_event_step(self.log_dir) if resume else 0
        self._logged: set[str] = set()  # scalar tags written by this process
        self._images: set[tuple[str, int]] = set()
        self._last_step = self.resumed_step
        self._writer: Any = SummaryWriter(log_dir=str(self.log_dir))
        provenance = self.config.get("provenance")
        config = {k: v for k, v in self.config.items() if k != "provenance"}
        if not resume:
            self._guard("config", lambda w: w.add_text("config", yaml_text(config), 0))
        if provenance is not None:  # each process's own, at the step it continues from (which
            # moves no "last step on disk" forward: a later resume still skips exactly the logged)
            self._guard(
                "provenance",
                lambda w: w.add_text("provenance", yaml_text(provenance), self.resumed_step),
            )

    def _guard(self, what: str, call: Any) -> None:
        """One write; on failure warn once and go on with metrics.jsonl alone."""
        if self._writer is None:
            return
        try:
            call(self._writer)
        except Exception as exc:
            log.warning(
                "TensorBoard %s failed (%s: %s); continuing with %s only",
                what, type(exc).__name__, exc, self.files.path,
            )  # fmt: skip
            writer, self._writer = self._writer, None
            with contextlib.suppress(Exception):
                writer.close()

    @property
    def active(self) -> bool:
        """Whether event files are still being written (False after a failure)."""
        return self._writer is not None

    def _new(self, step: int) -> bool:
        return step > self.resumed_step

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self.files.log_metrics(metrics, step, epoch)  # first: a TensorBoard failure loses nothing
        if not self._new(step):
            return

        def write(w: Any) -> None:
            for key, value in {**metrics, "epoch": epoch}.items():
                w.add_scalar(key, float(value.item() if hasattr(value, "item") else value), step)
            w.flush()  # at log lines only: a killed process loses little, a resume re-sends it

        self._guard("scalars", write)
        self._logged.update(metrics)
        self._last_step = max(self._last_step, step)

    def log_image(self, key: str, path: Path, step: int) -> None:
        # The loop's last sample grid can fall on a sample_every step too: one image a step.
        if not self._new(step) or (key, step) in self._images:
            return
        self._images.add((key, step))

        def write(w: Any) -> None:
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
            w.add_image(key, array, step, dataformats="HWC")

        self._guard("image", write)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        """The fixed test images: their image columns as one grid (a row per image), the numbers
        as a Markdown table (TensorBoard's Text tab renders it)."""
        if not self._new(step):
            return
        grid, names = image_grid(columns, rows)
        header, body = numeric_columns(columns, rows)

        def write(w: Any) -> None:
            if grid is not None:
                w.add_image(key, grid, step, dataformats="HWC")
            caption = f"rows: the fixed test images; image columns: {', '.join(names)}\n\n"
            w.add_text(key, caption + markdown_table(header, body), step)

        self._guard("table", write)

    def log_summary(self, summary: dict[str, Any]) -> None:
        """The evaluation table (model beside its baselines) as text, and the config as
        hyper-parameters with the run's final numbers as its metrics."""
        from torch.utils.tensorboard.summary import hparams

        step = int(summary.get("step", self._last_step))
        if not self._new(step):  # resumed after it ended: the first process logged this
            return
        numbers = {
            k: float(v)
            for k, v in summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and "/" in k
        }
        table = format_evaluation(numbers, numbers)

        def write(w: Any) -> None:
            if table:
                w.add_text("evaluation", "    " + table.replace("\n", "\n    "), step)
            for key, value in numbers.items():
                if key not in self._logged:  # best/, baseline/, final/: not yet a scalar
                    w.add_scalar(key, value, step)
            params = flat_hparams(self.config)
            for summary_proto in hparams(params, numbers):
                w.file_writer.add_summary(summary_proto, step)
            w.flush()

        self._guard("summary", write)

    def finish(self, status: str = "finished") -> None:
        """Close the event files (flushing them) and metrics.jsonl; say how to look at them."""
        self.files.finish(status)
        if self._writer is None:
            return
        self._guard("close", lambda w: w.close())
        self._writer = None
        log.info("TensorBoard events in %s; view them with: tensorboard --logdir %s",
                 self.log_dir, self.log_dir)  # fmt: skip
