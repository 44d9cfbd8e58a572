"""The README's `python train.py ...` commands compose and validate: a moved or renamed key, group
or option shows up here, not in a user's terminal."""

from __future__ import annotations

import re
import shlex

import pytest

from cyclegan.training.validation import validate

from .conftest import ROOT


def readme_train_commands() -> list[list[str]]:
    """The overrides of every `python train.py` line in the README's code blocks."""
    text = (ROOT / "README.md").read_text()
    # Every fence pairs with the next, whatever its language (```python blocks included).
    blocks = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if not line.startswith(("python train.py", "srun python train.py")):
                continue
            args = shlex.split(line.split("train.py", 1)[1])
            if "-m" in args or "--multirun" in args:
                continue  # sweeps: their values are lists; the sweep tests cover them
            commands.append([a for a in args if not a.startswith(("hydra", "--"))])
    return commands


COMMANDS = readme_train_commands()


def test_the_readme_has_train_commands() -> None:
    assert len(COMMANDS) >= 10
    assert [] in COMMANDS  # plain `python train.py`


@pytest.mark.parametrize("overrides", COMMANDS, ids=[" ".join(c) or "(none)" for c in COMMANDS])
def test_readme_train_command_composes_and_validates(overrides: list[str], compose_cfg) -> None:
    overrides = [o for o in overrides if not o.startswith("resume=")]  # paths of the user's runs
    if any(o.startswith("dataset=folder") for o in overrides) and not any(
        o.startswith("dataset.root=") for o in overrides
    ):
        overrides.append("dataset.root=/some/folder")
    validate(compose_cfg(*overrides))
