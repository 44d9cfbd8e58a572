"""Tests for the built-in synthetic summer→winter landscape dataset."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from cyclegan.data import synthetic
from cyclegan.data.synthetic import (
    SceneParams,
    SyntheticLandscapes,
    render_pair,
    render_scene,
    sample_scene,
    scene_rng,
)

SUBDIRS = ("trainA", "trainB", "testA", "testB")


def _scene(seed: int = 0, split: int = 2, index: int = 0) -> SceneParams:
    return sample_scene(scene_rng(seed, split, index))


def _edges(img: np.ndarray) -> np.ndarray:
    """Colour gradient magnitude: where region boundaries are."""
    g = img.astype(np.float32)
    gx = np.abs(np.diff(g, axis=1))[:-1].sum(-1)
    gy = np.abs(np.diff(g, axis=0))[:, :-1].sum(-1)
    return (gx + gy).ravel()


def _load(path: pathlib.Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _snapshot(root: pathlib.Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _no_temp_dirs(parent: pathlib.Path) -> bool:
    return not [p for p in parent.iterdir() if ".tmp-" in p.name]


# ------------------------------------------------------------------------------------------
# Scenes and rendering
# ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_scenes_and_bytes() -> None:
    a, b = _scene(3, 0, 7), _scene(3, 0, 7)
    assert a == b
    for season in ("summer", "winter"):
        assert render_scene(a, season, 64).tobytes() == render_scene(b, season, 64).tobytes()


def test_different_seed_split_or_index_gives_different_scenes() -> None:
    base = render_scene(_scene(0, 0, 0), "summer", 64)
    for other in (_scene(1, 0, 0), _scene(0, 1, 0), _scene(0, 0, 1)):
        assert not np.array_equal(base, render_scene(other, "summer", 64))


def test_scene_params_are_frozen_and_hashable() -> None:
    p = _scene()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.horizon = 0.5  # type: ignore[misc]
    assert hash(p) == hash(_scene())


@pytest.mark.parametrize("size", [16, 33, 64, 72, 128])
@pytest.mark.parametrize("season", ["summer", "winter"])
def test_shape_and_dtype(size: int, season: str) -> None:
    img = render_scene(_scene(0, 2, size), season, size)  # type: ignore[arg-type]
    assert img.shape == (size, size, 3)
    assert img.dtype == np.uint8
    assert img.std() > 10  # a picture, not a flat fill


def test_render_pair_matches_render_scene() -> None:
    p = _scene(0, 2, 5)
    summer, winter = render_pair(p, 48)
    assert np.array_equal(summer, render_scene(p, "summer", 48))
    assert np.array_equal(winter, render_scene(p, "winter", 48))


def test_winter_is_brighter_and_whiter_than_summer() -> None:
    for i in range(10):
        summer, winter = render_pair(_scene(0, 2, i), 48)
        assert not np.array_equal(summer, winter)
        assert winter.mean() > summer.mean() + 20
        white_w = (winter > 200).all(-1).mean()
        white_s = (summer > 200).all(-1).mean()
        assert white_w > 0.3
        assert white_w > white_s + 0.2


def test_summer_has_colourful_sky_and_grass_winter_is_pale() -> None:
    p = _scene(0, 2, 1)
    summer, winter = (x.astype(int) for x in render_pair(p, 64))
    sky_s, sky_w = summer[1, :].mean(0), winter[1, :].mean(0)
    assert sky_s[2] > sky_s[0] + 60  # blue sky
    assert sky_w.min() > 150 and sky_w.max() - sky_w.min() < 60  # pale grey-blue
    bottom_s, bottom_w = summer[-1, :].mean(0), winter[-1, :].mean(0)
    assert bottom_s[1] > bottom_s[2] + 30  # green ground (or dark trees) at the bottom
    assert bottom_w.mean() > bottom_s.mean() + 60  # snow


def test_geometry_is_shared_between_seasons() -> None:
    same, other = [], []
    for i in range(12):
        summer, winter = render_pair(_scene(0, 2, i), 64)
        shifted = render_scene(_scene(0, 2, i + 100), "winter", 64)
        same.append(np.corrcoef(_edges(summer), _edges(winter))[0, 1])
        other.append(np.corrcoef(_edges(summer), _edges(shifted))[0, 1])
    assert np.mean(same) > 0.3
    assert np.mean(same) > np.mean(other) + 0.2
    assert min(same) > 0.15


def test_same_scene_looks_the_same_at_any_resolution() -> None:
    for i in range(3):
        p = _scene(0, 2, i)
        for season in ("summer", "winter"):
            small = render_scene(p, season, 64).astype(np.float32)
            big = render_scene(p, season, 256).astype(np.float32)
            down = big.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
            assert np.abs(down - small).mean() < 3.0


def test_lake_is_water_in_summer_and_ice_in_winter() -> None:
    for i in range(200):
        p = _scene(0, 0, i)
        lake = p.lake
        if (
            lake is None
            or lake.rx > 1
            or any(
                abs(t.x - lake.cx) < t.width and t.base - t.height < lake.cy + 0.02 for t in p.trees
            )
        ):
            continue
        summer, winter = render_pair(p, 64)
        r, c = int(lake.cy * 64), int(lake.cx * 64)
        water, ice, sky = summer[r, c].astype(int), winter[r, c].astype(int), summer[2, c]
        assert water[2] > water[0] + 40  # blue
        assert water.sum() < sky.astype(int).sum() - 60  # darker than the sky
        assert ice.min() > 150 and ice[2] > ice[0]  # pale icy blue
        return
    pytest.fail("no scene with an unobstructed ellipse lake in 200 draws")


def test_render_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="season"):
        render_scene(_scene(), "autumn", 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        render_scene(_scene(), "summer", 0)


# ------------------------------------------------------------------------------------------
# Dataset on disk
# ------------------------------------------------------------------------------------------


def test_prepare_writes_layout_and_manifest(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "ds"
    ds = SyntheticLandscapes(n_train=4, n_test=3, size=24, seed=5)
    assert ds.prepare(root) == root
    names = {d: sorted(p.name for p in (root / d).iterdir()) for d in SUBDIRS}
    assert names["trainA"] == names["trainB"] == [f"{i:05d}.png" for i in range(4)]
    assert names["testA"] == names["testB"] == [f"{i:05d}.png" for i in range(3)]
    for d in SUBDIRS:
        for name in names[d]:
            with Image.open(root / d / name) as im:
                assert im.mode == "RGB" and im.size == (24, 24)
    manifest = json.loads((root / "synthetic.json").read_text())
    assert manifest == {
        "format": "cyclegan-synthetic-landscapes",
        "version": 1,
        "n_train": 4,
        "n_test": 3,
        "size": 24,
        "seed": 5,
    }
    assert manifest == ds.manifest()
    assert _no_temp_dirs(tmp_path)


def test_files_are_the_expected_renders(tmp_path: pathlib.Path) -> None:
    root = SyntheticLandscapes(n_train=2, n_test=2, size=32, seed=1).prepare(tmp_path / "ds")
    assert np.array_equal(
        _load(root / "trainA/00001.png"), render_scene(_scene(1, 0, 1), "summer", 32)
    )
    assert np.array_equal(
        _load(root / "trainB/00001.png"), render_scene(_scene(1, 1, 1), "winter", 32)
    )
    for i in range(2):  # test pairs: same scene, both seasons, same file name
        summer, winter = render_pair(_scene(1, 2, i), 32)
        assert np.array_equal(_load(root / f"testA/{i:05d}.png"), summer)
        assert np.array_equal(_load(root / f"testB/{i:05d}.png"), winter)


def test_train_domains_are_unpaired_and_disjoint(tmp_path: pathlib.Path) -> None:
    n = 6
    root = SyntheticLandscapes(n_train=n, n_test=2, size=24).prepare(tmp_path / "ds")
    a_files = {(root / "trainA" / f"{i:05d}.png").read_bytes() for i in range(n)}
    b_files = {(root / "trainB" / f"{i:05d}.png").read_bytes() for i in range(n)}
    assert len(a_files) == n and len(b_files) == n and not a_files & b_files
    # The B scenes rendered in summer never reproduce an A image: different scene sets.
    a_imgs = [render_scene(_scene(0, 0, i), "summer", 24) for i in range(n)]
    for j in range(n):
        b_as_summer = render_scene(_scene(0, 1, j), "summer", 24)
        assert not any(np.array_equal(b_as_summer, a) for a in a_imgs)
    a_scenes = {_scene(0, 0, i) for i in range(n)}
    assert not a_scenes & {_scene(0, 1, i) for i in range(n)}
    assert not a_scenes & {_scene(0, 2, i) for i in range(n)}


def test_scenes_do_not_depend_on_split_sizes(tmp_path: pathlib.Path) -> None:
    small = SyntheticLandscapes(n_train=2, n_test=1, size=16).prepare(tmp_path / "small")
    big = SyntheticLandscapes(n_train=3, n_test=2, size=16).prepare(tmp_path / "big")
    for rel in ("trainA/00001.png", "trainB/00001.png", "testA/00000.png", "testB/00000.png"):
        assert (small / rel).read_bytes() == (big / rel).read_bytes()


def test_prepare_is_idempotent(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ds"
    ds = SyntheticLandscapes(n_train=2, n_test=1, size=16)
    ds.prepare(root)
    before = _snapshot(root)

    def no_render(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("prepare() re-rendered a complete dataset")

    monkeypatch.setattr(synthetic, "render_scene", no_render)
    assert SyntheticLandscapes(n_train=2, n_test=1, size=16).prepare(str(root)) == root
    assert _snapshot(root) == before
    assert _no_temp_dirs(tmp_path)


def test_prepare_fills_an_existing_empty_folder(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    SyntheticLandscapes(n_train=1, n_test=1, size=16).prepare(root)
    assert (root / "synthetic.json").is_file()
    assert len(list((root / "testB").iterdir())) == 1


def test_prepare_creates_missing_parents(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "a" / "b" / "ds"
    SyntheticLandscapes(n_train=1, n_test=1, size=16).prepare(root)
    assert (root / "trainA" / "00000.png").is_file()


def test_refuses_foreign_folder_and_leaves_it_untouched(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "photos"
    (root / "trainA").mkdir(parents=True)
    (root / "trainA" / "00000.png").write_bytes(b"my holiday")
    (root / "notes.txt").write_text("keep me")
    before = _snapshot(root)
    with pytest.raises(FileExistsError) as info:
        SyntheticLandscapes(n_train=1, n_test=1, size=16).prepare(root)
    msg = str(info.value)
    assert "\n" not in msg and str(root) in msg and "dataset.root" in msg
    assert _snapshot(root) == before
    assert _no_temp_dirs(tmp_path)


def test_refuses_dataset_with_other_settings(tmp_path: pathlib.Path) -> None:
    root = SyntheticLandscapes(n_train=1, n_test=1, size=16).prepare(tmp_path / "ds")
    before = _snapshot(root)
    for other in (
        SyntheticLandscapes(n_train=2, n_test=1, size=16),
        SyntheticLandscapes(n_train=1, n_test=1, size=32),
        SyntheticLandscapes(n_train=1, n_test=1, size=16, seed=1),
    ):
        with pytest.raises(FileExistsError, match="delete"):
            other.prepare(root)
    assert _snapshot(root) == before


def test_refuses_a_file_and_a_corrupt_manifest(tmp_path: pathlib.Path) -> None:
    ds = SyntheticLandscapes(n_train=1, n_test=1, size=16)
    as_file = tmp_path / "file"
    as_file.write_text("x")
    with pytest.raises(FileExistsError):
        ds.prepare(as_file)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "synthetic.json").write_text("{not json")
    with pytest.raises(FileExistsError):
        ds.prepare(corrupt)
    assert (corrupt / "synthetic.json").read_text() == "{not json"
    assert as_file.read_text() == "x"


def test_failed_render_leaves_nothing_behind(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk on fire")
        return np.zeros((16, 16, 3), np.uint8)

    monkeypatch.setattr(synthetic, "render_scene", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        SyntheticLandscapes(n_train=3, n_test=1, size=16).prepare(tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_losing_the_rename_race_to_an_identical_dataset_is_fine(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ds"
    ds = SyntheticLandscapes(n_train=1, n_test=1, size=16)
    original = SyntheticLandscapes._render_into
    raced = []

    def render_then_lose_race(self: SyntheticLandscapes, out: pathlib.Path) -> None:
        original(self, out)
        if not raced:  # another process finishes first, while we are still rendering
            raced.append(1)
            self.prepare(root)

    monkeypatch.setattr(SyntheticLandscapes, "_render_into", render_then_lose_race)
    assert ds.prepare(root) == root
    assert raced and json.loads((root / "synthetic.json").read_text()) == ds.manifest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 15}, "size"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"seed": -1}, "seed"),
        ({"size": 64.0}, "size"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        SyntheticLandscapes(**kwargs)
    assert "\n" not in str(info.value)


def test_cli_writes_dataset_and_reports_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "preview"
    sheet = tmp_path / "sheet.png"
    argv = ["--root", str(root), "--size", "16", "--n-train", "2", "--n-test", "1"]
    assert synthetic.main([*argv, "--sheet", str(sheet)]) == 0
    assert len(os.listdir(root / "trainB")) == 2
    with Image.open(sheet) as im:
        assert im.size[1] == 8 * 16
    assert synthetic.main(argv) == 0  # already there: fine
    assert synthetic.main([*argv[:2], "--size", "8"]) == 1
    assert "size" in capsys.readouterr().err
