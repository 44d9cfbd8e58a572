"""Where training scalars and images go: plain files in the run directory, or nowhere.

Every logger has the same five methods, so the trainer never knows which one it has; the W&B logger
(`cyclegan.loggers.wandb_logger`, the default option) plugs in at this seam. Loggers are built as
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


class FileLogger(NullLogger):
    """Appends one JSON object per call to `metrics.jsonl`: {"step", "epoch", <scalars>...}.

    The file is line-buffered and flushed per line, so a crashed run keeps everything it logged.
    """

    def __init__(
        self, run_dir: str | Path, config: dict[str, Any] | None = None, resume: bool = False
    ) -> None:
        super().__init__(run_dir, config, resume)
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", buffering=1)

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        row = {"step": step, "epoch": epoch, **{k: jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")

    def finish(self, status: str = "finished") -> None:
        if not self._file.closed:
            self._file.close()
