"""train.py's preflight: every job of a command line composes and validates before Hydra starts,
or the run stops with one line and exit status 2 (cyclegan/training/command_line.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyclegan.training.command_line import command_overrides, preflight

from .conftest import ROOT


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["method=cut", "loss.lambda_cyc=5"],
            "loss.lambda_cyc is not a setting of method=cut; its loss keys are: gan_mode, "
            "lambda_gp, lambda_r1, lambda_r2, reg_every, lambda_GAN, lambda_NCE, nce_idt",
        ),
        (
            ["method.nce_T=0.1"],
            "method.nce_T is not a setting of method=cyclegan; its method keys are: buffer_size",
        ),
        (
            ["model.n_residual_block=6"],
            "model.n_residual_block: no such key in the model group; did you mean "
            "model.n_residual_blocks?",
        ),
        (["model=unet"], "model=unet: no such option; choose one of cut, paper, resnet"),
        (
            ["model.ngf=wide"],
            "model.ngf=wide: Value 'wide' of type 'str' could not be converted to Integer",
        ),
        (
            ["model.n_layers_D=4"],
            "model.n_layers_D is not used: model.discriminator=pytorch_gan has a fixed depth "
            "(n_layers_D is read by n_layers and cut); remove model.n_layers_D=...",
        ),
        (
            ["loss.lambda_gp=5"],
            "loss.lambda_gp is not used: loss.gan_mode=lsgan has no gradient penalty; remove "
            "loss.lambda_gp=...",
        ),
        (
            ["method=cut", "loss.reg_every=16"],
            "loss.reg_every is not used: loss.lambda_r1 and loss.lambda_r2 are 0 (no R1/R2 "
            "penalty); remove loss.reg_every=...",
        ),
        (
            [
                "trainer.device=cuda",
                "trainer.cuda_graphs=true",
                "loss.lambda_r1=1",
                "loss.reg_every=4",
            ],
            "loss.reg_every=4 (lazy R1/R2) changes the step every 4 steps, which one recorded "
            "CUDA graph cannot: set loss.reg_every=1 or trainer.cuda_graphs=false",
        ),
        (
            ["trainer.ema_warmup=false"],
            "trainer.ema_warmup is not used: trainer.ema_decay=0 keeps no generator average; "
            "remove trainer.ema_warmup=...",
        ),
        (
            ["trainer.eval_raw=true"],
            "trainer.eval_raw is not used: trainer.ema_decay=0 scores the trained generators "
            "already; remove trainer.eval_raw=...",
        ),
        (
            ["trainer.ema_decay=1"],
            "trainer.ema_decay=1.0: use 0 (off) or a value in (0, 1), e.g. 0.999",
        ),
        (["loss.lambda_r2=-1"], "loss.lambda_r2=-1: must be >= 0 (0 turns the penalty off)"),
        (
            ["loss.lambda_r1=1", "loss.reg_every=0"],
            "loss.reg_every=0: use a positive integer (1: every step; StyleGAN2: 16)",
        ),
        (
            ["trainer.compile_mode=max-autotune"],
            "trainer.compile_mode is not used: it is torch.compile's mode and "
            "trainer.compile=false; remove trainer.compile_mode=...",
        ),
        (
            ["schedule=constant", "schedule.decay_epoch=5"],
            "schedule.decay_epoch is not used: schedule=constant never decays; remove "
            "schedule.decay_epoch=...",
        ),
        (["optim.lr=0"], "optim.lr=0.0: must be > 0"),
    ],
)
def test_a_bad_command_line_is_one_line(argv: list[str], line: str) -> None:
    assert preflight(argv) == line


def test_an_unknown_optimized_metric_is_refused_before_training() -> None:
    problem = preflight(["method=cut", "optimized_metric=eval/psnr_BA"])
    assert problem is not None and problem.startswith(
        "optimized_metric=eval/psnr_BA is not a metric method=cut reports; use one of "
        "eval/psnr_AB, eval/ssim_AB"
    )
    assert preflight(["optimized_metric=final/train/loss_cycle"]) is None


def test_a_multirun_is_checked_job_by_job_over_its_group_choices(capsys) -> None:
    # The CycleGAN cell is fine; the CUT cell has a key CUT does not read: the grid is refused.
    problem = preflight(["-m", "method=cyclegan,cut", "loss.lambda_cyc=5"])
    assert problem is not None and problem.startswith(
        "job method=cut loss.lambda_cyc=5: loss.lambda_cyc is not a setting of method=cut"
    )
    # A sweep file's own grid (hydra.sweeper.params) is expanded too.
    problem = preflight(["-m", "+experiment/sweeps=method_grid", "loss.lambda_cyc=5"])
    assert problem is not None and "loss.lambda_cyc is not a setting of method=cut" in problem
    # A bad value fails its own job only: the others still run and are ranked.
    assert preflight(["-m", "optim.lr=-1"]) is None
    assert "optim.lr=-1.0: must be > 0 (this job will fail; the others run)" in (
        capsys.readouterr().err
    )


def test_presets_may_set_keys_their_mode_does_not_read() -> None:
    # cpu_smoke sets schedule.decay_epoch for the default linear schedule; with schedule=constant
    # the key is not read, and that is fine when the preset, not the user, set it.
    assert preflight(["+experiment=cpu_smoke", "schedule=constant", "schedule.n_epochs=1"]) is None
    assert preflight(["method=cut", "+experiment=cpu_smoke"]) is None


def test_train_py_exits_2_with_the_line_before_any_work(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "method=cut", "loss.lambda_cyc=5",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: loss.lambda_cyc is not a setting of method=cut; its loss keys are: gan_mode, "
        "lambda_gp, lambda_r1, lambda_r2, reg_every, lambda_GAN, lambda_NCE, nce_idt"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags", [["--cfg", "job"], ["-c", "all"], ["--info", "defaults"]])
def test_printing_flags_still_refuse_a_key_in_one_line(flags: list[str]) -> None:
    """`--cfg job` with a key the method does not have is the same one line as training would
    give (Hydra's own error spans lines); a valid command line prints as Hydra does, values
    unchecked (the flag's value is not read as an override)."""
    message = preflight([*flags, "method=cut", "loss.lambda_cyc=5"])
    assert message is not None and "\n" not in message
    assert message.startswith("loss.lambda_cyc is not a setting of method=cut")
    assert preflight([*flags, "method=cut", "loss.lambda_NCE=2"]) is None
    assert preflight([*flags, "schedule=constant", "schedule.decay_epoch=3"]) is None


def test_command_overrides_drop_hydra_flags_and_their_values() -> None:
    argv = ["-m", "--cfg", "job", "-p", "model", "--info", "config", "a=1", "--resolve", "b=2"]
    assert command_overrides(argv) == ["a=1", "b=2"]
