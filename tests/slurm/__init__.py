"""Tests against a real one-node SLURM cluster (tests/slurm/cluster.sh); `pytest -m slurm`."""
