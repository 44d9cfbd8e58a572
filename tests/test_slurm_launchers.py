"""The SLURM launcher configs give each job as many threads as CPUs it asked for (on a node that does
not bind tasks to CPUs, PyTorch would take every core); tests/slurm checks it on a cluster."""

from __future__ import annotations

import pytest
from hydra import compose
from omegaconf import OmegaConf


@pytest.mark.parametrize("launcher", ["slurm", "slurm_ddp"])
def test_job_script_sets_threads_to_cpus_per_task(compose_cfg, launcher: str) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose(
        "config",
        overrides=[f"hydra/launcher={launcher}", "hydra.launcher.cpus_per_task=3"],
        return_hydra_config=True,
    )
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params["setup"] == ["export OMP_NUM_THREADS=3"]
