"""Where to look at a sweep's logs beyond its tables: the W&B group of its runs (and how to upload
offline ones), the TensorBoard command that shows its jobs side by side, Optuna's best trial."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from cyclegan.config.run_identity import sweep_group
from cyclegan.sweeps.jobs import Job


def wandb_summary(jobs: list[Job], sweep_dirs: list[Path]) -> list[str]:
    """Lines naming the W&B group of each sweep's runs and how to upload the offline ones."""
    lines = []
    for sweep_dir in sweep_dirs:
        offline = sorted(sweep_dir.glob("*/wandb/offline-run-*"))
        online = sorted(sweep_dir.glob("*/wandb/run-*"))
        if not offline and not online:
            continue
        logger = next((j.config.get("logger") or {} for j in jobs), {})
        logger = logger.get("wandb") or logger  # logger.wandb.*; before loggers had names, logger.*
        group = logger.get("group") or sweep_group(sweep_dir)
        lines.append(
            f"W&B: {len(offline) + len(online)} runs in group '{group}' "
            f"(project '{logger.get('project', 'cyclegan')}')"
        )
        if offline:
            lines.append(
                f"upload the offline runs with: wandb sync {sweep_dir}/*/wandb/offline-run-*"
            )
    return lines


def tensorboard_lines(dirs: list[Path]) -> list[str]:
    """The command that shows the jobs' TensorBoard runs side by side (logger=tensorboard): one
    sweep's directory as the log directory (its runs are named `<job>/tensorboard`), or several
    named by their sweep group."""
    found = [d for d in dirs if any(d.glob("*/tensorboard"))]
    if not found:
        return []
    runs = sum(len(list(d.glob("*/tensorboard"))) for d in found)
    if len(found) == 1:
        command = f"tensorboard --logdir {found[0]}"
    else:
        command = "tensorboard --logdir_spec " + ",".join(f"{sweep_group(d)}:{d}" for d in found)
    return [f"TensorBoard: {runs} runs; view them side by side with: {command}"]


def optuna_lines(dirs: list[Path]) -> list[str]:
    lines = []
    for path in (d / "optimization_results.yaml" for d in dirs):
        if path.is_file():
            best = OmegaConf.load(path)
            params = dict(best.get("best_params", {}))
            lines.append(f"Optuna best: {best.get('best_value')} with {params}")
    return lines
