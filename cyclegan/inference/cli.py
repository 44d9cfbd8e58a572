"""What the command-line tools (translate, export, evaluate) share: argument style, logging, errors.

Arguments are written like Hydra overrides, `key=value` (`ckpt=last.pt input=photos/ direction=AtoB`),
as DESIGN.md shows for translate; the usual `--key value` / `--key=value` works too. Underscores and
dashes in keys are interchangeable (`batch_size=8` == `--batch-size 8`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

EXIT_USER_ERROR = 2


def boolean(text: str) -> bool:
    """`true/false/yes/no/1/0/on/off` -> bool, for `key=value` flags such as `fid=false`."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        opt[2:]
        for action in parser._actions  # the parser's own registry; there is no public accessor
        for opt in action.option_strings
        if opt.startswith("--")
    }


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `key=value` and `--key value` arguments alike (unknown keys fail as usual)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known = _long_options(parser)
    normalized = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and not arg.startswith("-") and key.replace("_", "-") in known:
            normalized.append(f"--{key.replace('_', '-')}={value}")
        else:
            normalized.append(arg)
    return parser.parse_args(normalized)


@contextlib.contextmanager
def console_logging(level: int = logging.INFO) -> Iterator[None]:
    """The package's log messages, plain, on stderr while a command runs (stdout stays for results).

    The handler sits on the `cyclegan` logger and is removed afterwards, so calling `main()` from
    Python (or a test) leaves the caller's logging set-up as it was.
    """
    logger = logging.getLogger("cyclegan")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def run_command(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
    user_errors: tuple[type[Exception], ...],
) -> int:
    """The shared shape of the tools' `main`: parse, log to the console, run; an input error
    prints one line and returns EXIT_USER_ERROR instead of a traceback."""
    args = parse_args(parser, argv)
    with console_logging():
        try:
            return run(args)
        except user_errors as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
