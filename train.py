"""Train a CycleGAN: `python train.py [group=option ...] [key=value ...]` (Hydra; `-m` for grids)."""

import hydra
from omegaconf import DictConfig

from cyclegan.config import register_configs
from cyclegan.run import main as run

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    main()
