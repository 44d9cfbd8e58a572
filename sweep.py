"""Run a named grid and rank its runs: `python sweep.py NAME [overrides...]`, `--list` for the grids.

The grids live in experiments/sweeps/; the work is in cyclegan/sweeps/sweep.py.
"""

import sys
from pathlib import Path

from cyclegan.sweeps.sweep import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], root=Path(__file__).resolve().parent))
