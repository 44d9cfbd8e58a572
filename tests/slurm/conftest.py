"""The cluster the SLURM tests run on: the one `tests/slurm/cluster.sh start` started, found through
SLURM_CONF. Without one the tests are skipped, saying how to start it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

START = "start one with `tests/slurm/cluster.sh start` (root, Debian/Ubuntu) and export the SLURM_CONF it prints"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The node's name once `sinfo` shows it idle (or busy with jobs: mixed, allocated)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        pytest.skip(f"no SLURM cluster (SLURM_CONF is not set): {START}")
    if not Path(conf).is_file() or shutil.which("sinfo") is None:
        pytest.fail(f"SLURM_CONF={conf}, but no such file or no sinfo on PATH: {START}")
    proc = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30
    )
    node, _, state = proc.stdout.strip().partition(" ")
    if proc.returncode or state not in ("idle", "mixed", "allocated"):
        pytest.fail(f"the SLURM cluster of {conf} is not ready: {proc.stdout}{proc.stderr}")
    return node


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built-in dataset for every SLURM test (the first job renders it)."""
    return tmp_path_factory.mktemp("slurm_data")
