"""Building generators by name and refusing image sizes they cannot take, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cyclegan.parts.networks.choices import check_image_size
from cyclegan.parts.networks.factory import build_discriminator, build_generator
from cyclegan.parts.networks.init import init_weights
from cyclegan.parts.networks.resnet import Generator
from cyclegan.parts.networks.unet import UnetGenerator

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("name", "cls", "size"),
    [("resnet", Generator, 32), ("paper", Generator, 32), ("unet_128", UnetGenerator, 128)],
)
def test_build_generator_builds_what_the_name_says(name: str, cls: type, size: int) -> None:
    torch.manual_seed(0)
    G = build_generator(name, 3, 3, ngf=4, n_residual_blocks=1, norm="instance", use_dropout=False)
    init_weights(G, "normal", 0.3)
    assert isinstance(G, cls)
    w = next(m for m in G.modules() if isinstance(m, nn.Conv2d)).weight
    assert w.std().item() == pytest.approx(0.3, rel=0.2)  # the init ran with the asked gain
    assert G(torch.zeros(1, 3, size, size)).shape == (1, 3, size, size)


def test_unet_options_and_resnet_limits() -> None:
    G = build_generator(
        "unet_256", 1, 2, ngf=2, n_residual_blocks=0, norm="batch", use_dropout=True
    )
    assert (G.in_channels, G.out_channels, G.num_downs, G.norm) == (1, 2, 8, "batch")
    assert any(isinstance(m, nn.Dropout) for m in G.modules())
    with pytest.raises(ValueError, match=r"model.generator=resnet has no dropout"):
        build_generator("resnet", 3, 3, 8, 1, "instance", use_dropout=True)
    with pytest.raises(
        ValueError, match=r"unknown model.generator 'unet_512'; choose one of resnet, paper"
    ):
        build_generator("unet_512", 3, 3, 8, 1, "instance", False)


def test_image_size_checks_are_one_line_naming_the_fix() -> None:
    check_image_size(256, "unet_256", "basic", 3)
    check_image_size(128, "unet_128", "n_layers", 5)  # 128 / 32 - 2 = 2
    check_image_size(16, "resnet", "pixel", 9)  # the pixel discriminator takes any size
    cases = [
        (
            (128, "unet_256"),
            r"generator=unet_256 needs dataset\.img_size divisible by 256.*img_size=256",
        ),
        ((384, "unet_256"), r"got 384; set dataset\.img_size=256 or"),
        ((64, "unet_128"), r"divisible by 128"),
        ((64, "resnet", "n_layers", 5), r"n_layers_D=5 is too deep for 64x64 .*n_layers_D <= 4"),
        ((16, "paper", "basic"), r"n_layers_D=3 is too deep for 16x16 .*n_layers_D <= 2"),
    ]
    for args, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as e:
            check_image_size(*args)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("upsampling", ["nearest", "transposed"])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_resnet_generator_norms_follow_the_official_bias_rule(norm: str, upsampling: str) -> None:
    G = Generator(3, 4, 2, upsampling, norm)
    convs = [m for m in G.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    # Only the last conv keeps its bias (the official ResnetGenerator with batch/no norm).
    assert [m.bias is not None for m in convs] == [False] * (len(convs) - 1) + [True]
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert has_bn == (norm == "batch")
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in G.modules())
    assert G(torch.zeros(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    # The instance-norm default keeps today's layout: every conv has a bias.
    assert all(
        m.bias is not None
        for m in Generator(3, 4, 2, upsampling).modules()
        if isinstance(m, nn.Conv2d)
    )


# Official ResNet generators (--norm instance|batch|none) written by the official code, with the
# inputs and outputs it computed (tests/data/README.md).
OFFICIAL_BY_NORM = {
    "instance": ("official_latest_net_G_A_resnet6_ngf16.pth", "io.pt", 16),
    "batch": (
        "reference-layouts/official_G_resnet6_ngf4_batch.pth",
        "reference-layouts/io_reference_layouts.pt",
        4,
    ),
    "none": (
        "reference-layouts/official_G_resnet6_ngf4_none.pth",
        "reference-layouts/io_reference_layouts.pt",
        4,
    ),
}


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_importer_reads_the_norm_of_a_resnet_file(norm: str) -> None:
    from cyclegan.inference.importers import load_generator

    name, io_name, ngf = OFFICIAL_BY_NORM[norm]
    loaded = load_generator(DATA / name)
    assert loaded.spec.norm == norm and loaded.spec.variant == "paper"
    assert (loaded.spec.ngf, loaded.spec.n_residual_blocks) == (ngf, 6)
    io = torch.load(DATA / io_name, weights_only=True)[Path(name).stem]
    with torch.no_grad():  # eval mode: batch norm with the file's running statistics
        out = loaded.generator(io["input"])
    torch.testing.assert_close(out, io["output_eval"], atol=1e-5, rtol=1e-5)


def test_pytorch_gan_discriminator_takes_every_norm() -> None:
    for norm, norm_type in (("batch", nn.BatchNorm2d), ("none", nn.Identity)):
        D = build_discriminator("pytorch_gan", 3, 4, n_layers_D=3, norm=norm)
        assert sum(isinstance(m, norm_type) for m in D.modules()) == 3
        convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
        assert [m.bias is not None for m in convs] == [True, False, False, False, True]
        assert D(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 2, 2)
