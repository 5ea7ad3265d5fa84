"""The sky down to the horizon: a level edge reaching a side of the frame with no sky below it lets the clouds
just above a sea move (GrabCut alone froze them with the sea, whose colours they share), and cloud texture
along the skyline is not taken for thin structures standing on the ground."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from skyforecast.render import horizon, skymask


def _level_edge_photo(row: float, tilt_degrees: float, cols: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A light sky over a darker ground along a straight edge, tilted, drawn between ``cols`` (shares of
    the width; elsewhere the ground rises to the top of the frame, as a house would)."""
    h, w = 144, 256
    image = np.full((h, w, 3), 200, np.uint8)
    slope = np.tan(np.radians(tilt_degrees))
    for x in range(w):
        top = row * h + slope * (x - w / 2) if cols[0] * w <= x < cols[1] * w else 0
        image[int(round(top)) :, x] = 90
    return image


def test_a_tilted_horizon_is_found_at_its_row_and_slope():
    image = _level_edge_photo(0.6, 1.5)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    (edge, *_) = horizon.horizon_candidates(lab, np.zeros(image.shape[:2], bool))
    assert edge.start <= 2 and edge.end >= 254  # the whole width
    assert abs(edge.slope - np.tan(np.radians(1.5))) < 0.01 and abs(edge.row - 0.6 * 144) <= 1.5
    assert edge.above((144, 256))[:80].all() and not edge.above((144, 256))[90:].any()


def test_an_edge_between_two_houses_or_high_in_the_frame_is_no_horizon():
    groundy = np.zeros((144, 256), bool)
    between, high = _level_edge_photo(0.6, 0.0, cols=(0.3, 0.7)), _level_edge_photo(0.3, 0.0)
    labs = [cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32) for image in (between, high)]
    (edge, *_) = horizon.level_edges(labs[0][..., 0])  # level, lighter above, but it stops at both ends
    assert abs(edge.start - 0.3 * 256) <= 3 and abs(edge.end - 0.7 * 256) <= 3
    assert horizon.horizon_candidates(labs[0], groundy) == []
    assert horizon.level_edges(labs[1][..., 0]) == []  # at 0.3 of the height: a cloud's base, a roof


def _textured_sky_over_land(w: int = 960, h: int = 540) -> tuple[np.ndarray, int, tuple[slice, slice]]:
    """Grey clouds whose texture grows toward a flat dark-green land at 0.7 h, and a thin dark pole standing
    on the land up to 0.3 h."""
    rng = np.random.default_rng(0)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5)
    coarse = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 12)
    rows = np.linspace(0, 1, h)[:, None]
    grey = np.clip(150 + (fine * 110 + coarse * 300) * np.clip((rows - 0.2) / 0.5, 0, 1), 0, 255)
    photo = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    ground = int(0.7 * h)
    photo[ground:] = (50, 70, 40)
    pole = (slice(int(0.3 * h), ground), slice(w // 3, w // 3 + 3))
    photo[pole] = 35
    return photo, ground, pole


def test_the_texture_of_low_clouds_is_not_taken_for_structures_on_the_ground():
    photo, ground, pole = _textured_sky_over_land()
    h, w = photo.shape[:2]
    moves = skymask.sky_mask(photo) > 0.5
    away = np.ones(w, bool)
    away[w // 3 - 40 : w // 3 + 45] = False  # the pole and the sky beside it
    assert moves[: int(0.3 * h)].mean() > 0.99
    # the dark edges of the low clouds rise from the skyline like strokes: 0.65 of this band moved before
    assert moves[int(0.35 * h) : ground - 3][:, away].mean() > 0.85  # 0.90
    assert not moves[pole].any() and not moves[ground:].any()


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080)])
def test_the_clouds_above_a_sea_move_down_to_its_horizon(real_photos, size):
    photo = np.asarray(Image.open(real_photos / "coast.png").convert("RGB"))
    if size != photo.shape[1::-1]:
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
    moves = skymask.sky_mask(photo) > 0.5
    h, w = moves.shape
    sea = slice(int(0.75 * w), int(0.95 * w))  # columns where the open sea meets the sky at 0.62 h
    assert moves[int(0.1 * h) : int(0.55 * h), sea].mean() > 0.95  # 0.68-0.70 before
    assert moves[int(0.45 * h) : int(0.58 * h), sea].mean() > 0.9  # the glow and lower clouds: 0.08-0.13
    assert not moves[int(0.66 * h) :].any()  # the sea, the beach and the grass stay


@pytest.mark.parametrize("seed", [103, 130])
def test_a_level_edge_in_the_clouds_changes_nothing(seed, monkeypatch):
    """These scenes have a long level cloud edge reaching a side of the frame; GrabCut finds sky below it too,
    so it is not a horizon and the mask is the one made without looking for horizons."""
    from skyforecast.synth import make_scene, render_clip_with_info

    photo = render_clip_with_info(seed, 1, (960, 540), scene=make_scene(seed)).frames[0]
    image, lab = skymask.working_image(photo, 256)
    fixed = skymask.ground_like(lab) | skymask.thin_strokes(image, lab)
    assert horizon.horizon_candidates(lab, fixed)  # the edge is there
    with_rule = skymask.day_sky(photo)
    monkeypatch.setattr(skymask, "horizon_candidates", lambda lab, fixed: [])
    assert np.array_equal(with_rule, skymask.day_sky(photo))


def test_low_clouds_over_a_synthetic_horizon_move_and_the_land_stays():
    """An overcast scene whose lower clouds share the colours of the land's haze below them."""
    from skyforecast.synth import make_scene, render_clip_with_info

    clip = render_clip_with_info(122, 1, (960, 540), scene=make_scene(122))
    moves = skymask.sky_mask(clip.frames[0]) > 0.5
    still = clip.foreground_mask
    assert moves[~still].mean() > 0.8  # 0.87 (0.28 without the horizon)
    assert not moves[still].any()


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080)])
def test_a_sunset_sky_moves_down_to_the_land(real_short_clip, size):
    """Clouds lit from below down to a strip of dark land at 0.93 of the height: the lower clouds, darker
    than the top rows and nearer the land's colours, stood still below 0.4 of the height."""
    photo = np.asarray(Image.open(sorted(real_short_clip.iterdir())[0]).convert("RGB"))
    if size != photo.shape[1::-1]:
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)
    moves = skymask.sky_mask(photo) > 0.5
    h = moves.shape[0]
    assert moves[: int(0.3 * h)].mean() > 0.95
    assert moves[int(0.4 * h) : int(0.8 * h)].mean() > 0.9  # 0.97 (0.02 before)
    assert not moves[int(0.95 * h) :].any()  # the land


def _city_over_a_railing(seed: int, h: int = 540, w: int = 960) -> tuple[np.ndarray, np.ndarray]:
    """Buildings of random colours (one may be as blue-grey as the sky) with dark windows, seen over the
    dark top of a balcony railing: a level edge at 0.9 of the height, lighter above. Returns the photo and
    its sky (where the photo is the sky's gradient)."""
    rng = np.random.default_rng(seed)
    sky = np.array([170.0, 195.0, 230.0]) + 30.0 * np.linspace(0, 1, h)[:, None, None]
    image = np.broadcast_to(sky, (h, w, 3)).copy()
    x = 0
    while x < w:
        width, top = int(rng.integers(60, 160)), int(rng.uniform(0.3, 0.6) * h)
        colour = rng.uniform(90, 200, 3) * np.array([1.0, 0.95, 0.9])
        image[top:, x : x + width] = colour
        for y in range(top + 15, h, 35):
            for wx in range(x + 8, x + width - 15, 25):
                image[y : y + 15, wx : wx + 10] = colour * 0.5
        x += width
    image[int(0.9 * h) :] = (35, 35, 38)
    is_sky = np.abs(image - sky).max(axis=2) < 1e-3
    image += rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), is_sky


@pytest.mark.parametrize("seed", [0, 5])
def test_buildings_standing_on_a_horizon_stay_still(seed):
    """The railing's top is a level edge with no sky below it; above it, a blue-grey wall between windows
    is coloured more like the sky than like the railing. Freed on their own, such patches moved with the
    sky (0.2-0.3 % of the buildings); a horizon frees only patches of some size."""
    photo, is_sky = _city_over_a_railing(seed)
    moves = skymask.sky_mask(photo) > 0.5
    assert moves[is_sky].mean() > 0.95
    assert not moves[~is_sky].any()
