"""Provenance: where a run came from (commit, command, versions, device), what its evaluation
measured (the protocol in summary.json), and sweep.py's warnings when its jobs differ in either."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import torch
from torch import nn

from cyclegan.config import provenance
from cyclegan.evaluation.evaluator import TranslationEvaluator
from cyclegan.evaluation.protocol import (
    INCEPTION_NAME,
    evaluation_protocol,
    feature_network,
    file_sha256,
    parameters_sha256,
)
from cyclegan.sweeps.jobs import find_jobs
from cyclegan.sweeps.provenance_check import comparison_warnings
from cyclegan.sweeps.sweep import report

from .extractors import ColourFeatures
from .test_sweep import make_job


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository that tracks a `cyclegan/` package, one commit."""
    root = tmp_path / "checkout"
    (root / "cyclegan").mkdir(parents=True)
    (root / "cyclegan" / "__init__.py").write_text("")
    git(root.parent, "init", "-q", str(root))
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    return root


def test_git_state_names_the_commit_and_whether_the_tree_was_dirty(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    assert provenance.git_state(repo) == {
        "commit": commit,
        "dirty": False,
        "changed": [],
        "n_changed": 0,
    }
    (repo / "cyclegan" / "__init__.py").write_text("x = 1\n")
    (repo / "new.py").write_text("")  # untracked: it could change what runs
    state = provenance.git_state(repo)
    assert state["commit"] == commit and state["dirty"] is True
    assert sorted(state["changed"]) == ["cyclegan/__init__.py", "new.py"]


def test_without_git_or_a_repository_the_state_is_unknown(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    unknown = {"commit": "unknown", "dirty": "unknown", "changed": []}
    assert provenance.git_state(tmp_path / "elsewhere") == unknown  # not a repository
    other = tmp_path / "other"
    (other / "cyclegan").mkdir(parents=True)  # inside a repository that does not track it
    git(tmp_path, "init", "-q", str(other))
    assert provenance.git_state(other) == unknown
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git at all
    assert provenance.git_state(repo) == unknown


def test_dependency_versions_come_from_pyproject_or_the_installed_metadata(tmp_path: Path) -> None:
    versions = provenance.package_versions()  # this checkout's pyproject.toml
    assert versions["torch"] == metadata.version("torch")
    assert versions["jinja2"] == metadata.version("jinja2")
    assert versions["pytest"] == metadata.version("pytest")  # an extra, installed here
    required, optional = provenance.declared_dependencies(tmp_path)  # no pyproject: metadata
    assert "torch" in required and "pytest" in optional


def test_record_keeps_the_earlier_processes(tmp_path: Path) -> None:
    first = provenance.record(tmp_path, "cpu")
    assert first["torch"] == torch.__version__ and first["device"] == "cpu"
    assert first["device_name"] == provenance.cpu_name() and first["python"]
    assert first["cuda"] == torch.version.cuda
    assert first["argv"] and first["command"].startswith("python")
    second = provenance.record(tmp_path, "cpu")
    saved = json.loads((tmp_path / "provenance.json").read_text())
    assert saved["created"] == second["created"] and saved["earlier"] == [first]
    provenance.record(tmp_path, "cpu")
    assert len(provenance.read(tmp_path)["earlier"]) == 2
    assert provenance.commits(provenance.read(tmp_path)) == [first["git"]["commit"]]


# ---------------------------------------------------------------------------- evaluation protocol


def test_weights_file_hash_is_computed_once_and_cached_beside_it(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"weights v1")
    expected = hashlib.sha256(b"weights v1").hexdigest()
    assert file_sha256(weights) == expected
    cache = tmp_path / "weights.pth.sha256"
    saved = json.loads(cache.read_text())
    assert saved["sha256"] == expected and saved["size"] == 10
    cache.write_text(json.dumps({**saved, "sha256": "from the cache"}))
    assert file_sha256(weights) == "from the cache"  # not read again while size and time match
    weights.write_bytes(b"weights v2, longer")
    assert file_sha256(weights) == hashlib.sha256(b"weights v2, longer").hexdigest()


def test_feature_network_is_named_with_its_weights_hash(tmp_path: Path) -> None:
    inception = nn.Linear(2, 2)
    inception.weights_file = str(tmp_path / "weights-inception-2015-12-05-6726825d.pth")
    Path(inception.weights_file).write_bytes(b"inception")
    assert feature_network(inception) == {
        "feature_network": INCEPTION_NAME,
        "weights_file": "weights-inception-2015-12-05-6726825d.pth",
        "weights_sha256": hashlib.sha256(b"inception").hexdigest(),
    }
    torch.manual_seed(0)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    assert feature_network(a)["feature_network"] == "torch.nn.modules.linear.Linear"
    assert parameters_sha256(a) != parameters_sha256(b)  # another network, another hash
    b.load_state_dict(a.state_dict())
    assert parameters_sha256(a) == parameters_sha256(b)


def test_protocol_of_an_evaluator_with_fid() -> None:
    g = torch.Generator().manual_seed(0)
    test_A, test_B = (torch.rand(5, 3, 24, 20, generator=g) * 2 - 1 for _ in range(2))
    evaluator = TranslationEvaluator(test_A, test_B, None, ColourFeatures())
    assert evaluation_protocol(evaluator) == {
        "metrics": ["fid", "kid"],
        "test_images": {"A": 5, "B": 5},
        "image_size": [24, 20],
        "paired": False,
        "fid_kid": {
            "feature_network": "tests.extractors.ColourFeatures",
            "weights_file": None,
            "weights_sha256": hashlib.sha256().hexdigest(),  # no parameters
            "kid_subsets": 100,
            "kid_subset_size": 1000,
        },
    }
    assert evaluation_protocol(None) is None


# ---------------------------------------------------------------------------- sweep warnings


def write_provenance(job: Path, commit: str, torch_version: str, numpy: str) -> None:
    record = {
        "git": {"commit": commit, "dirty": False},
        "python": "3.11.7",
        "torch": torch_version,
        "cuda": None,
        "cudnn": None,
        "packages": {"torch": torch_version, "numpy": numpy},
    }
    (job / "provenance.json").write_text(json.dumps(record))


PROTOCOL = {"metrics": ["psnr", "ssim"], "test_images": {"A": 4, "B": 4}, "image_size": [32, 32]}


def test_sweep_warns_when_jobs_differ_in_commit_protocol_or_versions(
    tmp_path: Path, capsys
) -> None:
    sweep = tmp_path / "sweep"
    bigger = {**PROTOCOL, "test_images": {"A": 40, "B": 40}}
    for num, protocol in enumerate((PROTOCOL, PROTOCOL, bigger)):
        summary = {"eval/psnr_AB": 20.0 + num, "eval_protocol": protocol}
        make_job(sweep, num, [f"loss.lambda_cyc={num}"], summary)
    write_provenance(sweep / "0", "a" * 40, "2.14.1", "2.4.6")
    write_provenance(sweep / "1", "b" * 40, "2.14.1", "2.4.6")
    write_provenance(sweep / "2", "a" * 40, "2.14.1", "2.5.0")
    lines = comparison_warnings(find_jobs(sweep))
    assert lines == [
        f"warning: the jobs differ in the commit they ran: {'a' * 12} (0, 2); {'b' * 12} (1)",
        "warning: the jobs differ in evaluation protocol (test_images.A): 4 (0, 1); 40 (2)",
        "warning: the jobs differ in evaluation protocol (test_images.B): 4 (0, 1); 40 (2)",
        "warning: the jobs differ in the version of numpy: 2.4.6 (0, 1); 2.5.0 (2)",
    ]
    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 0
    printed = capsys.readouterr().out
    assert all(line in printed for line in lines)
    page = (sweep / "report.html").read_text()
    assert 'id="warnings"' in page and "the version of numpy: 2.4.6 (0, 1); 2.5.0 (2)" in page


def test_same_commit_protocol_and_versions_give_no_warning(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num in range(2):
        make_job(sweep, num, [f"seed={num}"], {"eval/psnr_AB": 1.0, "eval_protocol": PROTOCOL})
        write_provenance(sweep / str(num), "c" * 40, "2.14.1", "2.4.6")
    make_job(sweep, 2, ["seed=2"], None, error="crashed")  # no provenance: named, not compared
    assert comparison_warnings(find_jobs(sweep)) == [
        "warning: 1 job(s) recorded no provenance.json (run before it existed, or failed before "
        "training), so their commit and versions are not compared: 2"
    ]
