"""Weight initialisation by name, with the official code's semantics (``init_weights``).

For every convolution, transposed convolution and linear layer (the official code matches the
class names containing ``Conv`` or ``Linear``), the weight W is drawn as

* ``normal``:     W ~ N(0, gain²)                                 (the CycleGAN default, gain 0.02)
* ``xavier``:     W ~ N(0, gain² · 2 / (fan_in + fan_out))        (Glorot normal)
* ``kaiming``:    W ~ N(0, 2 / fan_in)                             (He normal, a=0, fan_in mode)
* ``orthogonal``: W = gain · Q, Q a (semi-)orthogonal matrix of the flattened weight

and its bias is set to 0. ``kaiming`` ignores the gain, as in the official code: He's variance is
derived for ReLU and already has its own scale, so multiplying it by 0.02 would undo the point.
Batch-norm layers get scale ~ N(1, gain²) and shift 0. Instance norm (affine=False) has nothing to
initialise. Under spectral normalisation the trainable tensor is the unnormalised weight (the
parametrization's ``original``); that is what gets initialised, and the normalised weight follows
from it. Initialise before adding spectral norm where possible: its power-iteration vectors are
seeded from the weight it first sees and only converge to a new weight over later forwards.
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn
from torch.nn.utils import parametrize

from cyclegan.errors import parse_choice


class InitType(StrEnum):
    """Weight initialisations of the official code (`model.init_type`)."""

    normal = "normal"
    xavier = "xavier"
    kaiming = "kaiming"
    orthogonal = "orthogonal"


_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def parse_init_type(init_type: str | InitType) -> InitType:
    """`init_type` as an InitType; a one-line error naming the choices otherwise."""
    return parse_choice(InitType, init_type, "init_type")


def _weight(module: nn.Module) -> nn.Parameter | None:
    # Under spectral normalisation the trainable tensor is the parametrization's `original`
    # (torch.nn.utils.parametrizations) or `weight_orig` (the older torch.nn.utils.spectral_norm).
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    weight = getattr(module, "weight_orig", None)
    if weight is None:
        weight = getattr(module, "weight", None)
    return weight if isinstance(weight, nn.Parameter) else None


@torch.no_grad()
def init_weights(
    module: nn.Module, init_type: str | InitType = "normal", gain: float = 0.02
) -> None:
    """Initialise every conv/linear/batch-norm layer inside `module` in place (see module doc)."""
    init_type = parse_init_type(init_type)
    if gain <= 0:
        raise ValueError(f"init_gain must be > 0, got {gain}; the official default is 0.02")
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            weight = _weight(m)
            if weight is None:
                continue
            if init_type is InitType.normal:
                nn.init.normal_(weight, 0.0, gain)
            elif init_type is InitType.xavier:
                nn.init.xavier_normal_(weight, gain=gain)
            elif init_type is InitType.kaiming:
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
