"""Where training scalars and images go: plain files in the run directory, or nowhere.

Every logger has the same five methods, so the trainer never knows which one it has; the W&B logger
(`cyclegan.loggers.wandb_logger`, the default option) and TensorBoard's
(`cyclegan.loggers.tensorboard_logger`) plug in at this seam, several at once through
`cyclegan.loggers.group`. Loggers are built as
`Logger(run_dir, config=<resolved config>, resume=<continuing from a checkpoint>)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from cyclegan.files import jsonable


class Logger(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None: ...
    def log_image(self, key: str, path: Path, step: int) -> None: ...
    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None: ...
    def log_summary(self, summary: dict[str, Any]) -> None: ...
    def finish(self, status: str = "finished") -> None: ...


class NullLogger:
    """Logs nothing (console output and run files are unaffected)."""

    def __init__(
        self,
        run_dir: str | Path | None = None,
        config: dict[str, Any] | None = None,
        resume: bool = False,
    ) -> None:
        # `config` (the resolved run config) is for loggers that store it, like W&B; the run
        # directory's .hydra/config.yaml already holds it for these two. `resume` matters to
        # loggers with a run of their own to continue (W&B); a file is simply appended to.
        self.run_dir = run_dir

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        pass

    def log_image(self, key: str, path: Path, step: int) -> None:
        pass

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        pass  # tables (the fixed test images at an evaluation) go to W&B only

    def log_summary(self, summary: dict[str, Any]) -> None:
        pass

    def finish(self, status: str = "finished") -> None:
        pass


def last_logged_step(path: Path) -> int:
    """The highest `step` in a metrics.jsonl (0 when there is none; a torn last line is skipped)."""
    last = 0
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                last = max(last, int(json.loads(line)["step"]))
            except (ValueError, KeyError, TypeError):
                continue
    return last


class FileLogger(NullLogger):
    """Appends one JSON object per call to `metrics.jsonl`: {"step", "epoch", <scalars>...}.

    The file is line-buffered and flushed per line, so a crashed run keeps everything it logged.
    A resumed training (`resume`) appends only steps after the file's last one: the steps it
    replays from its checkpoint are in the file already (with the same values: resume is exact),
    so every step is there once, as in W&B and TensorBoard.
    """

    def __init__(
        self, run_dir: str | Path, config: dict[str, Any] | None = None, resume: bool = False
    ) -> None:
        super().__init__(run_dir, config, resume)
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.resumed_step = last_logged_step(self.path) if resume else 0
        self._file: Any = self.path.open("a", buffering=1)

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        if self._file is None or step <= self.resumed_step:
            return
        row = {"step": step, "epoch": epoch, **{k: jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")

    def mute(self) -> None:
        """Write nothing more: another logger of the same group writes this file."""
        self.finish()
        self._file = None

    def finish(self, status: str = "finished") -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
