"""Read the generator of a CUT/FastCUT checkpoint from the reference code into `CUTResnetGenerator`.

The reference (taesungp/contrastive-unpaired-translation) saves ``<epoch>_net_G.pth`` /
``latest_net_G.pth`` as a plain state dict. Two quirks of real files are handled:

* keys carry DataParallel's ``module.`` prefix when trained on the CPU (its ``train.py`` always
  wraps the nets, and only unwraps them when saving from a GPU); GPU-trained files, like the released
  pretrained models, have none. ``_orig_mod.`` (torch.compile) is undone the same way;
* the anti-aliasing blur filters are persistent buffers (``model.7.filt``, ...). Their values are
  fixed by construction, so they are checked against ours (a file whose filters differ is not a CUT
  generator) and, when a file lacks them, taken from the fresh module.

No hyper-parameter is stored in the file, so the architecture is read off the keys: ngf and the
input channels from ``model.1.weight`` (ngf, C_in, 7, 7), the block count from the ``conv_block``
keys, anti-aliased downsampling from where the first block sits (index 12, else 10 for stride-2
convs), anti-aliased upsampling from a ``filt`` buffer right after the blocks (else a transposed
conv), and the output channels from the last conv. The load is then strict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.inference.weights_file import load_state, tensors_of
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator

_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.1\.weight$")
_WEIGHT_KEY = re.compile(r"^model\.(\d+)\.weight$")
FIRST_BLOCK_ANTIALIAS = 12  # pad, conv, IN, ReLU, then 2 x (conv, IN, ReLU, Downsample)
FIRST_BLOCK_STRIDED = 10  # pad, conv, IN, ReLU, then 2 x (conv stride 2, IN, ReLU)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a .pth state dict (weights only), wrapper prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CUT generator file '{path}' not found; check the ckpt= path")
    return tensors_of(load_state(path, "give CUT's latest_net_G.pth"))


def infer_cut_generator_kwargs(tensors: Mapping[str, torch.Tensor], path: Path) -> dict:
    """Constructor arguments of `CUTResnetGenerator` that fit these keys and shapes."""
    if any(k.startswith("mlp_") for k in tensors):
        raise CheckpointError(f"'{path}' is CUT's patch sampler (net_F); give latest_net_G.pth")
    if any(k.startswith("model.model.") for k in tensors):
        raise CheckpointError(f"'{path}' is a U-Net generator; only CUT's ResNet generator loads")
    first = tensors.get("model.1.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (7, 7):
        hint = "a discriminator (net_D)" if "model.0.weight" in tensors else "not a generator"
        raise CheckpointError(
            f"'{path}' has no 7x7 first conv at 'model.1.weight' ({hint}); give latest_net_G.pth"
        )
    blocks = sorted(int(m.group(1)) for k in tensors if (m := _BLOCK_KEY.match(k)))
    if not blocks:
        raise CheckpointError(f"'{path}' has no residual blocks ('model.<i>.conv_block.' keys)")
    if blocks[0] not in (FIRST_BLOCK_ANTIALIAS, FIRST_BLOCK_STRIDED):
        raise CheckpointError(
            f"'{path}': residual blocks start at model.{blocks[0]}, not 10 or 12; "
            "not a ResNet generator of CUT or CycleGAN"
        )
    after_blocks = blocks[-1] + 1
    last = max(int(m.group(1)) for k in tensors if (m := _WEIGHT_KEY.match(k)))
    return {
        "in_channels": int(first.shape[1]),
        "out_channels": int(tensors[f"model.{last}.weight"].shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": len(blocks),
        "antialias": blocks[0] == FIRST_BLOCK_ANTIALIAS,
        "antialias_up": f"model.{after_blocks}.weight" not in tensors,
    }


def fit_filters(
    tensors: dict[str, torch.Tensor], generator: torch.nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """Check the file's blur filters against the module's constants; fill in any the file lacks."""
    for name, buffer in generator.named_buffers():
        if not name.endswith("filt"):
            continue
        stored = tensors.get(name)
        if stored is None:
            tensors[name] = buffer.clone()
        elif stored.shape != buffer.shape or not torch.allclose(stored, buffer, atol=1e-6):
            raise CheckpointError(
                f"'{path}': {name} is not CUT's fixed blur filter of shape "
                f"{tuple(buffer.shape)}; the file is not a CUT generator"
            )
    return tensors


def cut_generator_spec(tensors: Mapping[str, torch.Tensor], path: Path) -> dict:
    """`GeneratorSpec` fields of a CUT generator file (upsampling "antialias"), for the generic
    importer (`cyclegan.inference.importers`), which knows CUT's default layout only."""
    kwargs = infer_cut_generator_kwargs(tensors, path)
    if not (kwargs["antialias"] and kwargs["antialias_up"]):
        raise CheckpointError(
            f"'{path}' mixes anti-aliased and strided sampling (--no_antialias or "
            "--no_antialias_up); load it with cyclegan.inference.cut_weights.load_cut_generator"
        )
    return {
        "channels": kwargs["in_channels"],
        "out_channels": kwargs["out_channels"],
        "ngf": kwargs["ngf"],
        "n_residual_blocks": kwargs["n_blocks"],
        "upsampling": "antialias",
    }


def load_cut_generator(path: str | Path) -> CUTResnetGenerator:
    """CUT's generator from the reference's ``latest_net_G.pth``, strictly loaded, eval mode, CPU."""
    path = Path(path)
    tensors = read_state_dict(path)
    kwargs = infer_cut_generator_kwargs(tensors, path)
    generator = CUTResnetGenerator(**kwargs)
    tensors = fit_filters(tensors, generator, path)
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        detail = (str(exc).strip().splitlines()[1:2] or [str(exc)])[0].strip()[:200]
        raise CheckpointError(
            f"weights in '{path}' do not fit CUT's generator {kwargs}: {detail}"
        ) from None
    return generator.eval()
