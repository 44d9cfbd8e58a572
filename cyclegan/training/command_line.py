"""`train.py`'s command line checked before Hydra starts: every job it would run composes and
validates, or the run stops with one line and exit status 2, before any work.

Hydra's own errors are several lines with a hint about HYDRA_FULL_ERROR; here each becomes one
line that names the key and the fix, e.g. ``loss.lambda_cyc is not a setting of method=cut; its
loss keys are: gan_mode, lambda_gp, lambda_GAN, lambda_NCE, nce_idt``. A multirun is checked job
by job over its group choices (`-m method=cyclegan,cut loss.lambda_cyc=5` fails for its CUT jobs,
before the CycleGAN ones have trained for an hour). A key the user sets that the chosen method or
mode does not read (`model.n_layers_D` with the seed's discriminator, `loss.lambda_gp` without
wgangp) is refused too; presets may set such keys, since they serve several modes.

In a multirun, a key or metric that does not fit refuses the whole grid (it changes what every
cell means), while a bad value (`optim.lr=-1` in one cell) is reported as a warning and left to
that job, which fails on its own while the sweep runs and ranks the others.
"""

from __future__ import annotations

import difflib
import itertools
import re
import sys
from collections.abc import Sequence
from typing import Any

from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from cyclegan.config.compose import compose_config
from cyclegan.config.schema import CONF_DIR
from cyclegan.errors import ConfigError, SettingKeyError
from cyclegan.training.validation import unused_settings, validate

EXIT_USER_ERROR = 2
# Flags after which Hydra prints instead of training: the overrides must still compose (a key
# that does not exist is one line), but values are not validated, so `--cfg job` shows them.
PRINT_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve",
               "--package", "-p")  # fmt: skip
# Flags that take the next argument as their value (`--cfg job`, `-p model`, `--info defaults`).
VALUE_FLAGS = ("--cfg", "-c", "--package", "-p")
INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
# Another primary config than conf/config.yaml: Hydra's own errors apply, no preflight.
CONFIG_FLAGS = ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd")
METHOD_GROUPS = ("method", "loss")


class CommandLineError(ConfigError):
    """A command line train.py would refuse; the message is one line."""


def preflight(argv: Sequence[str]) -> str | None:
    """One line saying what is wrong with this command line, or None when every job is valid."""
    flags = {a.split("=")[0] for a in argv if a.startswith("-")}
    if flags & set(CONFIG_FLAGS):
        return None
    if flags & set(PRINT_FLAGS):
        single = [o for o in command_overrides(argv) if "," not in o]  # a grid's keys, one value
        try:
            compose_config(single)
        except ConfigCompositionException as exc:
            return composition_error(exc, single)
        except Exception:  # anything else is Hydra's to print
            return None
        return None
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = command_overrides(argv)
    try:
        for job in jobs(overrides, multirun):
            check_job(job, prefix=f"job {' '.join(job)}: " if multirun else "", multirun=multirun)
    except ConfigError as exc:
        return str(exc)
    return None


def command_overrides(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line, without Hydra's flags and their values."""
    overrides: list[str] = []
    after = ""
    for arg in argv:
        takes_value = after in VALUE_FLAGS or (after in ("--info", "-i") and arg in INFO_TOPICS)
        if not arg.startswith("-") and not takes_value:
            overrides.append(arg)
        after = arg
    return overrides


def jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The jobs to check: one, or a multirun's combinations of group choices (a sweep over
    values takes its first value: values do not change which keys exist)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not multirun:
        return [overrides]
    parser = OverridesParser.create()
    axes: list[list[str]] = []
    for text in overrides + sweeper_params(overrides):
        override = parser.parse_override(text)
        key = override.get_key_element()
        if key.lstrip("+~").startswith("hydra"):
            continue
        if not override.is_sweep_override():
            axes.append([text])
            continue
        try:
            values = list(override.sweep_string_iterator())
        except Exception:  # ranges/intervals (Optuna): their first value is checked by the job
            continue
        axes.append([f"{key}={v}" for v in (values if is_group(key) else values[:1])])
    return [list(combo) for combo in itertools.product(*axes)]


def sweeper_params(overrides: list[str]) -> list[str]:
    """A sweep file's `hydra.sweeper.params` (e.g. `method: cyclegan,cut,fastcut`) as overrides."""
    try:
        cfg = compose_config([o for o in overrides if "," not in o], return_hydra_config=True)
    except Exception:  # reported when the job itself is composed
        return []
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return [f"{k}={v}" for k, v in params.items()]


def is_group(key: str) -> bool:
    """Whether `key` (e.g. `model`, `+experiment`) chooses a config group's option."""
    name = key.lstrip("+~").split("@")[0]
    return (CONF_DIR / name).is_dir()


def check_job(overrides: list[str], prefix: str = "", multirun: bool = False) -> None:
    """Compose and validate one job; a `CommandLineError` with one line otherwise (in a multirun
    only for keys and metrics: a bad value is a warning, and fails that job alone)."""
    try:
        cfg = compose_config(overrides)
    except ConfigCompositionException as exc:
        raise CommandLineError(prefix + composition_error(exc, overrides)) from None
    try:
        validate(cfg)
    except ConfigError as exc:
        if multirun and not isinstance(exc, SettingKeyError):
            print(f"warning: {prefix}{exc} (this job will fail; the others run)", file=sys.stderr)
        else:
            raise CommandLineError(prefix + str(exc).splitlines()[0]) from None
    unused = unused_settings(cfg)
    for text in overrides:
        key = text.lstrip("+~").split("=", 1)[0]
        if key in unused:
            raise CommandLineError(f"{prefix}{key} is not used: {unused[key]}; remove {key}=...")


def composition_error(exc: ConfigCompositionException, overrides: list[str]) -> str:
    """Hydra's composition error as one line that names the key and the fix."""
    message = " ".join(str(exc).split())
    cause = " ".join(str(exc.__cause__ or "").split()).split(" full_key:")[0]
    missing = re.search(r"Could not override '([\w.]+)'", message)
    if missing and re.search(r"Key '\w+' (is )?not in", f"{message} {cause}"):
        return unknown_key(missing.group(1), overrides)
    merging = re.search(r"Error merging override (\S+)", message)
    if merging and cause:
        return f"{merging.group(1)}: {cause}"
    option = re.search(r"Could not find '([\w/]+)'", str(exc))
    if option:
        group = option.group(1).rsplit("/", 1)[0]
        choices = ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))
        return (
            f"{group}={option.group(1).rsplit('/', 1)[1]}: no such option; choose one of {choices}"
        )
    return f"{message.split(' Set the environment')[0]} {cause}".strip()


def unknown_key(key: str, overrides: list[str]) -> str:
    """`loss.lambda_cyc is not a setting of method=cut; its loss keys are: ...`, or a typo's
    nearest key."""
    group, _, leaf = key.partition(".")
    rest = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != key]
    try:
        cfg = compose_config(rest)
    except ConfigCompositionException:
        return f"{key}: no such key"
    node: Any = OmegaConf.select(cfg, group)
    keys = [k for k in node if k != "_target_"] if OmegaConf.is_dict(node) else []
    if group in METHOD_GROUPS:
        method = str(cfg.method._target_).rsplit(".", 1)[-1].lower()
        return f"{key} is not a setting of method={method}; its {group} keys are: {', '.join(keys)}"
    close = difflib.get_close_matches(leaf, keys, n=1)
    hint = f"did you mean {group}.{close[0]}?" if close else f"its keys are: {', '.join(keys)}"
    return f"{key}: no such key in the {group} group; {hint}"


def exit_if_invalid(argv: Sequence[str]) -> None:
    """`preflight`, printed as one line on stderr with exit status 2 when it finds a problem."""
    problem = preflight(argv)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
