"""Several loggers as one: `logger=[wandb,tensorboard]`, or `logger=many`.

The `logger` config group follows lightning-hydra-template: each option puts its logger under its
own name (`logger.wandb`, `logger.tensorboard`, `logger.file`), so options combine as a list and
each keeps its keys (`logger.wandb.mode=online`). The builder instantiates each entry and
`build_loggers` makes one `Logger` of them; the loop never knows how many there are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cyclegan.loggers.basic import FileLogger, Logger, NullLogger

log = logging.getLogger(__name__)


def _metrics_file(logger: Any) -> FileLogger | None:
    """The FileLogger writing metrics.jsonl for `logger` (itself, or the one W&B/TB keep)."""
    if isinstance(logger, FileLogger):
        return logger
    files = getattr(logger, "files", None)
    return files if isinstance(files, FileLogger) else None


class LoggerGroup:
    """Every call goes to every member, in order; `finish` reaches each even if one fails.

    W&B and TensorBoard each keep `metrics.jsonl` so that they are never the only copy; in a group
    the first member that writes it keeps writing and the others are muted, so the file holds each
    row once.
    """

    def __init__(self, loggers: Iterable[Logger]) -> None:
        self.loggers = list(loggers)
        writers = [f for f in map(_metrics_file, self.loggers) if f is not None]
        for extra in writers[1:]:
            extra.mute()

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step, epoch)

    def log_image(self, key: str, path: Path, step: int) -> None:
        for logger in self.loggers:
            logger.log_image(key, path, step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        for logger in self.loggers:
            logger.log_table(key, columns, rows, step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_summary(summary)

    def finish(self, status: str = "finished") -> None:
        errors = []
        for logger in self.loggers:
            try:
                logger.finish(status)
            except Exception as exc:  # close the others first, then say what failed
                errors.append(exc)
        if errors:
            raise errors[0]


def build_loggers(
    makers: Mapping[str, Callable[..., Logger]],
    run_dir: Path,
    config: dict[str, Any],
    resume: bool,
) -> Logger:
    """One logger of the configured ones: `makers` maps each `logger.<name>` to its partially
    instantiated class; none gives a NullLogger, one gives itself, more a LoggerGroup."""
    loggers = [make(run_dir=run_dir, config=config, resume=resume) for make in makers.values()]
    if not loggers:
        return NullLogger(run_dir)
    return loggers[0] if len(loggers) == 1 else LoggerGroup(loggers)


def logger_nodes(node: Mapping[str, Any]) -> dict[str, Any]:
    """The `logger` config node as {name: its `_target_` node}. A node with a `_target_` of its
    own (a config written before loggers had names) is one logger, named `logger`."""
    if "_target_" in node:
        return {"logger": node}
    return {name: sub for name, sub in node.items() if sub is not None}
