"""TensorBoard logging, read back with TensorBoard's own reader (`EventAccumulator`), several
loggers at once (`logger=[wandb,tensorboard]`), and each step once across a resume in all of them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.config.renamed import renamed_key_message
from cyclegan.errors import ConfigError
from cyclegan.loggers.basic import FileLogger, NullLogger
from cyclegan.loggers.group import LoggerGroup, build_loggers
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.training.builder import train

from .conftest import ROOT, TINY
from .wandb_files import offline_runs, read_wandb_run

pytest.importorskip(
    "tensorboard", reason="TensorBoard is an extra: pip install -e '.[tensorboard]'"
)

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from cyclegan.loggers.tensorboard_logger import TensorBoardLogger


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def accumulator(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


def text(events: EventAccumulator, tag: str) -> list[tuple[int, str]]:
    return [
        (e.step, e.tensor_proto.string_val[0].decode())
        for e in events.Tensors(f"{tag}/text_summary")
    ]


def raw_steps(log_dir: Path, tag: str) -> list[int]:
    """Every step `tag` was written at, in every event file, as the files hold them (no purge,
    no de-duplication by a reader)."""
    steps = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_tensorboard_run_holds_scalars_images_tables_text_and_hparams(
    compose_cfg, tmp_path: Path
) -> None:
    train(compose_cfg(*TINY, "logger=tensorboard"))
    run = tmp_path / "run"
    events = accumulator(run / "tensorboard")

    # Every training scalar at its step, with metrics.jsonl's values (written beside it).
    rows = [r for r in _jsonl(run / "metrics.jsonl") if "train/loss_G" in r]
    for key in ("train/loss_G", "train/loss_cycle", "train/lr", "time/step_s"):
        logged = events.Scalars(key)
        assert [e.step for e in logged] == [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
        assert [e.value for e in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)
    summary = json.loads((run / "summary.json").read_text())
    [psnr] = events.Scalars("eval/psnr_AB")
    assert (psnr.step, psnr.value) == (6, pytest.approx(summary["eval/psnr_AB"], rel=1e-6))

    # Sample grids as images, once per step (the last one also falls on sample_every).
    assert [e.step for e in events.Images("samples")] == [2, 4, 6]
    last = events.Images("samples")[-1]
    assert (last.width, last.height) == (2 + 2 * 34, 2 + 4 * 34)
    # The fixed test images: one grid (a row per image; input, translation, reconstruction,
    # ground truth) and their per-image numbers as a Markdown table.
    [grid] = events.Images("fixed_images/AB")
    assert (grid.step, grid.width, grid.height) == (6, 2 + 4 * 34, 2 + 2 * 34)
    [(step, table)] = text(events, "fixed_images/AB")
    assert step == 6 and "| index | psnr_cycle | psnr | ssim |" in table
    assert table.count("\n| ") == 3  # header and two images

    # The config and provenance as text, the evaluation table beside its baselines.
    [(step, config)] = text(events, "config")
    assert step == 0 and "ngf: 8" in config and "lambda_cyc: 10.0" in config
    provenance = json.loads((run / "provenance.json").read_text())
    [(step, logged_provenance)] = text(events, "provenance")
    assert step == 0 and provenance["git"]["commit"] in logged_provenance
    [(step, evaluation)] = text(events, "evaluation")
    assert (
        step == 6
        and "mean image" in evaluation
        and f"{summary['eval/psnr_AB']:.2f} dB" in evaluation
    )

    # The HParams tab: the flattened config and provenance, the final numbers as its metrics.
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["model.ngf"].number_value == 8
    assert hparams["provenance.git.commit"].string_value == provenance["git"]["commit"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metrics = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {
        "eval/psnr_AB",
        "best/psnr_AB",
        "baseline/mean/psnr_AB",
        "final/train/loss_G",
    } <= metrics
    [best] = events.Scalars("best/psnr_AB")
    assert best.value == pytest.approx(summary["best/psnr_AB"], rel=1e-6)


def test_wandb_and_tensorboard_resumed_once_log_each_step_once(
    compose_cfg, tmp_path: Path, monkeypatch
) -> None:
    both = ["logger=[wandb,tensorboard]", "logger.wandb.mode=offline"]
    every_3 = ["trainer.checkpoint_unit=step", "trainer.checkpoint_every=3"]
    step = CycleGANMethod.training_step
    steps = iter(range(100))

    def crash_at_step_6(self: CycleGANMethod, *args: Any) -> Any:
        if next(steps) == 5:
            raise RuntimeError("killed")
        return step(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(CycleGANMethod, "training_step", crash_at_step_6)
        with pytest.raises(RuntimeError, match="killed"):
            train(compose_cfg(*TINY, *both, *every_3))
    run = tmp_path / "run"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3  # steps 4, 5 replay
    # Even a crashed run has its page, saying what there is.
    assert "not finished (no summary.json)" in (run / "report.html").read_text()
    train(compose_cfg(*TINY, *both, *every_3, "resume=auto"))
    assert "finished, 2 epochs, 6 steps" in (run / "report.html").read_text()

    # TensorBoard: one folder, two event files (one per process), each step once in the files.
    log_dir = run / "tensorboard"
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    assert raw_steps(log_dir, "train/loss_G") == [1, 2, 3, 4, 5, 6]
    assert raw_steps(log_dir, "samples") == [2, 4, 6]
    assert [e.step for e in accumulator(log_dir).Scalars("train/loss_G")] == [1, 2, 3, 4, 5, 6]
    # W&B: one run continued, steps 1-5 from the first process and 6 from the second.
    first, second = (read_wandb_run(p) for p in offline_runs(run))
    assert first.run["run_id"] == second.run["run_id"]
    sent = [h["_step"] for wb in (first, second) for h in wb.history if "train/loss_G" in h]
    assert sent == [1, 2, 3, 4, 5, 6]
    # metrics.jsonl: written once (by W&B's logger; TensorBoard's copy muted), each step once.
    rows = [r["step"] for r in _jsonl(run / "metrics.jsonl") if "train/loss_G" in r]
    assert rows == [1, 2, 3, 4, 5, 6]
    # The resumed process's provenance is the record; the first one's is kept.
    provenance = json.loads((run / "provenance.json").read_text())
    assert len(provenance["earlier"]) == 1 and "resume=auto" not in provenance["earlier"][0]["argv"]


def test_a_fresh_training_in_a_used_directory_moves_the_earlier_events_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = TensorBoardLogger(tmp_path)
    first.log_metrics({"train/loss_G": 1.0}, step=1, epoch=0)
    first.finish()
    second = TensorBoardLogger(tmp_path)  # resume=False: a new training
    second.log_metrics({"train/loss_G": 2.0}, step=1, epoch=0)
    second.finish()
    assert raw_steps(tmp_path / "tensorboard", "train/loss_G") == [1]
    assert raw_steps(tmp_path / "tensorboard.earlier-1", "train/loss_G") == [1]
    assert "earlier training's events moved to" in caplog.text
    # Resumed, it continues the same folder after its last step on disk.
    third = TensorBoardLogger(tmp_path, resume=True)
    assert third.resumed_step == 1
    third.log_metrics({"train/loss_G": 9.0}, step=1, epoch=0)  # a replayed step: not written
    third.log_metrics({"train/loss_G": 3.0}, step=2, epoch=0)
    third.finish()
    values = [e.value for e in accumulator(tmp_path / "tensorboard").Scalars("train/loss_G")]
    assert values == [2.0, 3.0]


def test_without_tensorboard_installed_the_error_names_the_extra(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(
        ConfigError, match=r"logger=tensorboard needs TensorBoard .*\[tensorboard\]"
    ):
        TensorBoardLogger(tmp_path)


def test_a_failing_event_writer_warns_once_and_the_file_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = TensorBoardLogger(tmp_path)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    logger._writer.add_scalar = full_disk
    for step in (1, 2, 3):
        logger.log_metrics({"train/loss_G": float(step)}, step=step, epoch=0)
    logger.log_summary({"step": 3, "eval/psnr_AB": 1.0})
    logger.finish()
    assert not logger.active
    assert caplog.text.count("TensorBoard scalars failed (OSError: No space left on device)") == 1
    assert [r["train/loss_G"] for r in _jsonl(tmp_path / "metrics.jsonl")] == [1.0, 2.0, 3.0]


class Recorder(NullLogger):
    """Remembers the calls it gets; a second member of a group."""

    def __init__(self, run_dir: Path | None = None, config: Any = None, resume: bool = False):
        super().__init__(run_dir)
        self.calls: list[str] = []

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        self.calls.append(f"metrics {step}")

    def log_image(self, key: str, path: Path, step: int) -> None:
        self.calls.append(f"image {key} {step}")

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
        self.calls.append(f"table {key} {step}")

    def log_summary(self, summary: dict[str, Any]) -> None:
        self.calls.append("summary")

    def finish(self, status: str = "finished") -> None:
        self.calls.append(f"finish {status}")
        raise RuntimeError("finish failed")


def test_a_group_reaches_every_member_and_writes_metrics_once(tmp_path: Path) -> None:
    recorder = Recorder()
    group = build_loggers(
        {
            "file": FileLogger,
            "tensorboard": TensorBoardLogger,  # keeps a metrics.jsonl too: muted in a group
            "recorder": lambda **kwargs: recorder,
        },
        tmp_path,
        {"seed": 0},
        resume=False,
    )
    assert isinstance(group, LoggerGroup) and len(group.loggers) == 3
    group.log_metrics({"train/loss_G": 1.0}, step=1, epoch=0)
    group.log_table("fixed_images/AB", ["index", "psnr"], [[0, 20.0]], step=1)
    group.log_summary({"step": 1})
    with pytest.raises(RuntimeError, match="finish failed"):  # the others were closed first
        group.finish("failed")
    assert recorder.calls == [
        "metrics 1",
        "table fixed_images/AB 1",
        "summary",
        "finish failed",
    ]
    assert [r["step"] for r in _jsonl(tmp_path / "metrics.jsonl")] == [1]
    assert raw_steps(tmp_path / "tensorboard", "train/loss_G") == [1]
    assert isinstance(build_loggers({}, tmp_path, {}, resume=False), NullLogger)


def test_old_logger_keys_are_refused_in_one_line_naming_the_new_ones(tmp_path: Path) -> None:
    assert renamed_key_message(["logger.wandb.mode=online", "seed=1"]) is None
    assert renamed_key_message(["+logger.log_model=true"]) == (
        "+logger.log_model=true: each logger has its own keys now (so that "
        "logger=[wandb,tensorboard] combines them); use logger.wandb.log_model=true"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "logger.mode=online"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: logger.mode=online: each logger has its own keys now (so that "
        "logger=[wandb,tensorboard] combines them); use logger.wandb.mode=online"
    ]
    assert not (tmp_path / "outputs").exists()  # refused before any work
