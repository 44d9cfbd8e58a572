"""Rebuild runs' reports: `python -m cyclegan.reports RUN_DIR [RUN_DIR ...]`."""

from __future__ import annotations

import sys
from pathlib import Path

from cyclegan.reports.run_report import write_run_report


def main(argv: list[str]) -> int:
    if not argv or any(a.startswith("-") for a in argv):
        print("usage: python -m cyclegan.reports RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    missing = [a for a in argv if not Path(a).is_dir()]
    if missing:
        print(f"error: no such run directory: {missing[0]}", file=sys.stderr)
        return 2
    for run_dir in argv:
        print(f"report: {write_run_report(Path(run_dir))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
