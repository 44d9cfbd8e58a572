"""trainer.precision=auto resolves per device; CPU stays fp32; bad values name the choices."""

import pytest
import torch

from cyclegan.runtime.device import resolve_precision


def test_auto_is_fp32_on_cpu_and_explicit_values_pass_through() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "32"
    for value in ("32", "bf16-mixed", "16-mixed"):
        assert resolve_precision(value, cpu) == value


def test_auto_on_cuda_follows_bf16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", cuda) == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert resolve_precision("auto", cuda) == "32"  # e.g. a V100 or T4


def test_unknown_precision_names_the_choices() -> None:
    with pytest.raises(ValueError, match="not one of auto, 32, bf16-mixed, 16-mixed"):
        resolve_precision("bf16", torch.device("cpu"))
