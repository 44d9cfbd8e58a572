"""W&B logging: a real offline run read back with W&B's own tooling; crashes, fallbacks, imports."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict
from PIL import Image

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.config.run_identity import RunIdentity, hydra_identity, sweep_group
from cyclegan.config.schema import ConfigError, register_configs
from cyclegan.evaluation.contact import fixed_image_table
from cyclegan.loggers.wandb_logger import WandbLogger
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.training.builder import train

from .conftest import CONF, ROOT, TINY
from .wandb_files import WandbRun, offline_runs, read_wandb_run


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_offline_run_holds_config_scalars_images_and_summary(
    compose_cfg, tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # artifact staging
    result = train(compose_cfg(*TINY, "logger.wandb.mode=offline", "logger.wandb.log_model=true"))
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    [path] = offline_runs(run_dir)  # inside the run directory, one W&B run
    wb = read_wandb_run(path)

    # The resolved config: values, not interpolations; with the run's provenance.
    assert wb.config["model"]["ngf"] == 8 and wb.config["loss"]["lambda_cyc"] == 10.0
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert wb.config["provenance"]["git"] == provenance["git"]
    assert wb.config["provenance"]["torch"] == torch.__version__
    assert wb.config["dataset"]["root"] == str(tmp_path / "data" / "synthetic-32px-seed0")
    assert wb.run["display_name"] == "run" and wb.run["job_type"] == "train"

    # Every training scalar, with the values metrics.jsonl has (the file logger still runs).
    rows = [r for r in _jsonl(run_dir / "metrics.jsonl") if "train/loss_G" in r]
    logged = [h for h in wb.history if "train/loss_G" in h]
    assert [h["_step"] for h in logged] == [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in ("train/loss_G", "train/loss_cycle", "train/loss_D_A", "train/lr", "time/step_s"):
        assert [h[key] for h in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)
    assert {"train/loss_GAN", "train/loss_identity", "time/data_s", "epoch"} <= set(logged[0])

    # Sample grids as images, stored in the run's media files.
    images = [h for h in wb.history if h.get("samples._type") == "image-file"]
    assert [h["_step"] for h in images] == [2, 4, 6]
    with Image.open(path / "files" / images[-1]["samples.path"]) as grid:
        assert grid.size == (2 + 2 * 34, 2 + 4 * 34)

    # The fixed test images as tables at the evaluation (the end): per image input, translation,
    # reconstruction, ground truth and its PSNR/SSIM, in both directions.
    tables = [h for h in wb.history if h.get("fixed_images/AB._type") == "table-file"]
    assert [h["_step"] for h in tables] == [6]
    assert (tables[0]["fixed_images/AB.nrows"], tables[0]["fixed_images/AB.ncols"]) == (2, 8)
    assert tables[0]["fixed_images/BA._type"] == "table-file"

    # Evaluation metrics with their best value, and the rest of summary.json as the summary.
    s = wb.summary["summary"]
    assert (
        s["eval/psnr_AB"]["max"] == pytest.approx(summary["eval/psnr_AB"]) == pytest.approx(result)
    )
    assert s["baseline/mean/ssim_BA"] == pytest.approx(summary["baseline/mean/ssim_BA"])
    assert s["final/train/loss_G"] == pytest.approx(summary["final/train/loss_G"])
    assert s["eval/weights"] == summary["eval/weights"] == "raw"  # which generators were scored
    assert wb.summary["state"] == "finished" and wb.summary["exit_code"] == 0

    # The final checkpoint as a model artifact, and the upload command in the log.
    [artifact] = [
        r["artifact"]
        for r in wb.records
        if r["type"] == "artifact" and r["artifact"]["type"] == "model"
    ]
    [entry] = artifact["manifest"]["contents"]
    assert artifact["type"] == "model" and entry["path"] == "last.pt"
    assert int(entry["size"]) == (run_dir / "checkpoints" / "last.pt").stat().st_size
    assert f"wandb sync {path}" in caplog.text


def test_crashed_run_is_marked_failed(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    step = CycleGANMethod.training_step
    steps = iter(range(100))

    def crash_at_step_4(self: CycleGANMethod, *args: Any) -> Any:
        if next(steps) == 3:
            raise RuntimeError("boom")
        return step(self, *args)

    monkeypatch.setattr(CycleGANMethod, "training_step", crash_at_step_4)
    with pytest.raises(RuntimeError, match="boom"):
        train(compose_cfg(*TINY, "logger.wandb.mode=offline"))
    [path] = offline_runs(tmp_path / "run")
    wb = read_wandb_run(path)
    assert wb.summary["state"] == "failed" and wb.summary["exit_code"] == 1
    assert [h["_step"] for h in wb.history if "train/loss_G" in h] == [1, 2, 3]


def test_wandb_that_cannot_start_falls_back_to_files(
    compose_cfg, tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    import wandb

    def no_network(**kwargs: Any) -> None:
        raise ConnectionError("api.wandb.ai unreachable")

    monkeypatch.setattr(wandb, "init", no_network)
    result = train(compose_cfg(*TINY, "logger.wandb.mode=online"))
    run_dir = tmp_path / "run"
    assert "W&B could not start (ConnectionError: api.wandb.ai unreachable)" in caplog.text
    assert result == json.loads((run_dir / "summary.json").read_text())["eval/psnr_AB"]
    steps = [r["step"] for r in _jsonl(run_dir / "metrics.jsonl") if "train/loss_G" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


class _FlakyRun:
    """Stands in for a W&B run whose connection drops at the second log call."""

    def __init__(self) -> None:
        self.logged: list[dict[str, Any]] = []
        self.exit_code: int | None = None
        self.settings = SimpleNamespace(sync_dir="unused")
        self.id = "flaky01"

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, data: dict[str, Any], step: int) -> None:
        if self.logged:
            raise ConnectionError("connection reset")
        self.logged.append(data)

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


def test_wandb_failing_mid_run_keeps_every_row_in_the_file(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    import wandb

    run = _FlakyRun()
    monkeypatch.setattr(wandb, "init", lambda **kwargs: run)
    logger = WandbLogger(tmp_path, mode="offline")
    for step in (1, 2, 3):
        logger.log_metrics({"train/loss_G": float(step)}, step=step, epoch=0)
    logger.log_summary({"best/psnr_AB": 1.0})
    logger.finish("finished")

    assert run.logged == [{"train/loss_G": 1.0, "epoch": 0}]
    assert run.exit_code == 1  # closed as failed when it broke, not later as finished
    assert not logger.active
    assert caplog.text.count("W&B log failed (ConnectionError: connection reset)") == 1
    assert [r["train/loss_G"] for r in _jsonl(tmp_path / "metrics.jsonl")] == [1.0, 2.0, 3.0]


def test_disabled_mode_never_imports_wandb(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import cyclegan.training.builder\n"
        "from cyclegan.loggers.wandb_logger import WandbLogger\n"
        "logger = WandbLogger(sys.argv[1], mode='disabled')\n"
        "logger.log_metrics({'train/loss_G': 1.0}, step=1, epoch=0)\n"
        "logger.finish()\n"
        "print('wandb' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    assert (tmp_path / "metrics.jsonl").read_text().count("train/loss_G") == 1


def test_unknown_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"logger\.wandb\.mode=onlin: use offline, online or disabled"
    ):
        WandbLogger(tmp_path, mode="onlin")


@pytest.fixture
def hydra_job(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """hydra_job(*overrides, mode=, sweep_dir=, params=): pretend a Hydra job is running."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):

        def _set(
            *overrides: str,
            mode: RunMode = RunMode.RUN,
            sweep_dir: Path | None = None,
            params: dict[str, str] | None = None,
        ) -> None:
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
            with open_dict(cfg):
                cfg.hydra.mode = mode
                cfg.hydra.job.name = "train"
                cfg.hydra.job.num = 3
                cfg.hydra.sweep.dir = str(sweep_dir)
                cfg.hydra.sweeper.params = params
            HydraConfig.instance().set_config(cfg)

        yield _set
    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


def test_run_identity_from_hydra(hydra_job, tmp_path: Path) -> None:
    assert hydra_identity() == RunIdentity()  # outside Hydra: nothing to say
    hydra_job("loss.lambda_cyc=5", "seed=1")
    single = hydra_identity()
    assert (single.name, single.group, single.job_type) == (
        "loss.lambda_cyc=5,seed=1",
        None,
        "train",
    )
    assert {"model:resnet", "dataset:synthetic", "logger:wandb"} <= set(single.tags)

    # A multirun job: grouped by sweep directory, named by what the sweep varies, both the
    # sweeper's params and the command line's sweeps (read from the saved multirun.yaml).
    sweep = tmp_path / "lambda_grid" / "2026-11-26_16-30-00"
    sweep.mkdir(parents=True)
    OmegaConf.save(
        {"hydra": {"overrides": {"task": ["seed=1,2", "model.ngf=8"]}}}, sweep / "multirun.yaml"
    )
    params = {"loss.lambda_cyc": "5,10"}
    hydra_job(
        "loss.lambda_cyc=5",
        "seed=1",
        "model.ngf=8",
        mode=RunMode.MULTIRUN,
        sweep_dir=sweep,
        params=params,
    )
    job = hydra_identity()
    assert job.name == "loss.lambda_cyc=5,seed=1"
    assert job.group == "lambda_grid-2026-11-26_16-30-00" and "multirun" in job.tags


def test_sweep_group_names_the_grid_and_its_start() -> None:
    assert (
        sweep_group("multirun/lambda_grid/2026-11-26_16-30-00") == "lambda_grid-2026-11-26_16-30-00"
    )
    assert sweep_group("sweep") == "sweep"


# ---------------------------------------------------------------------------- one run per training


def _train_steps(wb: WandbRun) -> list[int]:
    return [h["_step"] for h in wb.history if "train/loss_G" in h]


@pytest.mark.slow  # ~13 s: a training process started, stopped by SIGTERM, then resumed
def test_sigterm_then_resume_continues_one_wandb_run(tmp_path: Path, compose_cfg) -> None:
    run = tmp_path / "run"
    common = [o for o in TINY if not o.startswith(("trainer.steps_per_epoch", "schedule."))]
    common += ["schedule=constant", "trainer.sample_every=0"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *common,
            "logger.wandb.mode=offline",
            "schedule.n_epochs=500",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < 5
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out[-2000:]
    k = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    first = json.loads((run / "wandb_run.json").read_text())
    assert first["last_step"] == k  # every step up to the checkpoint reached W&B

    epochs = k // 8 + 1  # 8 images: 8 steps an epoch; finish the epoch it was in
    train(
        compose_cfg(
            *common,
            "logger.wandb.mode=offline",
            f"schedule.n_epochs={epochs}",
            "resume=auto",
            f"paths.output_dir={run}",
        )
    )
    runs = [read_wandb_run(p) for p in offline_runs(run)]  # W&B's own reader, both processes
    assert len(runs) == 2
    assert {wb.run["run_id"] for wb in runs} == {first["id"]}  # one W&B run
    before, after = _train_steps(runs[0]), _train_steps(runs[1])
    assert before == list(range(1, k + 1)) and after == list(range(k + 1, 8 * epochs + 1))
    assert runs[1].summary["state"] == "finished"
    record = json.loads((run / "wandb_run.json").read_text())
    assert {k: record[k] for k in ("id", "last_step", "from_step", "closed")} == {
        "id": first["id"],
        "last_step": 8 * epochs,
        "from_step": k,  # the second attempt began after the first one's last step
        "closed": True,
    }
    assert Path(record["dir"]) == runs[1].path


def test_a_crash_after_the_checkpoint_logs_no_step_twice(
    compose_cfg, tmp_path: Path, monkeypatch
) -> None:
    every_3 = [
        "trainer.checkpoint_unit=step",
        "trainer.checkpoint_every=3",
        "logger.wandb.mode=offline",
    ]
    step = CycleGANMethod.training_step
    steps = iter(range(100))

    def crash_at_step_6(self: CycleGANMethod, *args: Any) -> Any:
        if next(steps) == 5:
            raise RuntimeError("killed")
        return step(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(CycleGANMethod, "training_step", crash_at_step_6)
        with pytest.raises(RuntimeError, match="killed"):
            train(compose_cfg(*TINY, *every_3))
    run = tmp_path / "run"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3  # steps 4, 5 replay
    train(compose_cfg(*TINY, *every_3, "resume=auto"))
    first, second = (read_wandb_run(p) for p in offline_runs(run))
    assert first.run["run_id"] == second.run["run_id"]
    assert _train_steps(first) == [1, 2, 3, 4, 5] and _train_steps(second) == [6]
    # The file too has each step once: the replayed steps 4, 5 were in it already.
    assert [r["step"] for r in _jsonl(run / "metrics.jsonl") if "train/loss_G" in r] == [
        1, 2, 3, 4, 5, 6
    ]  # fmt: skip


@pytest.mark.slow  # ~7 s: two trainings, two offline W&B runs
def test_a_fresh_run_in_a_used_directory_is_a_new_wandb_run(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg(*TINY, "logger.wandb.mode=offline"))
    first = json.loads((tmp_path / "run" / "wandb_run.json").read_text())["id"]
    train(compose_cfg(*TINY, "logger.wandb.mode=offline"))  # no resume: start over, new run
    second = json.loads((tmp_path / "run" / "wandb_run.json").read_text())["id"]
    # Two runs started in the same second sort by their random ids: look them up by id.
    runs = {wb.run["run_id"]: wb for wb in map(read_wandb_run, offline_runs(tmp_path / "run"))}
    assert first != second and set(runs) == {first, second}
    assert _train_steps(runs[second]) == [1, 2, 3, 4, 5, 6]


def test_log_table_of_the_fixed_test_images(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))  # artifact staging
    g = torch.Generator().manual_seed(0)
    real, target = (torch.rand(2, 3, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    fake = target.clone()
    fake[1] = -fake[1]  # image 0 translated exactly, image 1 badly
    columns, rows = fixed_image_table(real, fake, real, target)
    logger = WandbLogger(tmp_path, mode="offline")
    logger.log_table("eval/fixed_AB", columns, rows, step=4)
    logger.finish()
    [path] = offline_runs(tmp_path)
    wb = read_wandb_run(path)
    [item] = [h for h in wb.history if "eval/fixed_AB._type" in h]
    assert item["_step"] == 4 and item["eval/fixed_AB._type"] == "table-file"
    assert (item["eval/fixed_AB.nrows"], item["eval/fixed_AB.ncols"]) == (2, 8)
    # W&B stores a table with images as a run artifact: the table JSON and one PNG per image.
    [artifact] = [r["artifact"] for r in wb.records if r["type"] == "artifact"]
    files = {e["path"]: e["local_path"] for e in artifact["manifest"]["contents"]}
    table = json.loads(Path(files.pop("eval/fixed_AB.table.json")).read_text())
    assert table["columns"] == columns
    assert all(p.startswith("media/images/") and p.endswith(".png") for p in files)
    # Stored once per distinct image: 2 inputs (= reconstructions), 2 ground truths, and the
    # translation of image 1 (that of image 0 is its ground truth).
    assert len(files) == 5
    assert [row[0] for row in table["data"]] == [0, 1]
    assert {row[1]["_type"] for row in table["data"]} == {"image-file"}
    psnr, ssim = columns.index("psnr"), columns.index("ssim")
    assert table["data"][0][psnr] == pytest.approx(120.0) and table["data"][0][ssim] == 1.0
    assert table["data"][1][psnr] == pytest.approx(rows[1][psnr]) and rows[1][psnr] < 20


def test_file_and_none_loggers_never_import_wandb(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from cyclegan.config.schema import register_configs\n"
        "from cyclegan.training.builder import train\n"
        "register_configs()\n"
        "with initialize_config_dir(config_dir=sys.argv[1], version_base='1.3'):\n"
        "    for logger in ('file', 'none'):\n"
        "        cfg = compose(config_name='config', overrides=[*sys.argv[3:], f'logger={logger}',\n"
        "            f'paths.data_dir={sys.argv[2]}/data', f'paths.output_dir={sys.argv[2]}/{logger}'])\n"
        "        train(cfg)\n"
        "print('wandb' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(CONF), str(tmp_path), *TINY],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WANDB_MODE": "offline"},  # what would make the wandb logger log
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "file" / "metrics.jsonl").is_file()
    assert not (tmp_path / "none" / "metrics.jsonl").exists()
    assert (tmp_path / "none" / "summary.json").is_file()
