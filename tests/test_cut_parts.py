"""CUT's parts against tensors written by running the reference code (tests/data/cut/README.md).

Every module is loaded strictly from the reference's state dicts and must reproduce the stored
outputs to 1e-5 (they agree bit for bit on the machine the fixtures were made on).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.config.schema import ConfigError, group_defaults
from cyclegan.inference.cut_weights import load_cut_generator
from cyclegan.methods.cut import CUT
from cyclegan.methods.cut_networks import CUTNetworks
from cyclegan.parts.nce.feature_taps import (
    CUT_NCE_LAYERS,
    DEFAULT_NCE_LAYERS,
    NCEConfigError,
    feature_channels,
    layers_with_fewer_positions,
    tap_features,
)
from cyclegan.parts.nce.generator_pass import (
    CUTGeneratorPass,
    NCESettings,
    generate_fakes,
    layer_nce,
)
from cyclegan.parts.nce.patch_sampler import PatchSampler, draw_patch_ids
from cyclegan.parts.nce.patchnce import patch_nce_loss
from cyclegan.parts.networks.antialias import Downsample, Upsample
from cyclegan.parts.networks.cut_discriminator import CUTNLayerDiscriminator
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.parts.networks.resnet import Generator

from .conftest import build_loss, network_spec

DATA = Path(__file__).parent / "data" / "cut"
TOL = {"atol": 1e-5, "rtol": 1e-5}
LAYERS = list(CUT_NCE_LAYERS)


def _sd(name: str) -> OrderedDict:
    return torch.load(DATA / f"{name}.pth", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def io() -> dict:
    return torch.load(DATA / "io_cut.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def G() -> CUTResnetGenerator:
    net = CUTResnetGenerator(ngf=16, n_blocks=9)
    net.load_state_dict(_sd("cut_G_resnet9_ngf16"), strict=True)
    return net


@pytest.fixture(scope="module")
def D() -> CUTNLayerDiscriminator:
    net = CUTNLayerDiscriminator(ndf=16, n_layers=3)
    net.load_state_dict(_sd("cut_D_basic_ndf16"), strict=True)
    return net


def _nce(preset: str = "cut", **changes: object) -> NCESettings:
    """The NCE settings of a preset: its method keys (conf/method) and loss keys (conf/loss)."""
    method, loss = group_defaults("method", preset), group_defaults("loss", preset)
    values = {
        "nce_layers": tuple(CUT_NCE_LAYERS),
        "num_patches": method["num_patches"],
        "nce_T": method["nce_T"],
        "all_negatives_from_minibatch": method["all_negatives_from_minibatch"],
        "lambda_NCE": loss["lambda_NCE"],
        "nce_idt": loss["nce_idt"],
    }
    return NCESettings(**{**values, **changes})  # type: ignore[arg-type]


def _sampler(G: CUTResnetGenerator, zero_bias: bool = False) -> PatchSampler:
    net = PatchSampler(G.feature_channels(LAYERS), nc=256)
    net.load_state_dict(_sd("cut_F_mlp_sample_nc256"), strict=True)
    if zero_bias:  # the reference's own init state of netF (only the biases were randomised)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
    return net


def _close(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, **TOL)


# ------------------------------------------------------------------------ strict loads, layout


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: CUTResnetGenerator(ngf=16), "cut_G_resnet9_ngf16"),
        (lambda: CUTNLayerDiscriminator(ndf=16), "cut_D_basic_ndf16"),
        (lambda: PatchSampler([3, 32, 64, 64, 64], nc=256), "cut_F_mlp_sample_nc256"),
    ],
)
def test_reference_state_dicts_load_strictly_into_the_same_names(build, name) -> None:
    net, sd = build(), _sd(name)
    assert set(net.state_dict()) == set(sd)  # same keys, nothing missing or extra
    net.load_state_dict(sd, strict=True)
    for key, value in net.state_dict().items():  # every tensor landed under its own name
        assert torch.equal(value, sd[key]), key


def test_blur_filters_are_persistent_buffers_with_the_reference_values() -> None:
    sd_G, sd_D = _sd("cut_G_resnet9_ngf16"), _sd("cut_D_basic_ndf16")
    G, D = CUTResnetGenerator(ngf=16), CUTNLayerDiscriminator(ndf=16)
    g_filts = {k for k in G.state_dict() if k.endswith("filt")}
    assert g_filts == {"model.7.filt", "model.11.filt", "model.21.filt", "model.25.filt"}
    assert {k for k in D.state_dict() if k.endswith("filt")} == {
        "model.2.filt",
        "model.6.filt",
        "model.10.filt",
    }
    for key in g_filts:  # freshly built, not loaded: the constants themselves must match
        assert torch.equal(G.state_dict()[key], sd_G[key]), key
    assert torch.equal(D.state_dict()["model.6.filt"], sd_D["model.6.filt"])
    down = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    up = torch.tensor([[1.0, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]) / 16
    assert torch.equal(G.model[7].filt[5, 0], down)
    assert torch.equal(G.model[21].filt[5, 0], up)


def test_antialias_modules_sizes_and_constant_images() -> None:
    x = torch.full((1, 4, 63, 63), 0.3)
    down = Downsample(4)(x)
    assert down.shape == (1, 4, 32, 32)  # 63 -> 32, and 64 -> 32
    assert Downsample(4)(torch.zeros(1, 4, 64, 64)).shape == (1, 4, 32, 32)
    torch.testing.assert_close(down, torch.full_like(down, 0.3))  # blur weights sum to 1
    up = Upsample(4)(torch.full((2, 4, 5, 7), -0.7))
    assert up.shape == (2, 4, 10, 14)
    torch.testing.assert_close(up, torch.full_like(up, -0.7))  # stride**2 scaling keeps the level
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # a horizontal ramp stays monotone
    assert (Upsample(1)(ramp)[0, 0, 4].diff() >= 0).all()


# ------------------------------------------------------------------------ generator, discriminator


def test_generator_outputs_match_reference_in_eval_and_train(G, io) -> None:
    ref = io["cut_G"]
    with torch.no_grad():
        G.eval()
        torch.testing.assert_close(G(ref["input"]), ref["output_eval"], **TOL)
        G.train()
        torch.testing.assert_close(G(ref["input"]), ref["output_train"], **TOL)
    G.eval()


def test_encode_features_match_reference_and_stop_at_last_layer(G, io) -> None:
    ref = io["cut_G"]
    assert ref["nce_layers"].tolist() == LAYERS
    ran: list[int] = []
    hooks = [m.register_forward_hook(lambda *_, i=i: ran.append(i)) for i, m in enumerate(G.model)]
    try:
        with torch.no_grad():
            feats = G.encode(ref["input"], LAYERS)
    finally:
        for h in hooks:
            h.remove()
    _close(feats, ref["encode_feats"])
    assert ran == list(range(17))  # the decoder (17..31) never ran
    assert [f.shape[1] for f in feats] == G.feature_channels(LAYERS) == [3, 32, 64, 64, 64]
    shapes = G.feature_shapes(LAYERS, 64, 64)
    assert shapes == [tuple(f.shape[1:]) for f in ref["encode_feats"]]


def test_tap_before_an_inplace_relu_is_the_norm_output(G, io) -> None:
    # Layer 2 is InstanceNorm, followed by ReLU(inplace=True): the tap must keep its negatives.
    with torch.no_grad():
        (norm_out,) = G.encode(io["cut_G"]["input"], [2])
        assert norm_out.min() < 0
        torch.testing.assert_close(norm_out.mean(dim=(2, 3)), torch.zeros(1, 16), atol=1e-5, rtol=0)


def test_discriminator_outputs_match_reference(D, io) -> None:
    ref = io["cut_D"]
    with torch.no_grad():
        D.eval()
        torch.testing.assert_close(D(ref["input"]), ref["output_eval"], **TOL)
        D.train()
        torch.testing.assert_close(D(ref["input"]), ref["output_train"], **TOL)
    assert CUTNLayerDiscriminator(ndf=8)(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("antialias", [True, False])
def test_channel_counts_without_running_match_a_real_pass(antialias) -> None:
    G = CUTResnetGenerator(ngf=4, n_blocks=2, antialias=antialias, antialias_up=antialias)
    layers = list(range(G.num_layers))
    with torch.no_grad():
        feats = G.encode(torch.randn(1, 3, 24, 24), layers)
    assert G.feature_channels(layers) == [f.shape[1] for f in feats]
    assert G.feature_shapes(layers, 24, 24) == [tuple(f.shape[1:]) for f in feats]
    # the same taps work on our CycleGAN generators (CUT can use model=resnet/paper too)
    ours = Generator(3, 4, 2, "nearest")
    assert feature_channels(ours.model, [0, 1, 4, 7, 8], 3) == [3, 4, 8, 16, 16]


def test_no_antialias_layout_is_the_official_cyclegan_generator() -> None:
    G = CUTResnetGenerator(ngf=8, n_blocks=6, antialias=False, antialias_up=False)
    official = torch.load(
        DATA.parent / "official_latest_net_G_A_resnet6_ngf16.pth", weights_only=True
    )
    keys = {k.replace(".filt", "") for k in G.state_dict()}
    assert keys == set(official)  # ours at ngf 8: the same names as the official ngf-16 file
    assert not any(k.endswith("filt") for k in G.state_dict())


# ------------------------------------------------------------------------ patch sampler


def test_sampler_with_given_ids_matches_reference(G, io) -> None:
    ref = io["cut_F"]
    with torch.no_grad():
        out, ids = _sampler(G)(ref["feats"], int(ref["num_patches"]), ref["patch_ids"])
        _close(out, ref["out"])
        assert all(
            a is b for a, b in zip(ids, ref["patch_ids"], strict=True)
        )  # reused, not redrawn
        out0, _ = _sampler(G, zero_bias=True)(ref["feats"], 256, ref["patch_ids"])
    _close(out0, ref["out_bias0"])  # the strong check of sampling order and the heads
    for o in out0:  # unit rows, just short of 1: the heads' outputs are tiny, 1e-7 is not
        norms = o.norm(dim=1)
        assert (norms < 1).all() and (norms > 0.99).all()


def test_sampler_batch_of_two_is_batch_major_with_shared_ids(G, io) -> None:
    ref = io["cut_F_b2"]
    feats = [torch.cat([f, torch.flip(f, [3])], 0) for f in io["cut_F"]["feats"]]
    with torch.no_grad():
        out, _ = _sampler(G, zero_bias=True)(feats, int(ref["num_patches"]), ref["patch_ids"])
    _close(out, ref["out_bias0"])
    assert out[1].shape == (32, 256)  # 16 patches of image 0, then 16 of image 1


def test_sampler_draws_ids_from_the_given_generator(G, io) -> None:
    feats = io["cut_F"]["feats"]
    sampler = _sampler(G, zero_bias=True)
    with torch.no_grad():
        out_a, ids_a = sampler(feats, 64, generator=torch.Generator().manual_seed(7))
        out_b, ids_b = sampler(feats, 64, generator=torch.Generator().manual_seed(7))
        _, ids_c = sampler(feats, 64, generator=torch.Generator().manual_seed(8))
    for a, b, f in zip(ids_a, ids_b, feats, strict=True):
        assert torch.equal(a, b) and a.dtype == torch.long
        assert len(set(a.tolist())) == 64 and a.min() >= 0 and a.max() < f.shape[2] * f.shape[3]
    _close(out_a, out_b)
    assert not torch.equal(ids_a[1], ids_c[1])
    expected = torch.randperm(64 * 64, generator=torch.Generator().manual_seed(7))
    assert torch.equal(
        ids_a[0], torch.randperm(70 * 70, generator=torch.Generator().manual_seed(7))[:64]
    )
    assert not torch.equal(ids_a[1], expected[:64])  # one draw per layer, in order
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        sampler(feats, 64)


def test_sampler_heads_exist_before_any_forward() -> None:
    sampler = PatchSampler([3, 32, 64], nc=16)
    shapes = {k: tuple(v.shape) for k, v in sampler.state_dict().items()}
    assert shapes["mlp_1.0.weight"] == (16, 32) and shapes["mlp_2.2.weight"] == (16, 16)
    assert sum(p.numel() for p in sampler.parameters()) == sum(
        c * 16 + 16 + 16 * 16 + 16 for c in (3, 32, 64)
    )


# ------------------------------------------------------------------------ PatchNCE


@pytest.mark.parametrize(
    ("entry", "all_negatives"),
    [("patchnce_b1", False), ("patchnce_b2", False), ("patchnce_b2_all_negatives", True)],
)
def test_patchnce_matches_reference(io, entry, all_negatives) -> None:
    ref = io[entry]
    loss = patch_nce_loss(
        ref["feat_q"], ref["feat_k"], int(ref["batch_size"]), float(ref["nce_T"]), all_negatives
    )
    assert loss.shape == ref["loss"].shape
    torch.testing.assert_close(loss, ref["loss"], **TOL)


def test_patchnce_closed_form_with_masked_diagonal() -> None:
    # Two orthonormal patches, q = k: l_pos = 1, the other negative 0, the own slot masked at -10.
    q = torch.eye(2, 4)
    loss = patch_nce_loss(q, q.clone(), images=1, nce_T=1.0)
    expected = -1 + torch.log(torch.e + torch.exp(torch.tensor(-10.0)) + 1)
    torch.testing.assert_close(loss, expected.repeat(2), atol=1e-6, rtol=0)


def test_patchnce_gradient_flows_through_queries_only(io) -> None:
    ref = io["patchnce_b2"]
    q = ref["feat_q"].clone().requires_grad_()
    k = ref["feat_k"].clone().requires_grad_()
    patch_nce_loss(q, k, images=2).mean().backward()
    assert k.grad is None and q.grad is not None and q.grad.abs().sum() > 0


def test_patchnce_negatives_stay_within_each_image(io) -> None:
    ref = io["patchnce_b2"]
    q, k = ref["feat_q"], ref["feat_k"].clone()
    base = patch_nce_loss(q, k, images=2)
    k[32:] = torch.randn(32, 256)  # image 1's keys change: image 0's losses must not
    changed = patch_nce_loss(q, k, images=2)
    torch.testing.assert_close(changed[:32], base[:32], atol=0, rtol=0)
    assert not torch.allclose(changed[32:], base[32:])


# ------------------------------------------------------------------------ end to end


@pytest.mark.parametrize(
    ("entry", "zero_bias"), [("cut_losses", False), ("cut_losses_F_bias0", True)]
)
def test_cut_losses_end_to_end_from_stored_patch_ids(G, D, io, entry, zero_bias) -> None:
    ref = io[entry]
    settings = _nce(lambda_NCE=float(ref["lambda_NCE"]), num_patches=int(ref["num_patches"]))
    loss = build_loss("cut", lambda_GAN=float(ref["lambda_GAN"]))
    # the fixture ran the reference's CUT preset
    assert settings == _nce() and loss.lambda_GAN == group_defaults("loss", "cut")["lambda_GAN"]
    g_pass = CUTGeneratorPass(G, _sampler(G, zero_bias), settings)
    G.train(), D.train()
    stored_ids = {"NCE": ref["patch_ids_NCE"], "NCE_Y": ref["patch_ids_NCE_Y"]}
    with torch.no_grad():
        fake_B, idt_B, losses, ids = g_pass(ref["real_A"], ref["real_B"], patch_ids=stored_ids)
        torch.testing.assert_close(fake_B, ref["fake_B"], **TOL)
        torch.testing.assert_close(idt_B, ref["idt_B"], **TOL)
        torch.testing.assert_close(D(fake_B), ref["pred_fake"], **TOL)
        torch.testing.assert_close(D(ref["real_B"]), ref["pred_real"], **TOL)
        losses.update(loss.adversarial.discriminator_terms(D, ref["real_B"], fake_B))
        losses["loss_G_GAN"] = loss.generator_gan(D(fake_B))
    losses["loss_G"] = loss.generator_total(
        losses["loss_G_GAN"], losses["loss_NCE"], losses["loss_NCE_Y"]
    )
    for name in (
        "loss_D_fake",
        "loss_D_real",
        "loss_D",
        "loss_G_GAN",
        "loss_NCE",
        "loss_NCE_Y",
        "loss_G",
    ):
        torch.testing.assert_close(losses[name], ref[name], **TOL, msg=name)
    assert all(a is b for a, b in zip(ids["NCE_Y"], ref["patch_ids_NCE_Y"], strict=True))


def test_generator_pass_draws_ids_in_reference_order(G, io) -> None:
    ref = io["cut_losses"]
    g_pass = CUTGeneratorPass(G, _sampler(G, zero_bias=True), _nce(num_patches=16))
    with torch.no_grad():
        _, _, first, ids = g_pass(
            ref["real_A"], ref["real_B"], rng=torch.Generator().manual_seed(3)
        )
        _, _, again, _ = g_pass(ref["real_A"], ref["real_B"], rng=torch.Generator().manual_seed(3))
    rng = torch.Generator().manual_seed(3)
    sizes = [(70, 70), (64, 64), (32, 32), (16, 16), (16, 16)]
    nce_ids, nce_y_ids = draw_patch_ids(sizes, 16, rng), draw_patch_ids(sizes, 16, rng)
    assert all(torch.equal(a, b) for a, b in zip(ids["NCE"], nce_ids, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(ids["NCE_Y"], nce_y_ids, strict=True))
    assert first == again


def test_keys_without_graph_give_the_reference_gradients(io) -> None:
    # The pass encodes the source images under no_grad; the reference keeps their graph and
    # detaches later. Gradients of G and F must be the same.
    torch.manual_seed(0)
    G = CUTResnetGenerator(ngf=4, n_blocks=2)
    F = PatchSampler(G.feature_channels(LAYERS), nc=8)
    settings = _nce(num_patches=8)
    real_A = io["cut_losses"]["real_A"][..., :32, :32]
    real_B = io["cut_losses"]["real_B"][..., :32, :32]
    g_pass = CUTGeneratorPass(G, F, settings)
    _, _, nce, ids = g_pass(real_A, real_B, rng=torch.Generator().manual_seed(1))
    (nce["loss_NCE"] + nce["loss_NCE_Y"]).backward()
    ours = [p.grad.clone() for p in (*G.parameters(), *F.parameters())]
    G.zero_grad(), F.zero_grad()
    fake_B, idt_B = generate_fakes(G, real_A, real_B, nce_idt=True)
    total = 0
    for name, src, tgt in (("NCE", real_A, fake_B), ("NCE_Y", real_B, idt_B)):
        loss, _ = layer_nce(
            F, G.encode(tgt, LAYERS), G.encode(src, LAYERS), settings, patch_ids=ids[name]
        )
        total = total + loss
    total.backward()
    reference = [p.grad for p in (*G.parameters(), *F.parameters())]
    assert all(g.abs().sum() > 0 for g in ours[-4:])  # F is trained by the NCE loss
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)


def test_fastcut_preset_flips_and_flips_the_queries_back(G, io) -> None:
    settings = _nce("fastcut", num_patches=32)
    assert (settings.lambda_NCE, settings.nce_idt) == (10.0, False)
    assert group_defaults("method", "fastcut")["flip_equivariance"] is True
    real_A, real_B = io["cut_losses"]["real_A"], io["cut_losses"]["real_B"]
    sampler = _sampler(G, zero_bias=True)
    g_pass = CUTGeneratorPass(G, sampler, settings)
    one_setting = _nce("fastcut", num_patches=32, lambda_NCE=1.0)
    with torch.no_grad():
        fake_B, idt_B, nce, ids = g_pass(
            real_A, real_B, flipped=True, rng=torch.Generator().manual_seed(0)
        )
        torch.testing.assert_close(fake_B, G(torch.flip(real_A, [3])), atol=0, rtol=0)
        feat_q = G.encode(fake_B, LAYERS)
        feat_k = G.encode(real_A, LAYERS)
        flipped_back = [torch.flip(f, [3]) for f in feat_q]
        back, _ = layer_nce(sampler, flipped_back, feat_k, settings, patch_ids=ids["NCE"])
        unflipped, _ = layer_nce(sampler, feat_q, feat_k, settings, patch_ids=ids["NCE"])
        one, _ = layer_nce(sampler, flipped_back, feat_k, one_setting, patch_ids=ids["NCE"])
    assert idt_B is None and set(ids) == {"NCE"} and nce["loss_NCE_Y"] == 0
    torch.testing.assert_close(nce["loss_NCE"], back, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(nce["loss_NCE"], unflipped)
    torch.testing.assert_close(nce["loss_NCE"], 10 * one, atol=1e-5, rtol=1e-6)  # lambda_NCE = 10
    total = build_loss("fastcut").generator_total(
        torch.tensor(0.5), nce["loss_NCE"], nce["loss_NCE_Y"]
    )
    torch.testing.assert_close(total, 0.5 + nce["loss_NCE"])


def test_no_sampler_when_lambda_nce_is_zero(G, io) -> None:
    g_pass = CUTGeneratorPass(G, None, _nce(lambda_NCE=0.0))
    assert g_pass.F is None and not any(n.startswith("F.") for n, _ in g_pass.named_parameters())
    with torch.no_grad():
        _, _, nce, ids = g_pass(io["cut_losses"]["real_A"], io["cut_losses"]["real_B"])
    assert ids == {} and nce["loss_NCE"] == 0 and nce["loss_NCE_Y"] == 0


# ------------------------------------------------------------------------ bad input


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([0, 4, 32], r"\[32\] outside the generator \(layers 0\.\.31\)"),
        ([4, 0], "strictly increasing"),
        ([], "empty"),
    ],
)
def test_bad_nce_layers_one_line(G, layers, match) -> None:
    with pytest.raises(NCEConfigError, match=match) as exc:
        G.feature_channels(layers)
    _one_line(exc)
    assert issubclass(NCEConfigError, ValueError)


def test_maps_with_fewer_positions_than_num_patches_use_all_of_theirs(G) -> None:
    # The reference's rule: min(num_patches, H*W) positions per layer, so small crops work.
    shapes = G.feature_shapes(LAYERS, 32, 32)  # layers 12 and 16 are 8x8 = 64 positions
    assert layers_with_fewer_positions(shapes, LAYERS, 256) == {12: 64, 16: 64}
    assert layers_with_fewer_positions(shapes, LAYERS, 64) == {}  # fits exactly
    sampler = PatchSampler([3, 32, 64, 64, 64], nc=8)
    feats = [torch.zeros(1, c, s, s) for c, s in [(3, 38), (32, 32), (64, 16), (64, 8), (64, 8)]]
    pooled, ids = sampler(feats, 100, generator=torch.Generator().manual_seed(0))
    assert [len(i) for i in ids] == [100, 100, 100, 64, 64]
    assert [p.shape[0] for p in pooled] == [100, 100, 100, 64, 64]
    assert sorted(ids[3].tolist()) == list(range(64))  # every position, once
    drawn = draw_patch_ids([(4, 4)], 17, torch.Generator())[0]
    assert sorted(drawn.tolist()) == list(range(16))
    with pytest.raises(NCEConfigError, match="positive integer") as exc:
        layers_with_fewer_positions(shapes, LAYERS, 0)
    _one_line(exc)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"lambda_NCE": -1.0}, r"^loss.lambda_NCE=-1\.0: loss weights must be >= 0"),
        ({"lambda_GAN": -0.5}, r"^loss.lambda_GAN=-0\.5: loss weights must be >= 0"),
    ],
)
def test_bad_loss_weights_one_line(changes, match) -> None:
    with pytest.raises(ValueError, match=match) as exc:
        build_loss("cut", **changes)
    _one_line(exc)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"nce_T": 0.0}, r"^method.nce_T=0\.0: must be > 0"),
        ({"num_patches": 0}, r"^method.num_patches=0: use a positive integer"),
    ],
)
def test_bad_nce_settings_one_line(changes, match) -> None:
    settings = {**group_defaults("method", "cut"), **changes}
    with pytest.raises(ConfigError, match=match) as exc:
        CUT.check_settings(settings, build_loss("cut"), network_spec("cut"), (3, 3), 64)
    _one_line(exc)


def test_image_too_small_for_the_generator_is_one_line(G) -> None:
    with pytest.raises(NCEConfigError, match="too small") as exc:
        G.feature_shapes(LAYERS, 2, 2)
    _one_line(exc)


# ------------------------------------------------------------------------ importer


def test_importer_reads_cpu_trained_file_with_module_prefix(tmp_path, io) -> None:
    sd = _sd("cut_G_resnet9_ngf16")
    path = tmp_path / "latest_net_G.pth"
    torch.save(OrderedDict((f"module.{k}", v) for k, v in sd.items()), path)
    G = load_cut_generator(path)
    assert (G.ngf, G.n_blocks, G.antialias, G.antialias_up) == (16, 9, True, True)
    assert not G.training
    with torch.no_grad():
        torch.testing.assert_close(G(io["cut_G"]["input"]), io["cut_G"]["output_eval"], **TOL)
    for key, value in G.state_dict().items():
        assert torch.equal(value, sd[key]), key


def test_importer_fills_missing_filters_and_rejects_wrong_ones(tmp_path) -> None:
    sd = _sd("cut_G_resnet9_ngf16")
    no_filt = tmp_path / "no_filt.pth"
    torch.save({k: v for k, v in sd.items() if not k.endswith("filt")}, no_filt)
    assert load_cut_generator(no_filt).n_blocks == 9
    bad = dict(sd)
    bad["model.21.filt"] = torch.ones_like(bad["model.21.filt"])
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(
        CheckpointError, match=r"model\.21\.filt is not CUT's fixed blur filter"
    ) as exc:
        load_cut_generator(tmp_path / "bad.pth")
    _one_line(exc)


@pytest.mark.parametrize(
    ("antialias", "antialias_up", "n_blocks"),
    list(itertools.product([True, False], [True, False], [2])),
)
def test_importer_infers_every_layout(tmp_path, antialias, antialias_up, n_blocks) -> None:
    torch.manual_seed(0)
    G = CUTResnetGenerator(
        3, 1, ngf=4, n_blocks=n_blocks, antialias=antialias, antialias_up=antialias_up
    )
    torch.save(G.state_dict(), tmp_path / "g.pth")
    loaded = load_cut_generator(tmp_path / "g.pth")
    assert (loaded.antialias, loaded.antialias_up, loaded.n_blocks, loaded.out_channels) == (
        antialias,
        antialias_up,
        n_blocks,
        1,
    )
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), G.eval()(x), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("name", "match"),
    [("cut_F_mlp_sample_nc256", "patch sampler"), ("cut_D_basic_ndf16", "discriminator")],
)
def test_importer_rejects_other_networks_in_one_line(name, match) -> None:
    with pytest.raises(CheckpointError, match=match) as exc:
        load_cut_generator(DATA / f"{name}.pth")
    _one_line(exc)


# ------------------------------------------------------------------------ the container


@pytest.mark.parametrize("variant", ["cut", "resnet", "paper"])
def test_container_builds_sampler_eagerly_from_the_generator(variant) -> None:
    torch.manual_seed(0)
    spec = network_spec(variant, ngf=4, ndf=4, n_residual_blocks=5, init_type="xavier")
    nets = CUTNetworks(spec, 3, 3, DEFAULT_NCE_LAYERS[variant], netF_nc=8, use_sampler=True)
    assert {k.split(".")[0] for k in nets.state_dict()} == {"G", "D", "F"}
    with torch.no_grad():
        feats = tap_features(nets.G.model, torch.zeros(1, 3, 32, 32), nets.nce_layers)
    assert list(nets.F.in_channels) == [f.shape[1] for f in feats]
    # the taps sit at the same places in every variant: input, two downsamplings, blocks 1 and 5
    shapes = [tuple(f.shape[1:]) for f in feats]
    if variant == "cut":  # conv at full size, then blur-downsample
        assert shapes == [(3, 38, 38), (8, 32, 32), (16, 16, 16), (16, 8, 8), (16, 8, 8)]
    else:  # stride-2 convs
        assert shapes == [(3, 38, 38), (8, 16, 16), (16, 8, 8), (16, 8, 8), (16, 8, 8)]
    assert all(torch.count_nonzero(m.bias) == 0 for m in nets.F.modules() if hasattr(m, "bias"))
    w = nets.F.mlp_0[2].weight  # xavier_normal, gain 0.02: std = 0.02 * sqrt(2 / (8 + 8))
    assert 0.3 * 0.02 * (2 / 16) ** 0.5 < w.std() < 3 * 0.02 * (2 / 16) ** 0.5


def test_container_without_sampler_and_bad_layers() -> None:
    spec = network_spec("cut", ngf=4, ndf=4, n_residual_blocks=5)
    nets = CUTNetworks(spec, 3, 3, (0, 4, 8, 12, 16), netF_nc=8, use_sampler=False)
    assert nets.F is None and not any(k.startswith("F.") for k in nets.state_dict())
    spec = network_spec("resnet", ngf=4, ndf=4, n_residual_blocks=2)
    with pytest.raises(
        NCEConfigError, match=r"\[28\] outside the generator \(layers 0\.\.22\)"
    ) as exc:
        CUTNetworks(spec, 3, 3, (0, 4, 28), netF_nc=8, use_sampler=True)
    _one_line(exc)
