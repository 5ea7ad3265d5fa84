"""Flow-based motion numbers on synthetic videos whose answer is known: speed, steadiness, leak, direction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skyforecast.evaluation import motion_metrics as mm


def texture(size: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (blurred noise): enough structure everywhere for optical flow."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return smooth


def shifted(image: np.ndarray, dx: float, dy: float, size: int = 128) -> np.ndarray:
    """``image`` moved by (dx, dy) pixels (subpixel, bilinear), cropped to its central ``size`` square."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(
        image, m, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    o = (image.shape[0] - size) // 2
    return np.clip(np.rint(moved[o : o + size, o : o + size] * 255), 0, 255).astype(np.uint8)


def drift(vx: float, vy: float, frames: int = 32, seed: int = 0) -> np.ndarray:
    """A (frames,128,128,3) uint8 video of a texture moving (vx, vy) pixels per frame."""
    image = texture(seed=seed)
    return np.stack([shifted(image, vx * t, vy * t) for t in range(frames)])


def test_a_steady_half_pixel_drift_measures_its_speed_steadiness_and_direction():
    video = drift(0.5, 0.0)
    flows = mm.inner_flows(video)
    assert flows.shape == (29, 128, 128, 2) and flows.dtype == np.float32
    stats = mm.flow_stats(flows)
    # DIS reads sub-pixel shifts a little long (0.54 px here, 0.28 for 0.25, 1.00 for 1.0): an instrument
    # bias that the real clips share, so ratios to them are unaffected
    assert stats.speed == pytest.approx(0.5, abs=0.05)
    assert stats.steadiness == pytest.approx(1.0, abs=0.03)
    assert mm.angle_difference(stats.direction, 0.0) < 3  # to the right
    assert stats.consistency > 0.97
    net, path = mm.follow_pixels(flows)
    centre = (slice(30, 98), slice(30, 98))
    assert np.median(net[centre][..., 0]) == pytest.approx(stats.speed * 29, rel=0.02)
    assert np.median(path[centre]) == pytest.approx(stats.speed * 29, rel=0.02)
    assert np.abs(net[centre][..., 1]).max() < 1.0


def test_direction_follows_the_screen_up_is_90_degrees():
    for (vx, vy), want in (((0, -0.7), 90), ((-0.7, 0), 180), ((0, 0.7), 270), ((0.5, -0.5), 45)):
        angle, consistency = mm.motion_direction(drift(vx, vy, frames=8))
        assert mm.angle_difference(angle, want) < 5, (vx, vy, angle)
        assert consistency > 0.95


def test_a_video_that_jitters_back_and_forth_is_not_steady():
    """Frames alternate between two positions one pixel apart: as much flow per step as a 1 px/step drift,
    no net displacement."""
    image = texture(seed=1)
    a, b = shifted(image, 0, 0), shifted(image, 1.0, 0)
    video = np.stack([a if t % 2 == 0 else b for t in range(32)])
    stats = mm.flow_stats(mm.inner_flows(video))
    assert stats.speed == pytest.approx(1.0, abs=0.1)
    assert stats.steadiness < 0.1  # 29 steps back and forth end at most one step away: <= 1/29 ideally
    assert stats.consistency < 0.1
    assert mm.steadiness(drift(1.0, 0.0)) > 0.95


def test_following_pixels_differs_from_summing_flows_at_fixed_pixels():
    """Flow that carries content across a flow boundary: the left half moves right 1 px/step into a right
    half that moves down. A pixel that starts next to the boundary travels right, then down: its net
    displacement is shorter than its path. Fixed-pixel sums would see a straight line there."""
    flows = np.zeros((10, 20, 20, 2), np.float32)
    flows[:, :, :10, 0] = 1.0
    flows[:, :, 10:, 1] = 1.0
    net, path = mm.follow_pixels(flows)
    assert path[5, 9] == pytest.approx(10.0, abs=1e-4)
    assert net[5, 9, 0] == pytest.approx(1.0, abs=1e-4)  # one step right, then nine down
    assert net[5, 9, 1] == pytest.approx(9.0, abs=1e-4)
    assert net[5, 2, 0] == pytest.approx(8.0, abs=1e-4) and net[5, 2, 1] == pytest.approx(2.0, abs=1e-4)


def test_a_still_video_has_no_speed_no_steadiness_and_no_direction():
    still = np.repeat(drift(0, 0, frames=1), 32, axis=0)
    stats = mm.flow_stats(mm.inner_flows(still))
    assert stats.speed < mm.NO_MOTION
    assert stats.steadiness is None and stats.direction is None and stats.consistency == 0.0
    assert mm.motion_direction(still) == (None, 0.0)


def test_float_videos_in_0_1_measure_like_their_8_bit_frames():
    video = drift(0.5, 0.25, frames=6)
    np.testing.assert_array_equal(mm.inner_flows(video / 255.0), mm.inner_flows(video))


def half_moving(frames: int = 32, seed: int = 2) -> np.ndarray:
    """A real-like clip: the top half drifts 1 px/step, the bottom half stays still up to sensor noise."""
    rng = np.random.default_rng(seed)
    video = drift(1.0, 0.0, frames=frames, seed=seed).astype(np.int16)
    video[:, 64:] = video[0, 64:]
    video[:, 64:] += rng.integers(-1, 2, video[:, 64:].shape, dtype=np.int16)
    return np.clip(video, 0, 255).astype(np.uint8)


def test_leak_is_near_zero_for_a_system_that_freezes_the_still_ground():
    real = half_moving()
    regions = mm.still_regions(real)
    assert regions.still[64:].mean() > 0.75 and regions.still[:64].mean() < 0.05
    assert regions.moving[:64].mean() > 0.55 and not regions.moving[64:].any()
    frozen_ground = real.copy()
    frozen_ground[:, 64:] = real[0, 64:]
    assert mm.leak(frozen_ground, real) == pytest.approx(0.0, abs=0.01)
    own = mm.leak(real, real)
    assert 0.005 < own < 0.2  # the noise on the still half, against a drift of textured clouds
    everything_moves = drift(1.0, 0.0, seed=2)
    assert mm.leak(everything_moves, regions) > 0.5
    assert mm.leak(everything_moves, regions) == pytest.approx(
        mm.still_step(everything_moves, regions) / regions.moving_step
    )


def test_cover_is_the_share_of_the_real_moving_pixels_that_move_too():
    real = half_moving()
    assert mm.cover(real, real) == pytest.approx(1.0)
    assert mm.cover(np.repeat(real[:1], 32, axis=0), real) == 0.0
    upper = real.copy()
    upper[:, 32:] = real[0, 32:]  # a mask that freezes the lower half of the moving sky
    assert 0.35 < mm.cover(upper, real) < 0.65
    slow = drift(0.2, 0.0, seed=2)  # the right pixels, at a fifth of the real speed: under a third
    assert mm.cover(slow, real) < 0.3
    assert mm.cover(drift(0.6, 0.0, seed=2), real) > 0.7


def test_cover_shares_tell_a_sky_held_still_from_one_moving_too_slowly():
    real = half_moving()
    assert mm.cover_shares(real, real) == pytest.approx((1.0, 0.0, 0.0))
    upper = real.copy()
    upper[:, 32:] = real[0, 32:]  # the lower half of the moving sky frozen
    covered, slow, still = mm.cover_shares(upper, real)
    assert covered == mm.cover(upper, real) and covered + slow + still == pytest.approx(1.0)
    assert 0.35 < still < 0.65 and slow < 0.1  # what is lost is lost to stillness
    covered, slow, still = mm.cover_shares(drift(0.2, 0.0, seed=2), real)  # all at a fifth of the speed
    assert covered < 0.3 and slow > 0.5 and still < 0.2  # ... is lost to slowness


def test_leak_is_undefined_against_a_real_clip_that_never_changes():
    still = np.repeat(drift(0, 0, frames=1), 32, axis=0)
    assert mm.leak(drift(1, 0), still) is None


def test_agree_within_and_angle_difference():
    assert mm.angle_difference(350, 10) == pytest.approx(20)
    assert mm.angle_difference(0, 180) == pytest.approx(180)
    assert mm.agree_within(10, 95) and not mm.agree_within(10, 101)
    assert mm.agree_within(300, 20)  # 80 degrees apart across 0
    assert mm.agree_within(0, 45, degrees=45) and not mm.agree_within(0, 46, degrees=45)
    assert not mm.agree_within(None, 10) and not mm.agree_within(10, None)


def test_ratio_of_sums_weighs_clips_by_their_real_motion():
    assert mm.ratio_of_sums([0.2, 1.0], [0.4, 2.0]) == pytest.approx(0.5)
    assert mm.ratio_of_sums([1.0], [0.0]) is None


def test_bad_shapes_say_what_they_expected():
    with pytest.raises(ValueError, match="T,H,W,3"):
        mm.inner_flows(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="2 frames"):
        mm.inner_flows(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        mm.leak(np.zeros((32, 16, 16, 3), np.uint8), half_moving())
