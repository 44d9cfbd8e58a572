"""Importers: every generator format loads into our Generator and reproduces the reference outputs."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import CheckpointError, save_checkpoint
from cyclegan.inference.importers import (
    Direction,
    Format,
    GeneratorSpec,
    infer_spec,
    load_generator,
    read_weights,
)
from cyclegan.methods.cyclegan_networks import CycleGANNetworks

from .conftest import build_networks

DATA = Path(__file__).parent / "data"

# fixture file -> (its io.pt entry, detected format, expected architecture, legacy keys dropped)
GENERATOR_FIXTURES = {
    "pytorch_gan_G_AB_blocks1": (
        "pytorch_gan_G_AB_blocks1",
        Format.pytorch_gan,
        GeneratorSpec(3, 64, 1, "nearest"),
        0,
    ),
    "official_latest_net_G_A_resnet6_ngf16": (
        "official_latest_net_G_A_resnet6_ngf16",
        Format.official,
        GeneratorSpec(3, 16, 6, "transposed"),
        0,
    ),
    "official_latest_net_G_A_resnet6_ngf16_legacy": (
        "official_latest_net_G_A_resnet6_ngf16",
        Format.official,
        GeneratorSpec(3, 16, 6, "transposed"),
        51,  # running_mean, running_var, num_batches_tracked of 17 InstanceNorm layers
    ),
}


@pytest.fixture(scope="module")
def reference_io() -> dict:
    return torch.load(DATA / "io.pt", weights_only=True)


def _outputs(generator: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        generator.eval()
        out_eval = generator(x)
        generator.train()
        out_train = generator(x)
        generator.eval()
    return out_eval, out_train


@pytest.mark.parametrize("name", sorted(GENERATOR_FIXTURES))
def test_foreign_generators_reproduce_reference_outputs(name: str, reference_io: dict) -> None:
    io_key, fmt, spec, n_dropped = GENERATOR_FIXTURES[name]
    loaded = load_generator(DATA / f"{name}.pth")
    assert loaded.format is fmt
    assert loaded.spec == spec
    assert len(loaded.dropped_keys) == n_dropped
    assert all(
        k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")
        for k in loaded.dropped_keys
    )
    assert loaded.direction is None  # foreign files do not say which way they translate
    # Every tensor landed in the layer of the same name (the outputs cannot see most biases).
    state = torch.load(DATA / f"{name}.pth", weights_only=True)
    for key, value in loaded.generator.state_dict().items():
        assert torch.equal(value, state[key]), key
    io = reference_io[io_key]
    out_eval, out_train = _outputs(loaded.generator, io["input"])
    torch.testing.assert_close(out_eval, io["output_eval"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_train, io["output_train"], atol=1e-5, rtol=1e-5)


def test_dataparallel_and_compile_prefixes_are_stripped(tmp_path: Path, reference_io: dict) -> None:
    state = torch.load(DATA / "official_latest_net_G_A_resnet6_ngf16_legacy.pth", weights_only=True)
    wrapped = OrderedDict((f"module._orig_mod.{k}", v) for k, v in state.items())
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(wrapped, path)
    loaded = load_generator(path)
    assert loaded.format is Format.official and len(loaded.dropped_keys) == 51
    io = reference_io["official_latest_net_G_A_resnet6_ngf16"]
    out_eval, _ = _outputs(loaded.generator, io["input"])
    torch.testing.assert_close(out_eval, io["output_eval"], atol=1e-5, rtol=1e-5)


def _tiny_checkpoint(
    path: Path, variant: str = "resnet", with_config: bool = True
) -> CycleGANNetworks:
    torch.manual_seed(0)
    model = build_networks(variant, n_residual_blocks=2, ngf=8, ndf=8)
    with torch.no_grad():  # non-zero biases, so a mixed-up tensor would show in the outputs
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    config = {"model": {"variant": variant, "ngf": 8, "n_residual_blocks": 2, "channels": 3}}
    state = {"model": model.state_dict(), "epoch": 3, "step": 30}
    if with_config:
        state["config"] = config
    save_checkpoint(path, state)
    return model


@pytest.mark.parametrize("variant", ["resnet", "paper"])
@pytest.mark.parametrize("with_config", [True, False])
def test_training_checkpoint_gives_either_direction(
    tmp_path: Path, variant: str, with_config: bool
) -> None:
    model = _tiny_checkpoint(tmp_path / "last.pt", variant, with_config)
    if not with_config:  # our checkpoints are rebuilt from what they record, never guessed
        with pytest.raises(CheckpointError, match="records neither the method that trained it"):
            read_weights(tmp_path / "last.pt")
        torch.save(model.state_dict(), tmp_path / "bare.pth")  # a bare state dict: foreign
        assert read_weights(tmp_path / "bare.pth").directions == (Direction.AtoB, Direction.BtoA)
        return
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    weights = read_weights(tmp_path / "last.pt")
    assert weights.format is Format.checkpoint
    assert weights.meta["step"] == 30
    for direction, reference in ((Direction.AtoB, model.G_AB), (Direction.BtoA, model.G_BA)):
        loaded = load_generator(tmp_path / "last.pt", direction)
        assert loaded.direction is direction
        assert loaded.spec == GeneratorSpec(
            3, 8, 2, "nearest" if variant == "resnet" else "transposed"
        )
        with torch.no_grad():
            assert torch.equal(loaded.generator(x), reference.eval()(x))
    assert load_generator(tmp_path / "last.pt").direction is Direction.AtoB  # the default


def test_discriminator_file_is_refused_with_a_hint() -> None:
    with pytest.raises(CheckpointError, match="looks like a discriminator"):
        load_generator(DATA / "pytorch_gan_D_A.pth")


def test_wrong_override_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"do not fit a resnet generator with ngf=32") as err:
        load_generator(DATA / "pytorch_gan_G_AB_blocks1.pth", ngf=32)
    assert "\n" not in str(err.value)


def test_override_of_block_count_is_used(tmp_path: Path) -> None:
    # Forcing 2 blocks on a 1-block file must fail (missing keys), proving the override is applied.
    with pytest.raises(CheckpointError, match="2 blocks"):
        load_generator(DATA / "pytorch_gan_G_AB_blocks1.pth", n_residual_blocks=2)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "G_AB_3.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        load_generator(bad)
    with pytest.raises(FileNotFoundError, match="check the ckpt= path"):
        load_generator(tmp_path / "missing.pth")


def test_infer_spec_rejects_dropout_blocks() -> None:
    state = torch.load(DATA / "official_latest_net_G_A_resnet6_ngf16.pth", weights_only=True)
    state["model.10.conv_block.6.weight"] = torch.zeros(64, 64, 3, 3)
    with pytest.raises(CheckpointError, match="dropout"):
        infer_spec(state)
