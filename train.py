"""Train a CycleGAN: `python train.py [group=option ...] [key=value ...]` (Hydra; `-m` for grids)."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cyclegan.config.plugins import require_plugins
from cyclegan.config.renamed import require_current_keys
from cyclegan.config.schema import register_configs
from cyclegan.training.builder import main as run
from cyclegan.training.command_line import exit_if_invalid

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    # A launcher or sweeper plugin that is not installed: name the pip extra, before Hydra starts;
    # a key in an old spelling (logger.mode): name the new one.
    require_plugins(sys.argv[1:], Path(__file__).parent / "experiments")
    require_current_keys(sys.argv[1:])
    # Every job of this command line composes and validates, or one line and exit status 2.
    exit_if_invalid(sys.argv[1:])
    main()
