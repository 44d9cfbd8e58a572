"""Normalisation layers by name, and the official rule for which convolutions carry a bias.

The official CycleGAN/pix2pix code (junyanz/pytorch-CycleGAN-and-pix2pix, ``get_norm_layer``)
offers three choices, for generators and discriminators alike:

* ``instance``: ``InstanceNorm2d(affine=False, track_running_stats=False)``, per image and channel,
  no learned scale or shift, identical in train and eval mode (the CycleGAN default);
* ``batch``: ``BatchNorm2d(affine=True, track_running_stats=True)``, statistics over the batch in
  training and running averages in eval (the pix2pix default);
* ``none``: no normalisation (an identity layer with no parameters and no state-dict entries).

Bias rule (official: ``use_bias = norm_layer == InstanceNorm2d``): a convolution that feeds a norm
layer gets a bias only when the norm is ``instance``. A batch norm's learned shift makes such a bias
redundant, so there is none. Quirk kept for checkpoint compatibility: with ``none`` the official
code also leaves these convolutions without a bias (its test compares the layer class with
InstanceNorm2d, and the identity is not one), so the only biases of such a network are in the
layers the official code always builds with one (the first and last convolutions). The bias that an
instance norm follows is subtracted away again by its mean; it is there to match the official keys.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from torch import nn

from cyclegan.errors import parse_choice


class Norm(StrEnum):
    """The normalisation choices of the official code (`model.norm`)."""

    instance = "instance"
    batch = "batch"
    none = "none"


NormFactory = Callable[[int], nn.Module]


def parse_norm(norm: str | Norm) -> Norm:
    """`norm` as a Norm; a one-line error naming the choices otherwise."""
    return parse_choice(Norm, norm, "norm")


def norm_layer(norm: str | Norm) -> NormFactory:
    """A factory `channels -> module` for the named normalisation."""
    norm = parse_norm(norm)
    if norm is Norm.instance:
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm is Norm.batch:
        return lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return lambda channels: nn.Identity()


def conv_bias(norm: str | Norm) -> bool:
    """Whether a convolution followed by this norm has a bias (official rule: only for instance)."""
    return parse_norm(norm) is Norm.instance
