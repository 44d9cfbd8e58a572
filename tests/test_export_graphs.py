"""ONNX and TorchScript exports of every generator kind: metadata, dynamic shapes, parity with the
PyTorch generator in processes that cannot import the project, translate through them, and the
one-line errors of what is not supported."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import save_checkpoint
from cyclegan.inference import graph_export, translate
from cyclegan.inference.export import export, main, save_generator
from cyclegan.inference.graph_export import OPSET, ExportError
from cyclegan.inference.graph_runtime import (
    TORCHSCRIPT_EXTRA,
    GraphGenerator,
    load_graph,
    onnx_providers,
)
from cyclegan.inference.importers import Format, LoadedGenerator, load_generator
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.parts.networks.spec import GeneratorSpec

from .conftest import build_networks

onnx = pytest.importorskip("onnx", reason="the export extra: pip install -e '.[export]'")
pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]'")

# torch.jit is deprecated upstream in favour of torch.export; its archives still load, and
# loading them with torch.jit.load is what a TorchScript user does.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

DATA = Path(__file__).parent / "data"
FORMATS = ("onnx", "torchscript")
TOLERANCE = {"onnx": 1e-4, "torchscript": 1e-5}  # the bar, independent of the code's
CPU = torch.device("cpu")


@dataclass
class Case:
    source: Path
    direction: str | None
    folder: Path
    stem: str
    channels: tuple[int, int]  # (in, out)
    multiple: int

    def file(self, kind: str) -> Path:
        return self.folder / f"{self.stem}.{kind}"


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Non-zero biases and norm affines, so a wrong layer cannot hide behind the init."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)


def _cyclegan_checkpoint(root: Path) -> Path:
    """Our training checkpoint, ResNet generators, domain A grayscale, domain B RGB."""
    model = build_networks("resnet", channels=(1, 3), n_residual_blocks=1, ngf=4, ndf=4)
    _randomize(model, 1)
    config = {
        "model": {"generator": "resnet", "ngf": 4, "n_residual_blocks": 1, "channels": 3},
        "dataset": {"name": "synthetic", "img_size": 32},
    }
    return save_checkpoint(
        root / "run" / "checkpoints" / "last.pt",
        {"model": model.state_dict(), "config": config, "epoch": 1, "step": 3},
    )


def _as_export(spec: GeneratorSpec, path: Path, seed: int) -> Path:
    """A generator of `spec` with random weights, as a safetensors export (the graphs' source)."""
    generator = spec.build().eval()
    _randomize(generator, seed)
    loaded = LoadedGenerator(generator, spec, Format.exported, None, path.with_suffix(".pt"))
    return save_generator(loaded, path)[0]


def _cut_checkpoint(root: Path) -> Path:
    """A method=cut checkpoint: one generator G (A -> B) under `G.`, nothing for B -> A."""
    generator = CUTResnetGenerator(3, 3, ngf=4, n_blocks=1)
    _randomize(generator, 3)
    state = {f"G.{k}": v for k, v in generator.state_dict().items()}
    config = {
        "model": {"generator": "cut", "ngf": 4, "n_residual_blocks": 1, "channels": 3},
        "method": {"_target_": "cyclegan.methods.cut.CUT"},  # what trained it, as train.py saves
    }
    return save_checkpoint(root / "cut_run" / "last.pt", {"model": state, "config": config})


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every generator kind, small, exported once to ONNX and TorchScript (the command for ours).

    The ONNX exporter traces each network symbolically, seconds per network on a CPU, so each
    kind is exported once here and every test below reads these files.
    """
    root = tmp_path_factory.mktemp("graphs")
    ckpt = _cyclegan_checkpoint(root)
    for kind in FORMATS:
        assert main([f"ckpt={ckpt}", f"output={root / 'resnet'}", f"format={kind}"]) == 0
    found = {
        "resnet AtoB 1->3": Case(ckpt, "AtoB", root / "resnet", "G_AB", (1, 3), 4),
        "resnet BtoA 3->1": Case(ckpt, "BtoA", root / "resnet", "G_BA", (3, 1), 4),
    }
    paper = GeneratorSpec(3, 4, 1, "transposed")
    unet_256 = GeneratorSpec(1, 4, 0, "transposed", 1, num_downs=8, norm="instance")
    sources = {  # (file, channels in/out, size multiple)
        "paper 3->3": (_as_export(paper, root / "src" / "paper.safetensors", 4), (3, 3), 4),
        "cut 3->3": (_cut_checkpoint(root), (3, 3), 4),  # one-sided: its G_AB only
        "unet_128 3->3 batch norm": (  # the official code's file, with running statistics
            DATA / "unet" / "official_G_unet128_ngf4_batch_dropout.pth",
            (3, 3),
            128,
        ),
        "unet_256 1->1": (_as_export(unet_256, root / "src" / "unet.safetensors", 5), (1, 1), 256),
    }
    for name, (source, channels, multiple) in sources.items():
        folder = root / name.split()[0]
        for kind in FORMATS:
            (path,) = export(source, folder, output_format=kind)
        direction = "AtoB" if path.stem == "G_AB" else None  # a file made without a direction
        found[name] = Case(source, direction, folder, path.stem, channels, multiple)
    return found


def _inputs(case: Case) -> list[np.ndarray]:
    """Two inputs of other shapes than the export's own check: sizes the size rule allows."""
    m = case.multiple
    shapes = [(2, 36, 52), (1, 80, 28)] if m == 4 else [(2, m, m), (1, 2 * m, m)]
    rng = np.random.default_rng(7)
    return [
        rng.uniform(-1, 1, (b, case.channels[0], h, w)).astype(np.float32) for b, h, w in shapes
    ]


@pytest.fixture(scope="module")
def expected(cases: dict[str, Case], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PyTorch outputs of every case on `_inputs`, as .npz files a plain process can read."""
    folder = tmp_path_factory.mktemp("expected")
    for i, case in enumerate(cases.values()):
        generator = load_generator(case.source, case.direction).generator
        arrays = {}
        for j, x in enumerate(_inputs(case)):
            with torch.no_grad():
                arrays[f"x{j}"], arrays[f"y{j}"] = x, generator(torch.from_numpy(x)).numpy()
        np.savez(folder / f"{i}.npz", **arrays)
    return folder


# A process that cannot import the project (nor, for ONNX, torch): a finder refuses them first.
BLOCKED_RUN = """
import json, sys
BLOCKED = set(sys.argv[1].split(","))
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not importable here")
sys.meta_path.insert(0, Refuse())
import numpy as np
files, expected = json.loads(sys.argv[2]), sys.argv[3]
results = []
for i, path in enumerate(files):
    run = load(path)
    data = np.load(f"{expected}/{i}.npz")
    for j in range(2):
        got = run(data[f"x{j}"])
        assert got.shape == data[f"y{j}"].shape, (path, got.shape)
        results.append(float(np.abs(got - data[f"y{j}"]).max()))
assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, "a blocked module was imported"
print(json.dumps(results))
"""

LOADERS = {
    "onnx": """
import onnxruntime
def load(path):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]
""",
    "torchscript": """
import torch
def load(path):
    module = torch.jit.load(path)
    return lambda x: module(torch.from_numpy(x)).detach().numpy()
""",
}


@pytest.mark.parametrize(
    ("kind", "blocked"), [("onnx", "cyclegan,torch"), ("torchscript", "cyclegan")]
)
def test_graphs_match_pytorch_in_a_process_without_the_project(
    kind: str, blocked: str, cases: dict[str, Case], expected: Path, tmp_path: Path
) -> None:
    files = [str(case.file(kind)) for case in cases.values()]
    script = BLOCKED_RUN.replace("import numpy as np\n", "import numpy as np\n" + LOADERS[kind])
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, blocked, json.dumps(files), str(expected)],
        cwd=tmp_path,  # -I: no PYTHONPATH, no script folder; the finder stops an installed copy
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    diffs = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(diffs) == 2 * len(cases)
    assert max(diffs) <= TOLERANCE[kind], dict(zip(files, diffs[::2], strict=True))


def test_onnx_files_state_opset_normalisation_and_dynamic_axes(cases: dict[str, Case]) -> None:
    for name, case in cases.items():
        model = onnx.load(str(case.file("onnx")))
        assert [(o.domain, o.version) for o in model.opset_import if o.domain == ""] == [
            ("", OPSET)
        ]
        props = {p.key: p.value for p in model.metadata_props}
        assert props["opset"] == str(OPSET) and "[-1, 1]" in props["normalization"]
        assert f"multiples of {case.multiple}" in props["size_rule"]
        info = json.loads(props["cyclegan-generator"])
        assert info["direction"] == case.direction and info["onnx"]["opset"] == OPSET
        spec = load_generator(case.source, case.direction).spec
        assert info["architecture"] == spec.to_dict(), name
        (put,), (got,) = model.graph.input, model.graph.output
        for value, channels in ((put, case.channels[0]), (got, case.channels[1])):
            dims = value.type.tensor_type.shape.dim
            assert dims[1].dim_value == channels, name
            assert all(dims[i].dim_param for i in (0, 2, 3)), f"{name}: static batch/H/W"
        assert put.type.tensor_type.shape.dim[2].dim_param.startswith(f"{case.multiple}*")


def test_torchscript_files_carry_the_export_json(cases: dict[str, Case]) -> None:
    for case in cases.values():
        extra = {TORCHSCRIPT_EXTRA: ""}
        torch.jit.load(str(case.file("torchscript")), _extra_files=extra)
        info = json.loads(extra[TORCHSCRIPT_EXTRA])
        assert info["format"] == "cyclegan-generator" and info["direction"] == case.direction
        assert info["torchscript"]["tolerance"] == 1e-5 and "[-1, 1]" in info["io"]


def _photos(folder: Path, channels: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, size in (("odd.png", (45, 31)), ("square.png", (64, 64))):
        shape = size if channels == 1 else (*size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
    return folder


@pytest.mark.parametrize("case_name", ["resnet AtoB 1->3", "resnet BtoA 3->1"])
def test_translate_through_graphs_equals_translate_through_the_checkpoint(
    case_name: str, cases: dict[str, Case], tmp_path: Path
) -> None:
    case = cases[case_name]
    photos = _photos(tmp_path / "photos", case.channels[0])
    runs = {"ckpt": (case.source, case.direction)} | {k: (case.file(k), None) for k in FORMATS}
    images = {}
    for name, (weights, direction) in runs.items():
        report = translate.translate(
            weights, photos, tmp_path / name, direction, device="cpu", progress=False
        )
        assert len(report.translated) == 2
        images[name] = {
            p.name: np.asarray(Image.open(p), dtype=int)
            for p in sorted((tmp_path / name).iterdir())
        }
    for kind in FORMATS:
        for file, want in images["ckpt"].items():
            got = images[kind][file]
            assert got.shape == want.shape and got.ndim == (3 if case.channels[1] == 3 else 2)
            assert np.abs(got - want).max() <= 1, (kind, file)  # 8-bit rounding of a 1e-6 change
    # The translator's float outputs, before rounding to 8 bits, within each format's bar.
    x = torch.rand(2, case.channels[0], 45, 31) * 2 - 1
    want = translate.Translator(load_generator(case.source, case.direction).generator, CPU)
    for kind in FORMATS:
        graph = translate.Translator(load_graph(case.file(kind), kind).generator, CPU)
        diff = (graph.translate(x) - want.translate(x)).abs().max()
        assert diff <= TOLERANCE[kind], (kind, float(diff))


def test_input_format_names_a_graph_file_of_any_name(
    cases: dict[str, Case], tmp_path: Path
) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(cases["paper 3->3"].file("onnx").read_bytes())
    photos = _photos(tmp_path / "photos", 3)
    args = [f"ckpt={renamed}", f"input={photos}", "progress=false", "device=cpu"]
    assert translate.main([*args, f"output={tmp_path / 'a'}", "input_format=onnx"]) == 0
    assert len(list((tmp_path / "a").iterdir())) == 2
    assert translate.main([*args, f"output={tmp_path / 'b'}"]) == 2  # read as PyTorch weights


def test_graph_files_refuse_what_they_cannot_do_in_one_line(
    cases: dict[str, Case], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(tmp_path / "photos", 3)
    g_ba = cases["resnet BtoA 3->1"].file("onnx")
    base = [f"input={photos}", f"output={tmp_path / 'out'}", "progress=false"]
    attempts = {
        "is the BtoA generator but direction=AtoB": [f"ckpt={g_ba}", "direction=AtoB"],
        "ngf=, variant= describe weights": [f"ckpt={g_ba}", "ngf=8", "variant=paper"],
        "drop them": [f"ckpt={g_ba.with_suffix('.torchscript')}", "n_residual_blocks=2"],
    }
    for message, args in attempts.items():
        assert translate.main([*base, *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1]
    assert main([f"ckpt={g_ba}", f"output={tmp_path / 'again'}"]) == 2
    assert "already an ONNX/TorchScript export" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "again").exists()


def test_unreadable_or_foreign_graph_files_are_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(Exception, match="not a readable ONNX model") as info:
        load_graph(garbage, "onnx")
    assert "\n" not in str(info.value)
    plain = tmp_path / "plain.onnx"  # an ONNX model from elsewhere: no export metadata
    node = onnx.helper.make_node("Identity", ["input"], ["output"])
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [tensor("input", onnx.TensorProto.FLOAT, [1])],
        [tensor("output", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), str(plain))
    with pytest.raises(Exception, match="carries no cyclegan export metadata"):
        load_graph(plain, "onnx")
    with pytest.raises(Exception, match="not a readable TorchScript archive"):
        load_graph(garbage.rename(tmp_path / "garbage.torchscript"), "torchscript")


def test_onnx_providers_follow_the_device() -> None:
    cpu, cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", cpu) == cpu and onnx_providers("cpu", cuda) == cpu
    assert onnx_providers("auto", cuda) == cuda
    assert onnx_providers("cuda:1", cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    with pytest.raises(ValueError, match=r"no CUDA provider .* or use device=cpu"):
        onnx_providers("cuda", cpu)
    with pytest.raises(ValueError, match="cpu or cuda"):
        onnx_providers("mps", cuda)


def test_missing_packages_name_the_extra(
    cases: dict[str, Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    with pytest.raises(Exception, match=r"onnxruntime, which is not installed: pip install"):
        load_graph(cases["paper 3->3"].file("onnx"), "onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(
        ExportError, match=r"needs the onnx, onnxscript and onnxruntime packages.*\[export\]"
    ):
        export(DATA / "official_latest_net_G_A_resnet6_ngf16.pth", tmp_path, output_format="onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_cut_checkpoint_exports_its_one_generator(
    cases: dict[str, Case], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = cases["cut 3->3"]
    assert sorted(p.name for p in case.folder.iterdir()) == ["G_AB.onnx", "G_AB.torchscript"]
    graph = load_graph(case.file("onnx"), "onnx")
    assert graph.spec.variant == "cut" and str(graph.direction) == "AtoB"
    out = tmp_path / "x"
    assert main([f"ckpt={case.source}", f"output={out}", "format=onnx", "direction=BtoA"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one-sided CUT model" in err[0]
    assert not out.exists()


def test_format_names_the_output_and_input_format_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    official = DATA / "official_latest_net_G_A_resnet6_ngf16.pth"
    args = [f"ckpt={official}", f"output={tmp_path / 'a'}"]
    assert main([*args, "input_format=official"]) == 0  # forced: recorded as the source's
    info = json.loads((tmp_path / "a" / "generator.json").read_text())
    assert info["source"]["format"] == "official"
    # A format the file does not fit is refused in one line, and nothing is written.
    assert main([f"ckpt={official}", f"output={tmp_path / 'c'}", "input_format=pytorch-gan"]) == 2
    assert "drop format=" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    # format=<input format>, as before ONNX existed: still the input's, with a note.
    assert main([f"ckpt={official}", f"output={tmp_path / 'b'}", "format=official"]) == 0
    assert "write input_format=official" in capsys.readouterr().err
    assert json.loads((tmp_path / "b" / "generator.json").read_text())["source"]["format"] == (
        "official"
    )
    assert main([*args, "format=official", "input_format=cut"]) == 2
    assert "format= names what to write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "format=coreml"])
    assert "invalid choice: 'coreml'" in capsys.readouterr().err


def test_a_file_that_fails_its_parity_check_is_not_written(
    cases: dict[str, Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = graph_export.load_graph

    def drifting(path: Path, kind: str) -> object:
        graph = real(path, kind)
        inner = graph.generator
        # What a wrong conversion would do: every output off by 1e-3.
        graph.generator = GraphGenerator(lambda x: inner(x) + 1e-3, graph.spec)
        return graph

    monkeypatch.setattr(graph_export, "load_graph", drifting)
    with pytest.raises(ExportError, match=r"differs from the PyTorch generator by 1\.0\de-03"):
        export(cases["paper 3->3"].source, tmp_path / "out", output_format="torchscript")
    assert list((tmp_path / "out").iterdir()) == []  # no file, no temporary


def test_an_exporter_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unsupported operator aten::example\nlong trace ...")

    monkeypatch.setattr(torch.onnx, "export", broken)
    official = DATA / "official_latest_net_G_A_resnet6_ngf16.pth"
    with pytest.raises(ExportError) as info:
        export(official, tmp_path, output_format="onnx")
    assert str(info.value) == (
        "torch.onnx could not export the paper, ngf=16, 6 blocks generator (Unsupported "
        "operator aten::example); use format=torchscript or format=safetensors"
    )
