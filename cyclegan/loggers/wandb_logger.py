"""Weights & Biases logging that never costs a run: offline by default, never the only copy.

The W&B run lives in `<run dir>/wandb/` and is uploaded later with `wandb sync` (the command is
logged at the end), so no account or network is needed. `metrics.jsonl` is written exactly as with
`logger=file`; if W&B cannot start, or fails mid-run, training goes on with the file alone and one
warning. Name, group, job type and tags default to the Hydra job's: a multirun's jobs share one
group named after the sweep directory, each job is named by the overrides the sweep varies.
`wandb` itself is imported only when a run starts, so `mode=disabled` and other loggers never load it.

One W&B run per training: the run id is kept in `<run dir>/wandb_run.json` with the last step sent
to W&B. A resumed training (resume=auto, a SLURM requeue, pre-emption) continues the same W&B run
(`resume="allow"`) and sends only steps after that last one: the steps it replays from its
checkpoint were already sent (and, resume being exact, with the same values), so the history holds
every step once. A fresh training in a directory that has the file starts a new W&B run.

"Sent" is not "kept": W&B's service writes an offline run to disk only when the run is closed (or a
32 KiB block fills), and it exits at once on SIGTERM, which SLURM sends to every process of a job on
pre-emption, requeue and cancel. The file therefore also says whether the attempt closed its run;
when an offline attempt did not, the next one sets its directory aside (`unclosed-offline-run-*`,
so `wandb sync` skips it) and sends that attempt's steps again from metrics.jsonl (scalars only: its
images stay in samples/).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import string
from pathlib import Path
from typing import Any

from cyclegan.config.run_identity import hydra_identity
from cyclegan.errors import ConfigError
from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.files import atomic_write
from cyclegan.loggers.basic import FileLogger

log = logging.getLogger(__name__)

MODES = ("offline", "online", "disabled")
# {"id": W&B run id, "last_step": the last step W&B was sent, "from_step": the last_step this attempt
# began after, "closed": whether it closed the run (W&B has every step sent), "dir": its W&B folder}
RUN_FILE = "wandb_run.json"


def new_run_id() -> str:
    """8 random lowercase letters and digits, W&B's own id format."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def read_run_file(run_dir: Path) -> dict[str, Any] | None:
    """The W&B run this directory logged to before, or None (none, or an unreadable file)."""
    try:
        data = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("id"), str) else None


def write_run_file(run_dir: Path, run_id: str, last_step: int, **attempt: Any) -> None:
    """Atomically (temporary file + rename): a kill mid-write keeps the previous file whole.
    `attempt`: from_step, closed and dir of the attempt writing it."""
    text = json.dumps({"id": run_id, "last_step": last_step, **attempt}) + "\n"
    # No fsync: written at every log call, and a lost update only re-sends a few steps.
    atomic_write(run_dir / RUN_FILE, lambda tmp: tmp.write_text(text), fsync=False)


def _row(line: str) -> dict[str, Any] | None:
    """One metrics.jsonl line, None for one a kill cut short (or without a step)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


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
        resume: bool = False,
    ) -> None:
        """`resume`: this training continues from a checkpoint (the builder says so), so the W&B
        run recorded in `wandb_run.json`, if any, continues too."""
        if mode not in MODES:
            raise ConfigError(f"logger.wandb.mode={mode}: use offline, online or disabled")
        self.run_dir = Path(run_dir)
        self.files = FileLogger(run_dir, resume=resume)
        self.mode = mode
        self.log_model = log_model
        self._run: Any = None
        self._logged: set[str] = set()  # keys with a history; their summary is W&B's own
        previous = read_run_file(self.run_dir) if resume else None
        # Steps up to here reached W&B before the resume; they are not sent again.
        self.resumed_step: int = int(previous.get("last_step", 0)) if previous else 0
        # An offline attempt that did not close its run kept only part of it (module docstring).
        unclosed = mode == "offline" and previous is not None and previous.get("closed") is False
        if unclosed:
            self.resumed_step = int(previous.get("from_step", 0))  # type: ignore[union-attr]
        self._last_step = self.resumed_step
        self._attempt: dict[str, Any] = {"from_step": self.resumed_step, "closed": False}
        if mode == "disabled":
            return
        identity = hydra_identity()
        self._open(
            previous,
            config=config,
            project=project,
            entity=entity,
            name=(name or identity.name or self.run_dir.name)[:128],  # keep it readable
            group=group or identity.group,
            job_type=job_type or identity.job_type or "train",
            tags=[*(tags or []), *identity.tags],
            notes=notes,
        )
        if unclosed and self._run is not None:
            self._resend_unclosed(previous)  # type: ignore[arg-type]

    def _open(self, previous: dict[str, Any] | None, **init: Any) -> None:
        """Start (or continue) the W&B run and record its id; on failure warn, files only."""
        try:
            self._run = self._start(run_id=previous["id"] if previous else None, **init)
        except Exception as exc:  # no wandb, no network, bad key: the file still gets everything
            log.warning(
                "W&B could not start (%s: %s); logging to %s only",
                type(exc).__name__,
                exc,
                self.files.path,
            )
            return
        if previous:
            log.info("W&B: continuing run %s after step %d", self._run.id, self.resumed_step)
        self._attempt["dir"] = str(getattr(self._run.settings, "sync_dir", "") or "")
        write_run_file(self.run_dir, self._run.id, self._last_step, **self._attempt)

    def _resend_unclosed(self, previous: dict[str, Any]) -> None:
        """Set the unclosed attempt's offline folder aside and send its steps again, from
        metrics.jsonl (each row as it was logged), so W&B holds every step once."""
        old = Path(previous.get("dir") or "")
        if old.name and old.is_dir() and str(old) != self._attempt["dir"]:
            try:
                old.rename(old.with_name(f"unclosed-{old.name}"))
            except OSError as exc:  # `wandb sync` would then upload its part of the steps twice
                log.warning(
                    "W&B: could not set %s aside (%s); leave it out of wandb sync", old, exc
                )
        last = self.resumed_step
        for row in map(_row, self.files.path.read_text().splitlines()):
            # Rows at or before the confirmed step, a line a kill cut short, and rows a crash
            # past a checkpoint made the loop log twice are not sent.
            if row is None or row["step"] <= self.resumed_step or row["step"] < last:
                continue
            last = row["step"]
            metrics = {k: v for k, v in row.items() if k not in ("step", "epoch")}
            self._send_metrics(metrics, row["step"], row["epoch"])
        log.warning(
            "W&B: the previous attempt did not close its run (its service was stopped, e.g. by "
            "SLURM's SIGTERM); set aside %s and sent steps %d-%d again from %s",
            old,
            self.resumed_step + 1,
            last,
            self.files.path,
        )
        self.resumed_step = self._last_step

    def _start(self, run_id: str | None, **kwargs: Any) -> Any:
        import wandb

        return wandb.init(
            dir=str(self.run_dir),
            mode=self.mode,
            id=run_id or new_run_id(),
            resume="allow",  # continue the run with this id if W&B has it, else start it
            # A multirun's jobs share a process with the basic launcher: each gets its own run.
            reinit="finish_previous",
            **kwargs,
        )

    def _sent_before(self, step: int) -> bool:
        """Whether `step` reached W&B before this process resumed the run."""
        return step <= self.resumed_step

    def _mark_sent(self, step: int) -> None:
        if step > self._last_step and self._run is not None:
            self._last_step = step
            write_run_file(self.run_dir, self._run.id, step, **self._attempt)

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
        if not self._sent_before(step):
            self._send_metrics(metrics, step, epoch)

    def _send_metrics(self, metrics: dict[str, Any], step: int, epoch: int) -> None:
        def send(run: Any) -> None:
            for key in metrics.keys() - self._logged:
                rule = _summary_rule(key)
                if rule is not None:
                    run.define_metric(key, summary=rule)
            self._logged.update(metrics)
            values = {k: v.item() if hasattr(v, "item") else v for k, v in metrics.items()}
            run.log({**values, "epoch": epoch}, step=step)
            self._mark_sent(step)

        self._guard("log", send)

    def log_image(self, key: str, path: Path, step: int) -> None:
        def send(run: Any) -> None:
            import wandb

            run.log({key: wandb.Image(str(path), caption=Path(path).stem)}, step=step)
            self._mark_sent(step)

        if not self._sent_before(step):
            self._guard("image upload", send)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        """A W&B Table at `step`, e.g. the fixed test images of an evaluation
        (`cyclegan.evaluation.contact.fixed_image_table`): (H, W, 3) uint8 arrays become images, the rest
        stays as it is. W&B only: the files get the images through contact/ and samples/."""

        def send(run: Any) -> None:
            import numpy as np
            import wandb

            def cell(value: Any) -> Any:
                is_image = isinstance(value, np.ndarray) and value.ndim == 3
                return wandb.Image(value) if is_image else value

            table = wandb.Table(columns=columns, data=[[cell(v) for v in row] for row in rows])
            run.log({key: table}, step=step)
            self._mark_sent(step)

        if not self._sent_before(step):
            self._guard("table", send)

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
        run_id = self._run.id if self._run is not None else None
        self._guard("finish", lambda run: run.finish(exit_code=0 if status == "finished" else 1))
        closed, self._run = self._run is not None, None  # _guard drops the run when a call fails
        if closed and run_id is not None:  # W&B wrote everything: a resume trusts last_step
            self._attempt["closed"] = True
            write_run_file(self.run_dir, run_id, self._last_step, **self._attempt)
        if closed and self.mode == "offline":
            log.info(
                "W&B run saved offline in %s; upload it with: wandb sync %s", sync_dir, sync_dir
            )

    def _upload_checkpoint(self, run: Any) -> None:
        import wandb

        checkpoint = self.run_dir / "checkpoints" / "last.pt"
        if not checkpoint.is_file():
            log.warning("logger.wandb.log_model: no %s to upload", checkpoint)
            return
        artifact = wandb.Artifact(f"{run.id}-model", type="model")
        artifact.add_file(str(checkpoint), name="last.pt")
        run.log_artifact(artifact)
