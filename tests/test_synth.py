"""Tests of the procedural sky time-lapse generator (skyforecast.synth) and its `synth` command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.synth import (
    FAMILIES,
    clip_seed,
    make_scene,
    render_clip,
    render_clip_with_info,
    write_dataset,
)

SMALL = (64, 48)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.jpg"))
    }


def _mad(frames: np.ndarray) -> float:
    """Mean |frame t+1 - frame t| in [0, 1] units."""
    return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean() / 255.0)


def test_layout_matches_sky_timelapse(tmp_path: Path) -> None:
    summary = write_dataset(tmp_path, clips=3, seed=1, size=SMALL, clips_per_video=2)
    assert summary.clips == 3 and summary.videos == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth000000", "synth000001"]
    assert sorted(p.name for p in (tmp_path / "synth000000").iterdir()) == ["synth000000_1", "synth000000_2"]
    assert sorted(p.name for p in (tmp_path / "synth000001").iterdir()) == ["synth000001_1"]
    clip = tmp_path / "synth000000" / "synth000000_2"
    names = sorted(p.name for p in clip.iterdir())
    assert names == [f"synth000000_2_frames_{n:08d}.jpg" for n in range(32)]
    with Image.open(clip / names[0]) as im:
        assert im.size == SMALL and im.mode == "RGB" and im.format == "JPEG"
    assert sum(summary.families.values()) == 3


def test_default_frame_size_is_640x360() -> None:
    frames = render_clip(3, frames=2)
    assert frames.shape == (2, 360, 640, 3) and frames.dtype == np.uint8


def test_same_seed_same_pixels_different_seed_different() -> None:
    a = render_clip(11, frames=6, size=SMALL)
    b = render_clip(11, frames=6, size=SMALL)
    c = render_clip(12, frames=6, size=SMALL)
    assert a.shape == (6, 48, 64, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dataset_bytes_do_not_depend_on_workers(tmp_path: Path) -> None:
    write_dataset(tmp_path / "one", clips=3, seed=5, size=(32, 24), frames=4, workers=1)
    write_dataset(tmp_path / "two", clips=3, seed=5, size=(32, 24), frames=4, workers=2)
    write_dataset(tmp_path / "other", clips=3, seed=6, size=(32, 24), frames=4, workers=1)
    one = _tree_digest(tmp_path / "one")
    assert len(one) == 12
    assert one == _tree_digest(tmp_path / "two")
    assert one != _tree_digest(tmp_path / "other")


def test_consecutive_clips_continue_in_time() -> None:
    """Clip 2 of a video starts where clip 1 ends: the same scene, one frame later."""
    seed = clip_seed(0, 4)
    long = render_clip(seed, frames=10, size=SMALL)
    second = render_clip(seed, frames=5, size=SMALL, start=5)
    assert np.abs(long[5:].astype(int) - second.astype(int)).max() <= 1


def _scene_with_foreground(family: str) -> int:
    for seed in range(200):
        scene = make_scene(seed, family=family)
        if scene.foreground in ("ridge", "trees", "city", "flat"):
            return seed
    raise AssertionError("no scene with a land foreground in 200 seeds")


@pytest.mark.parametrize("family", ["cumulus", "overcast", "dusk"])
def test_foreground_stays_still_while_sky_moves(family: str) -> None:
    seed = _scene_with_foreground(family)
    scene = make_scene(seed, family=family)
    clip = render_clip_with_info(seed, frames=16, size=(128, 96), scene=scene)
    frames = clip.frames.astype(np.float32)
    fg = clip.foreground_mask
    assert 0 < fg.mean() < 0.8
    inner = fg.copy()  # stay off the anti-aliased silhouette edge
    inner[1:] &= fg[:-1]
    inner[:-1] &= fg[1:]
    inner[:, 1:] &= fg[:, :-1]
    inner[:, :-1] &= fg[:, 1:]
    sky = ~fg
    sky[int(fg.any(axis=1).argmax()) :] = False  # rows above the highest foreground pixel
    assert inner.sum() > 50 and sky.sum() > 500

    def residual(region: np.ndarray) -> float:
        """Mean change against frame 0 after removing one brightness factor per frame (the exposure)."""
        first = frames[0][region]
        out = []
        for frame in frames[1:]:
            now = frame[region]
            gain = float((now * first).sum() / max((first * first).sum(), 1e-6))
            out.append(np.abs(now - gain * first).mean())
        return float(np.mean(out))

    sky_step = np.abs(np.diff(frames[:, sky], axis=0)).mean()
    assert sky_step > 0.4  # the sky moves (in 0..255 levels per frame)
    assert residual(sky) > 2.0  # ... and not just in brightness
    # the foreground only follows the exposure: what is left is uint8 rounding
    assert residual(inner) < 0.6


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_renders(family: str) -> None:
    clip = render_clip_with_info(3, frames=3, size=SMALL, scene=make_scene(3, family=family))
    assert clip.scene.family == family
    assert clip.frames.shape == (3, 48, 64, 3)
    assert clip.frames.std() > 1.0  # not a flat image


def test_nights_are_darker_than_days() -> None:
    day = np.mean(
        [render_clip_with_info(s, 2, SMALL, scene=make_scene(s, "cumulus")).frames.mean() for s in range(3)]
    )
    night = np.mean(
        [render_clip_with_info(s, 2, SMALL, scene=make_scene(s, "night")).frames.mean() for s in range(3)]
    )
    assert night < 0.6 * day


def test_unknown_family_and_bad_size_are_rejected() -> None:
    with pytest.raises(ValueError, match="family"):
        make_scene(1, family="hail")
    with pytest.raises(ValueError, match="size"):
        render_clip(1, frames=2, size=(4, 4))


def test_motion_resembles_real_time_lapses() -> None:
    """Mean frame difference at 128x128 is tuned to real Sky Timelapse clips (~0.01 per frame)."""
    mads = [_mad(render_clip(clip_seed(2, v), frames=12, size=(128, 128))) for v in range(8)]
    assert 0.004 < float(np.mean(mads)) < 0.02
    assert max(mads) < 0.05


def test_motion_close_to_the_real_dev_clips(real_sky_dev: Path) -> None:
    real = []
    for clip in sorted(p for p in real_sky_dev.glob("*/*") if p.is_dir())[:8]:
        frames = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(clip.glob("*.jpg"))[:12]])
        real.append(_mad(frames))
    synth = [_mad(render_clip(clip_seed(0, v), frames=12, size=(128, 128))) for v in range(8)]
    ratio = float(np.mean(synth) / np.mean(real))
    assert 0.5 < ratio < 2.0, (np.mean(real), np.mean(synth))


def test_cli_writes_clips(tmp_path: Path) -> None:
    out = tmp_path / "sky"
    result = CliRunner().invoke(
        app, ["synth", str(out), "--clips", "2", "--size", "32x24", "--frames", "5", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    frames = sorted(out.rglob("*.jpg"))
    assert len(frames) == 10
    with Image.open(frames[0]) as im:
        assert im.size == (32, 24)
    assert "wrote 2 clips" in result.output


def test_cli_rejects_a_bad_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--clips", "1", "--size", "big"])
    assert result.exit_code == 1
    assert "--size" in result.output
    assert not (tmp_path / "x").exists()
