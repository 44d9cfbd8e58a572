"""Architectures: shapes, parameter counts, and exact equivalence with the reference implementations."""

from pathlib import Path

import pytest
import torch

from cyclegan.parts.networks.factory import count_parameters
from cyclegan.parts.networks.init import init_weights
from cyclegan.parts.networks.patchgan import NLayerDiscriminator, PyTorchGANDiscriminator
from cyclegan.parts.networks.resnet import Generator

from .conftest import build_networks

DATA = Path(__file__).parent / "data"

# File stem -> our module that must load it strictly (architecture facts from the fixtures' README).
REFERENCE_MODELS = {
    "pytorch_gan_G_AB_blocks1": lambda: Generator(
        3, ngf=64, n_residual_blocks=1, upsampling="nearest"
    ),
    "pytorch_gan_D_A": lambda: PyTorchGANDiscriminator(3, ndf=64, norm="instance"),
    "official_latest_net_G_A_resnet6_ngf16": lambda: Generator(
        3, ngf=16, n_residual_blocks=6, upsampling="transposed"
    ),
    "official_latest_net_D_A_ndf16": lambda: NLayerDiscriminator(3, ndf=16, n_layers=3),
}


@pytest.fixture(scope="module")
def reference_io() -> dict:
    return torch.load(DATA / "io.pt", weights_only=True)


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_reference_checkpoint_loads_strictly_and_reproduces_outputs(
    name: str, reference_io: dict
) -> None:
    model = REFERENCE_MODELS[name]()
    state = torch.load(DATA / f"{name}.pth", weights_only=True)
    model.load_state_dict(state, strict=True)
    # Every tensor lands in the layer of the same name (outputs alone cannot see most biases).
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    io = reference_io[name]
    with torch.no_grad():
        model.eval()
        out_eval = model(io["input"])
        model.train()
        out_train = model(io["input"])
    assert out_eval.shape == io["output_eval"].shape
    torch.testing.assert_close(out_eval, io["output_eval"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_train, io["output_train"], atol=1e-5, rtol=1e-5)


def test_formats_do_not_cross_load() -> None:
    official = torch.load(DATA / "official_latest_net_G_A_resnet6_ngf16.pth", weights_only=True)
    with pytest.raises(RuntimeError, match="Missing key"):
        Generator(3, ngf=16, n_residual_blocks=6, upsampling="nearest").load_state_dict(official)


@pytest.mark.parametrize("variant", ["resnet", "paper"])
def test_parameter_counts_at_full_size(variant: str) -> None:
    model = build_networks(variant, n_residual_blocks=9, ngf=64, ndf=64)
    # The original paper's 9-block generator at ngf 64 has 11,378,179 parameters; PyTorch-GAN's has
    # the same (nearest+conv and transposed conv have equal weight shapes). Both 70x70-style
    # discriminators at ndf 64 have 2,764,737.
    assert count_parameters(model.G_AB) == 11_378_179
    assert count_parameters(model.D_A) == 2_764_737
    assert count_parameters(model) == 2 * (11_378_179 + 2_764_737)


def test_parameter_count_scales_with_blocks_and_width() -> None:
    one = count_parameters(Generator(3, 64, 1))
    two = count_parameters(Generator(3, 64, 2))
    assert two - one == 2 * (256 * 256 * 9 + 256)  # one block: two 3x3 convs at 4*ngf channels
    assert count_parameters(Generator(3, 32, 1)) < one / 3


@pytest.mark.parametrize(
    ("variant", "size", "score_map"),
    [
        ("resnet", 256, 16),
        ("resnet", 64, 4),
        ("paper", 256, 30),
        ("paper", 64, 6),
        ("paper", 128, 14),
    ],
)
def test_output_shapes(variant: str, size: int, score_map: int) -> None:
    model = build_networks(variant, n_residual_blocks=1, ngf=8, ndf=8)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        fake = model.G_AB(x)
        score = model.D_B(fake)
    assert fake.shape == x.shape
    assert fake.abs().max() <= 1.0  # tanh output range
    assert score.shape == (2, 1, score_map, score_map)
    assert model.D_B.output_shape(size, size) == (1, score_map, score_map)


def test_generator_handles_non_square_inputs() -> None:
    g = Generator(3, 8, 2)
    with torch.no_grad():
        assert g(torch.zeros(1, 3, 64, 96)).shape == (1, 3, 64, 96)


def test_init_is_normal_0_002_with_zero_bias() -> None:
    torch.manual_seed(0)
    g = Generator(3, 64, 2)
    init_weights(g, "normal", 0.02)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    biases = torch.cat([m.bias.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    assert torch.count_nonzero(biases) == 0


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="n_residual_blocks"):
        Generator(3, 64, -1)  # 0 blocks is allowed, as in both references
    with pytest.raises(ValueError, match="upsampling"):
        Generator(3, 64, 1, upsampling="bilinear")
    with pytest.raises(FileNotFoundError, match="unet"):  # no such model option
        build_networks("unet")
