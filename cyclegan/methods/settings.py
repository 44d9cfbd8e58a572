"""A method's settings, checked against the code that reads them, before any work.

The `method` and `loss` groups hold exactly the keys their classes take: the method's own keyword
arguments (those the builder does not pass: `BUILDER_ARGUMENTS`) and the loss class's. So a key is
valid for a method when, and only when, the class that receives it has a parameter of that name:
the config cannot drift from the code, and a key another method reads (`loss.lambda_cyc` with
method=cut) is refused in one line that names the method, the key and the keys it does take.
Values are type-checked against the parameters' annotations, and the loss is built once (it is a
few floats) so its own range checks run here too.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from hydra.utils import get_class
from torch import nn

from cyclegan.errors import ConfigError, SettingKeyError
from cyclegan.methods.base import BUILDER_ARGUMENTS, TrainingMethod
from cyclegan.parts.networks.spec import NetworkSpec

TEST_HOOKS = frozenset({"device_buffers"})  # constructor arguments that are not settings


def method_class(target: str) -> type[TrainingMethod]:
    """The class `method._target_` names, which must be a `TrainingMethod`."""
    try:
        cls = get_class(target)
    except Exception:  # Hydra wraps import errors in several types
        raise ConfigError(f"method._target_={target}: no such class") from None
    if not (isinstance(cls, type) and issubclass(cls, TrainingMethod)):
        raise ConfigError(f"method._target_={target} is not a training method")
    return cls


def own_parameters(fn: Callable[..., Any], exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """{name: annotation} of `fn`'s keyword parameters, less `exclude` and self."""
    hints = typing.get_type_hints(fn)
    names = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return {n: hints.get(n, Any) for n in names if n not in exclude}


def check_keys(
    group: str, values: Mapping[str, Any], parameters: Mapping[str, Any], method: str
) -> None:
    """One line for a key the receiving class does not take, or one it needs and lacks."""
    given = {k for k in values if k != "_target_"}
    for key in sorted(given - set(parameters)):
        raise SettingKeyError(
            f"{group}.{key} is not a setting of method={method}; its {group} keys are: "
            f"{', '.join(parameters)}"
        )
    for key in sorted(set(parameters) - given):
        raise ConfigError(f"{group}.{key} is missing: method={method} reads it; add it to the YAML")


def check_types(group: str, values: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    """One line for a value whose type its parameter's annotation does not admit."""
    for key, annotation in parameters.items():
        if key in values and not _admits(annotation, values[key]):
            raise ConfigError(f"{group}.{key}={values[key]!r}: expected {_describe(annotation)}")


def _admits(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_admits(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is not None:  # Sequence[int], tuple[int, ...]: a list of the item type
        items = typing.get_args(annotation)[:1]
        return isinstance(value, list | tuple) and all(_admits(items[0], v) for v in value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return value in {m.value for m in annotation} or isinstance(value, annotation)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def build_loss(values: Mapping[str, Any], method: type[TrainingMethod]) -> nn.Module:
    """The loss group's module, after its keys and types are checked; its range checks (weights
    >= 0, wgangp's penalty weight) become one-line ConfigErrors."""
    target = str(values.get("_target_"))
    loss_class = get_class(target)
    if not (isinstance(loss_class, type) and issubclass(loss_class, method.loss_type)):
        raise SettingKeyError(
            f"loss._target_={target} is not method={method.name}'s loss; use "
            f"loss={method.name} (its option), not another method's"
        )
    parameters = own_parameters(loss_class.__init__)
    check_keys("loss", values, parameters, method.name)
    check_types("loss", values, parameters)
    try:
        return loss_class(**{k: v for k, v in values.items() if k != "_target_"})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_method(
    method: Mapping[str, Any],
    loss: Mapping[str, Any],
    spec: NetworkSpec,
    channels: tuple[int, int],
    img_size: int | None,
    execution: Any,
) -> type[TrainingMethod]:
    """Everything method-owned, before any work: the method group's keys and types, the loss
    (its class, keys, types, values), the execution features the method supports, and the
    method's own rules (`check_settings`: e.g. CUT's NCE layers inside the generator)."""
    cls = method_class(str(method["_target_"]))
    parameters = own_parameters(cls.__init__, BUILDER_ARGUMENTS | TEST_HOOKS)
    check_keys("method", method, parameters, cls.name)
    check_types("method", method, parameters)
    built = build_loss(loss, cls)
    cls.check_features(execution)
    own = {k: v for k, v in method.items() if k != "_target_"}
    try:
        cls.check_settings(own, built, spec, channels, img_size)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cls
