"""The official U-Net: strict loads of official state dicts and their outputs to 1e-5."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cyclegan.parts.networks.norms import Norm
from cyclegan.parts.networks.unet import (
    UnetGenerator,
    infer_unet_spec,
    is_unet_state_dict,
    unet,
)

DATA = Path(__file__).parent / "data" / "unet"
TOL = {"atol": 1e-5, "rtol": 1e-5}


def load(name: str) -> dict[str, torch.Tensor]:
    return torch.load(DATA / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def io() -> dict:
    return load("io_unet.pt")


def test_instance_unet_matches_official(io: dict) -> None:
    sd = load("official_G_unet128_ngf8.pth")
    net = unet("unet_128", ngf=8, norm="instance")
    net.load_state_dict(sd, strict=True)
    # Every tensor landed where the file put it (the outputs alone cannot see most biases).
    for key, value in net.state_dict().items():
        assert torch.equal(value, sd[key]), key
    ref = io["official_unet"]
    with torch.no_grad():
        net.eval()
        out_eval = net(ref["input"])
        net.train()
        out_train = net(ref["input"])
    torch.testing.assert_close(out_eval, ref["output_eval"], **TOL)
    torch.testing.assert_close(out_train, ref["output_train"], **TOL)


def test_batchnorm_dropout_unet_matches_official(io: dict) -> None:
    sd = load("official_G_unet128_ngf4_batch_dropout.pth")
    net = unet("unet_128", ngf=4, norm="batch", use_dropout=True)
    net.load_state_dict(sd, strict=True)
    ref = io["official_unet_bn"]
    x = ref["input"]
    with torch.no_grad():
        net.eval()
        torch.testing.assert_close(net(x), ref["output_eval"], **TOL)
        # Train mode with batch statistics but dropout off, as the reference recorded it.
        net.train()
        dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
        assert len(dropouts) == 7 - 5  # only the middle 8ngf levels
        for m in dropouts:
            m.eval()
        out = net(x)
    torch.testing.assert_close(out, ref["output_train_bn_only"], **TOL)
    stats = net.state_dict()
    expected = ref["running_stats_after_train"]
    assert (
        len(expected) == 3 * 11
    )  # 11 BatchNorms (2 per middle level, 1 innermost), 3 buffers each
    for key, value in expected.items():
        torch.testing.assert_close(stats[key], value, **TOL)


def test_official_bias_rule_and_layout() -> None:
    bn = UnetGenerator(3, 3, 7, 4, norm="batch", use_dropout=True)
    # Only the outermost transposed conv carries a bias next to batch norms (+ the norms' shifts).
    conv_biases = [
        k
        for k, m in bn.named_modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) and m.bias is not None
    ]
    assert conv_biases == ["model.model.3"]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in bn.modules()) == 11
    inst = UnetGenerator(3, 3, 7, 4, norm="instance")
    convs = [m for m in inst.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert len(convs) == 14 and all(m.bias is not None for m in convs)
    none = UnetGenerator(3, 3, 7, 4, norm="none")
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d | torch.nn.InstanceNorm2d) for m in none.modules()
    )


def test_separate_channels_and_unet_256_shapes() -> None:
    net = unet("unet_256", in_channels=1, out_channels=2, ngf=2, norm="instance")
    assert net.num_downs == 8 and net.size_multiple == 256
    y = net(torch.randn(1, 1, 256, 256))
    assert y.shape == (1, 2, 256, 256) and y.abs().max() <= 1
    assert net.model.model[0].in_channels == 1


def test_size_checks_name_the_fix() -> None:
    net = unet("unet_256", ngf=2)
    net.check_input_size(512)
    with pytest.raises(
        ValueError, match=r"unet_256 needs image sides divisible by 256.*dataset\.img_size"
    ) as e:
        net.check_input_size(128)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="divisible by 128"):
        unet("unet_128", ngf=2).check_input_size(128, 200)
    with pytest.raises(ValueError, match="unknown U-Net 'unet_64'"):
        unet("unet_64")
    with pytest.raises(ValueError, match="num_downs >= 5"):
        UnetGenerator(num_downs=4)
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        unet("unet_128", norm="layer")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("official_G_unet128_ngf8.pth", (3, 3, 7, 8, Norm.instance)),
        ("official_G_unet128_ngf4_batch_dropout.pth", (3, 3, 7, 4, Norm.batch)),
    ],
)
def test_infer_spec_from_official_files(name: str, expected: tuple) -> None:
    sd = load(name)
    assert is_unet_state_dict(sd)
    spec = infer_unet_spec(sd)
    assert (spec.in_channels, spec.out_channels, spec.num_downs, spec.ngf, spec.norm) == expected
    spec.build().load_state_dict(sd, strict=True)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_infer_spec_round_trip(norm: str) -> None:
    net = UnetGenerator(2, 1, 8, 2, norm=norm)
    spec = infer_unet_spec(net.state_dict())
    assert (spec.in_channels, spec.out_channels, spec.num_downs, spec.ngf, spec.norm) == (
        2,
        1,
        8,
        2,
        Norm(norm),
    )
    assert not is_unet_state_dict({"model.1.weight": torch.zeros(1)})
