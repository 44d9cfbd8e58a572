"""Official PatchGAN (n_layers_D), pixel discriminator, spectral norm, norms and inits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from cyclegan.parts.networks.factory import build_discriminator
from cyclegan.parts.networks.init import init_weights
from cyclegan.parts.networks.norms import conv_bias, norm_layer
from cyclegan.parts.networks.patchgan import (
    NLayerDiscriminator,
    PixelDiscriminator,
    add_spectral_norm,
    max_n_layers,
    patchgan_output_size,
    receptive_field,
)

DATA = Path(__file__).parent / "data"


def test_basic_patchgan_loads_official_checkpoint_and_reproduces_outputs() -> None:
    net = NLayerDiscriminator(3, ndf=16, n_layers=3, norm="instance")
    sd = torch.load(DATA / "official_latest_net_D_A_ndf16.pth", weights_only=True)
    net.load_state_dict(sd, strict=True)
    ref = torch.load(DATA / "io.pt", weights_only=True)["official_latest_net_D_A_ndf16"]
    with torch.no_grad():
        out = net.eval()(ref["input"])
    torch.testing.assert_close(out, ref["output_eval"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4, 5])
def test_patchgan_shapes_widths_and_receptive_field(n_layers: int) -> None:
    net = NLayerDiscriminator(3, ndf=4, n_layers=n_layers, norm="none")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == n_layers + 2
    assert [c.out_channels for c in convs] == [4 * min(2**k, 8) for k in range(n_layers + 1)] + [1]
    assert [c.stride[0] for c in convs] == [2] * n_layers + [1, 1]
    size = 96
    out = net(torch.zeros(1, 3, size, size))
    side = patchgan_output_size(size, n_layers)
    assert out.shape == (1, 1, side, side) == (1, *net.output_shape(size, size))
    # Receptive field: the gradient of the central score is non-zero on a square of side r(n),
    # measured on an image big enough to hold it without touching the border.
    r = receptive_field(n_layers)
    assert r == 9 * 2**n_layers - 2
    big = 2 * r + 2**n_layers * 8
    x = torch.zeros(1, 3, big, big, requires_grad=True)
    with torch.no_grad():
        for c in convs:
            c.weight.fill_(1.0)
    y = net(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero()
    assert int(rows.max() - rows.min() + 1) == r


def test_official_70x70_numbers() -> None:
    assert receptive_field(3) == 70
    assert patchgan_output_size(256, 3) == 30 and patchgan_output_size(64, 3) == 6
    assert max_n_layers(64) == 4 and max_n_layers(256) == 6


def test_n_layers_too_deep_is_one_line_naming_the_fix() -> None:
    net = NLayerDiscriminator(3, 4, n_layers=5)
    net.check_input_size(128)  # 128 / 32 - 2 = 2
    with pytest.raises(
        ValueError, match=r"n_layers_D=5 is too deep for 64x64 .*n_layers_D <= 4"
    ) as e:
        net.check_input_size(64)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="n_layers_D must be >= 1"):
        NLayerDiscriminator(3, 4, n_layers=0)


def test_pixel_discriminator_scores_each_pixel_alone() -> None:
    net = PixelDiscriminator(3, ndf=8, norm="none")
    x = torch.randn(2, 3, 9, 7, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 1, 9, 7) and net.output_shape(9, 7) == (1, 9, 7)
    y[1, 0, 4, 3].backward()
    touched = x.grad.abs().sum(dim=1).nonzero().tolist()
    assert touched == [[1, 4, 3]]
    # The official layout: net.0/2/5 convs; with batch norm only the first has a bias.
    bn = PixelDiscriminator(3, 8, norm="batch")
    assert [k for k in bn.state_dict() if "weight" in k] == [
        "net.0.weight",
        "net.2.weight",
        "net.3.weight",
        "net.5.weight",
    ]
    assert bn.net[0].bias is not None and bn.net[2].bias is None and bn.net[5].bias is None


@pytest.mark.parametrize("kind", ["basic", "n_layers", "pixel"])
def test_spectral_norm_bounds_every_conv(kind: str) -> None:
    torch.manual_seed(0)
    net = build_discriminator(kind, 3, ndf=4, n_layers_D=2, norm="none")
    init_weights(net, "normal", 1.0)
    add_spectral_norm(net)  # after the init, as NetworkSpec.finish_discriminator does
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    x = torch.randn(2, 3, 32, 32)
    for _ in range(30):  # power iterations converge in training forwards
        net(x)
    net.eval()
    for c in convs:
        sigma = torch.linalg.matrix_norm(c.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=1e-3)
        raw = torch.linalg.matrix_norm(
            c.parametrizations.weight.original.detach().flatten(1), ord=2
        )
        assert raw > 1.5  # the unnormalised weight (gain 1) is far from norm 1
    keys = list(net.state_dict())
    assert any(k.endswith("parametrizations.weight.original") for k in keys)
    with pytest.raises(ValueError, match="no convolutions"):
        add_spectral_norm(nn.ReLU())


def test_build_discriminator_names_and_errors() -> None:
    assert build_discriminator("basic", 3, 4, n_layers_D=5, norm="instance").n_layers == 3
    assert build_discriminator("n_layers", 3, 4, n_layers_D=5, norm="instance").n_layers == 5
    with pytest.raises(
        ValueError,
        match=r"unknown model.discriminator .multiscale.; choose one of pytorch_gan, basic, "
        "n_layers, pixel",
    ):
        build_discriminator("multiscale", 3, 4, 3, "instance")


def test_norm_factory_and_bias_rule() -> None:
    inst, bn, none = norm_layer("instance")(5), norm_layer("batch")(5), norm_layer("none")(5)
    assert isinstance(inst, nn.InstanceNorm2d) and not inst.affine and not inst.track_running_stats
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.track_running_stats
    assert isinstance(none, nn.Identity) and not list(none.state_dict())
    assert (conv_bias("instance"), conv_bias("batch"), conv_bias("none")) == (True, False, False)
    with pytest.raises(
        ValueError, match="unknown norm 'group'; choose one of instance, batch, none"
    ):
        norm_layer("group")


def _conv_stats(init_type: str, gain: float) -> tuple[torch.Tensor, nn.Module]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.Linear(300, 200))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(7.0)
    init_weights(net, init_type, gain)
    return net[0].weight.detach(), net


@pytest.mark.parametrize(
    ("init_type", "gain", "expected_std"),
    [
        ("normal", 0.02, 0.02),
        ("xavier", 0.5, 0.5 * math.sqrt(2 / (64 * 9 + 128 * 9))),
        ("kaiming", 0.02, math.sqrt(2 / (64 * 9))),  # the official kaiming ignores the gain
    ],
)
def test_init_types_have_the_official_scale(
    init_type: str, gain: float, expected_std: float
) -> None:
    w, net = _conv_stats(init_type, gain)
    assert w.mean().abs() < 0.1 * expected_std
    assert w.std().item() == pytest.approx(expected_std, rel=0.03)
    assert (
        torch.all(net[0].bias == 0) and torch.all(net[2].bias == 0) and torch.all(net[1].bias == 0)
    )
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.1 * gain + 0.01)


def test_orthogonal_init_gives_scaled_orthonormal_rows() -> None:
    w, _ = _conv_stats("orthogonal", 0.5)
    flat = w.flatten(1)  # (128, 576): rows orthogonal with norm = gain
    torch.testing.assert_close(flat @ flat.T, 0.25 * torch.eye(128), atol=1e-5, rtol=0)


def test_init_reaches_spectral_norm_weights_and_rejects_bad_input() -> None:
    net = add_spectral_norm(nn.Sequential(nn.Conv2d(3, 8, 3)))
    init_weights(net, "normal", 0.5)
    assert net[0].parametrizations.weight.original.std().item() == pytest.approx(0.5, rel=0.3)
    with pytest.raises(
        ValueError,
        match="unknown init_type 'uniform'; choose one of normal, xavier, kaiming, orthogonal",
    ):
        init_weights(net, "uniform")
    with pytest.raises(ValueError, match="init_gain must be > 0"):
        init_weights(net, "normal", 0.0)
