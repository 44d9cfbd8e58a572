"""Weights & Biases logging that never costs a run: offline by default, never the only copy.

The W&B run lives in `<run dir>/wandb/` and is uploaded later with `wandb sync` (the command is
logged at the end), so no account or network is needed. `metrics.jsonl` is written exactly as with
`logger=file`; if W&B cannot start, or fails mid-run, training goes on with the file alone and one
warning. Name, group, job type and tags default to the Hydra job's: a multirun's jobs share one
group named after the sweep directory, each job is named by the overrides the sweep varies.
`wandb` itself is imported only when a run starts, so `mode=disabled` and other loggers never load it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from cyclegan.errors import ConfigError
from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.loggers import FileLogger
from cyclegan.run_identity import hydra_identity

log = logging.getLogger(__name__)

MODES = ("offline", "online", "disabled")


def _summary_rule(key: str) -> str | None:
    """What W&B keeps in a metric's summary: the best value where "best" has a direction."""
    if key.startswith("eval/"):
        return "min,last" if lower_is_better(key) else "max,last"
    if key.startswith("time/"):
        return "mean"
    return None


class WandbLogger:
    """Logs to W&B (offline by default) and always to `metrics.jsonl` as well."""

    def __init__(
        self,
        run_dir: str | Path,
        config: dict[str, Any] | None = None,
        mode: str = "offline",
        project: str = "cyclegan",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        log_model: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"logger.mode={mode}: use offline, online or disabled")
        self.run_dir = Path(run_dir)
        self.files = FileLogger(run_dir)
        self.mode = mode
        self.log_model = log_model
        self._run: Any = None
        self._logged: set[str] = set()  # keys with a history; their summary is W&B's own
        if mode == "disabled":
            return
        identity = hydra_identity()
        try:
            self._run = self._start(
                config=config,
                project=project,
                entity=entity,
                name=(name or identity.name or self.run_dir.name)[:128],  # keep it readable
                group=group or identity.group,
                job_type=job_type or identity.job_type or "train",
                tags=[*(tags or []), *identity.tags],
                notes=notes,
            )
        except Exception as exc:  # no wandb, no network, bad key: the file still gets everything
            log.warning(
                "W&B could not start (%s: %s); logging to %s only",
                type(exc).__name__,
                exc,
                self.files.path,
            )

    def _start(self, **kwargs: Any) -> Any:
        import wandb

        return wandb.init(
            dir=str(self.run_dir),
            mode=self.mode,
            # A multirun's jobs share a process with the basic launcher: each gets its own run.
            reinit="finish_previous",
            **kwargs,
        )

    def _guard(self, what: str, call: Any) -> None:
        """Run one W&B call; on failure warn once and go on with the files alone."""
        if self._run is None:
            return
        try:
            call(self._run)
        except Exception as exc:
            log.warning(
                "W&B %s failed (%s: %s); continuing with %s only",
                what,
                type(exc).__name__,
                exc,
                self.files.path,
            )
            run, self._run = self._run, None
            with contextlib.suppress(Exception):  # already broken; the warning says what happened
                run.finish(exit_code=1)

    @property
    def active(self) -> bool:
        """Whether W&B is still receiving data (False when disabled or after a failure)."""
        return self._run is not None

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self.files.log_metrics(metrics, step, epoch)  # first, so a W&B failure loses nothing

        def send(run: Any) -> None:
            for key in metrics.keys() - self._logged:
                rule = _summary_rule(key)
                if rule is not None:
                    run.define_metric(key, summary=rule)
            self._logged.update(metrics)
            values = {k: v.item() if hasattr(v, "item") else v for k, v in metrics.items()}
            run.log({**values, "epoch": epoch}, step=step)

        self._guard("log", send)

    def log_image(self, key: str, path: Path, step: int) -> None:
        def send(run: Any) -> None:
            import wandb

            run.log({key: wandb.Image(str(path), caption=Path(path).stem)}, step=step)

        self._guard("image upload", send)

    def log_summary(self, summary: dict[str, Any]) -> None:
        # Keys with a history keep W&B's summary (last, and best via define_metric); the rest
        # (best/*, baseline/*, final/*, wall time) are added as they are.
        extra = {k: v for k, v in summary.items() if k not in self._logged}
        self._guard("summary", lambda run: run.summary.update(extra))

    def finish(self, status: str = "finished") -> None:
        """Close the W&B run (exit code 1 unless `status` is "finished") and the metrics file."""
        self.files.finish(status)
        if self._run is None:
            return
        sync_dir = getattr(self._run.settings, "sync_dir", self.run_dir / "wandb")
        if status == "finished" and self.log_model:
            self._guard("model upload", self._upload_checkpoint)
        if status == "preempted":  # shown as preempted, not crashed, in the W&B UI
            self._guard("preemption mark", lambda run: run.mark_preempting())
        self._guard("finish", lambda run: run.finish(exit_code=0 if status == "finished" else 1))
        closed, self._run = self._run is not None, None  # _guard drops the run when a call fails
        if closed and self.mode == "offline":
            log.info(
                "W&B run saved offline in %s; upload it with: wandb sync %s", sync_dir, sync_dir
            )

    def _upload_checkpoint(self, run: Any) -> None:
        import wandb

        checkpoint = self.run_dir / "checkpoints" / "last.pt"
        if not checkpoint.is_file():
            log.warning("logger.log_model: no %s to upload", checkpoint)
            return
        artifact = wandb.Artifact(f"{run.id}-model", type="model")
        artifact.add_file(str(checkpoint), name="last.pt")
        run.log_artifact(artifact)
