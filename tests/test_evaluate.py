"""Evaluation metrics with known answers, the evaluation loop on real files, and the `evaluate` command."""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skyforecast.evaluation import motion_metrics as mm
from skyforecast.evaluation.scoring import (
    PSNR_CAP,
    SSIM_K1,
    SSIM_K2,
    SystemReport,
    copy_baseline,
    evaluate,
    frame_change,
    inner_frame_change,
    psnr_frames,
    real_clip,
    score_clip,
    ssim_frames,
)

C1, C2 = SSIM_K1**2, SSIM_K2**2


def moving_clip(frames: int = 32, size: int = 32, seed: int = 0) -> np.ndarray:
    """A uint8 clip whose content drifts right one pixel per frame (it moves, so motion > 0)."""
    rng = np.random.default_rng(seed)
    wide = rng.integers(0, 256, (size, size + frames, 3), dtype=np.uint8)
    return np.stack([wide[:, t : t + size] for t in range(frames)])


def drifting_clip(vx: float, vy: float = 0.0, frames: int = 32, size: int = 64, seed: int = 0) -> np.ndarray:
    """A uint8 clip of a smooth texture (blurred noise, which optical flow can follow) drifting (vx, vy)
    pixels per frame, sub-pixel steps included."""
    import cv2

    rng = np.random.default_rng(seed)
    big = size + 2 * (int(abs(vx) * frames) + int(abs(vy) * frames) + 4)
    image = cv2.GaussianBlur(rng.random((big, big, 3)).astype(np.float32), (0, 0), 2.0)
    image = (image - image.min()) / (image.max() - image.min())
    o = (big - size) // 2
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, vx * t], [0, 1, vy * t]])
        moved = cv2.warpAffine(image, m, (big, big), flags=cv2.INTER_LINEAR)
        out.append(np.rint(moved[o : o + size, o : o + size] * 255).astype(np.uint8))
    return np.stack(out)


def write_clip(folder: Path, video: np.ndarray, fmt: str = "png") -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"{folder.name}_frames_{t:08d}.{fmt}")


# ---- PSNR -----------------------------------------------------------------------------------------


def test_perfect_prediction_scores_capped_psnr_ssim_one_motion_one():
    real = moving_clip()
    s = score_clip(real, real)
    assert s.psnr == PSNR_CAP == 100.0
    assert s.psnr_pooled == PSNR_CAP
    assert s.ssim == pytest.approx(1.0, abs=1e-12)
    assert s.motion_ratio == pytest.approx(1.0)
    assert s.inner_motion_ratio == pytest.approx(1.0)


def test_psnr_of_a_known_mse():
    """Frame 1 is off by 0.1 everywhere (MSE 0.01, 20 dB), frame 2 by 0.01 (MSE 1e-4, 40 dB). Frame 0 is
    the input and must not count, so a wrong frame 0 changes nothing."""
    real = np.full((3, 16, 16, 3), 0.5)
    pred = real.copy()
    pred[0] = 0.0
    pred[1] += 0.1
    pred[2] -= 0.01
    np.testing.assert_allclose(psnr_frames(pred[1:], real[1:]), [20.0, 40.0])
    s = score_clip(pred, real)
    assert s.psnr == pytest.approx(30.0)  # per-frame PSNR averaged
    assert s.psnr_pooled == pytest.approx(10 * math.log10(1 / ((0.01 + 1e-4) / 2)))  # 22.97 dB


def test_psnr_on_uint8_uses_the_0_1_range():
    real = np.full((2, 16, 16, 3), 100, np.uint8)
    pred = real + np.uint8(51)  # 51/255 = 0.2 -> MSE 0.04
    assert psnr_frames(pred, real) == pytest.approx([10 * math.log10(1 / 0.04)] * 2)


def test_psnr_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        psnr_frames(np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 8, 3)))


# ---- SSIM -----------------------------------------------------------------------------------------


def test_ssim_of_identical_frames_is_one():
    x = moving_clip(frames=3)
    np.testing.assert_allclose(ssim_frames(x, x), 1.0, atol=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (0.5, 0.6), (0.2, 0.9), (0.0, 1.0)])
def test_ssim_of_constant_frames_follows_the_formula(a, b):
    """Flat frames have no variance: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)."""
    x = np.full((1, 20, 20, 3), a)
    y = np.full((1, 20, 20, 3), b)
    expected = (2 * a * b + C1) / (a * a + b * b + C1)
    assert ssim_frames(x, y)[0] == pytest.approx(expected, rel=1e-9)


def _ssim_by_the_formula(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM written out window by window: an 11x11 Gaussian (sigma 1.5) at every position where it fits,
    weighted means, variances and covariance, Wang et al.'s formula, mean over windows and channels."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for c in range(x.shape[2]):
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i : i + 11, j : j + 11, c], y[i : i + 11, j : j + 11, c]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    return float(np.mean(values))


def test_ssim_matches_a_window_by_window_computation():
    rng = np.random.default_rng(1)
    x = rng.random((16, 17, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    shifted = np.roll(x, 2, axis=1) * 0.8 + 0.1
    for other in (y, shifted):
        got = ssim_frames(other[None], x[None])[0]
        assert got == pytest.approx(_ssim_by_the_formula(other, x), rel=1e-9)
    assert 0.5 < ssim_frames(y[None], x[None])[0] < 0.99


def test_ssim_is_symmetric_and_falls_with_noise():
    x = moving_clip(frames=1, size=48) / 255.0
    rng = np.random.default_rng(2)
    scores = []
    for sigma in (0.01, 0.05, 0.2):
        y = np.clip(x + rng.normal(0, sigma, x.shape), 0, 1)
        assert ssim_frames(x, y)[0] == pytest.approx(ssim_frames(y, x)[0], rel=1e-12)
        scores.append(ssim_frames(x, y)[0])
    assert scores[0] > scores[1] > scores[2] > 0


# ---- motion ---------------------------------------------------------------------------------------


def test_frame_change_of_known_steps():
    v = np.stack([np.full((4, 4, 3), level) for level in (0.0, 0.1, 0.3)])
    assert frame_change(v) == pytest.approx((0.1 + 0.2) / 2)


def test_copy_baseline_is_frozen_with_motion_ratio_zero():
    real = moving_clip()
    copy = copy_baseline(real)
    assert copy.shape == real.shape and (copy == real[0]).all()
    s = score_clip(copy, real)
    assert s.motion == 0.0 and s.motion_ratio == 0.0 and s.inner_motion_ratio == 0.0


def test_inner_motion_ratio_ignores_jumps_at_the_two_ends():
    """A video still in its middle with a jump at each end (what temporal padding does to a generated clip)
    has a motion ratio well above 0 but an inner motion ratio of exactly 0; one that drifts as the real
    clip does in its middle scores an inner ratio of 1 whatever its ends do."""
    real = np.stack([np.full((16, 16, 3), 100 + t, np.uint8) for t in range(32)])  # 1 level brighter a frame
    v = np.full((32, 4, 4, 3), 0.5)
    v[0], v[-1] = 0.2, 0.8  # steps 0->1 and 30->31 jump by 0.3; the 29 steps between are still
    assert frame_change(v) == pytest.approx(0.6 / 31)
    assert inner_frame_change(v) == 0.0
    jumpy = real.copy()
    jumpy[0], jumpy[-1] = 0, 255
    s = score_clip(jumpy, real)
    assert s.motion_ratio > 5 and s.inner_motion_ratio == pytest.approx(1.0)
    ends_only = np.repeat(real[1:2], 32, axis=0)
    ends_only[0], ends_only[-1] = real[0], real[-1]
    s = score_clip(ends_only, real)
    # the same total change as the real clip (1 + 30 levels over 31 steps), all of it in the two end steps
    assert s.motion_ratio == pytest.approx(1.0) and s.inner_motion_ratio == 0.0


def test_motion_ratio_is_undefined_for_a_still_real_clip():
    still = np.repeat(moving_clip(frames=1), 32, axis=0)
    assert score_clip(moving_clip(), still).motion_ratio is None


def test_a_perfect_prediction_moves_exactly_like_the_real_clip():
    real = drifting_clip(0.8, -0.3)
    ref = real_clip(real, "c")
    assert ref.speed == pytest.approx(np.hypot(0.8, 0.3), rel=0.1)
    assert ref.steadiness > 0.95 and ref.direction_consistency > 0.95
    assert mm.angle_difference(ref.direction, np.degrees(np.arctan2(0.3, 0.8))) < 5  # right and a bit up
    s = score_clip(real, real, reference=ref)
    assert s.speed_ratio == pytest.approx(1.0) and s.steadiness == pytest.approx(ref.steadiness)
    assert s.leak == pytest.approx(ref.leak) and s.direction_agrees is True
    assert score_clip(real, real) == s  # without a reference the real clip is measured inside
    ref_dict = ref.to_dict()
    assert "regions" not in ref_dict and ref_dict["moving_step"] == pytest.approx(ref.moving_step)


def test_direction_agreement_speed_and_steadiness_of_wrong_motions():
    real = drifting_clip(0.6)
    backwards = score_clip(drifting_clip(-0.6), real)
    assert backwards.direction_agrees is False and mm.angle_difference(backwards.direction, 180) < 5
    assert backwards.speed_ratio == pytest.approx(1.0, abs=0.1)
    sideways = score_clip(drifting_clip(0.3, -1.0), real)  # mostly up: 73 degrees from right, agrees
    assert sideways.direction_agrees is True
    two = drifting_clip(1.0, 0, frames=2)  # one texture at two places 1 px apart
    shimmer = np.stack([two[t % 2] for t in range(32)])
    s = score_clip(shimmer, real)
    assert s.steadiness < 0.2 and s.speed_ratio > 1  # moves a lot, goes nowhere
    frozen = score_clip(copy_baseline(real), real)
    assert frozen.speed_ratio == 0.0 and frozen.steadiness is None and frozen.direction is None
    assert frozen.direction_agrees is False and frozen.leak == 0.0


def test_speed_ratio_and_leak_pool_clips_as_a_ratio_of_sums():
    """Two real clips, one twice as fast as the other; the system copies the fast one exactly and freezes
    the slow one. Per-clip speed ratios are 1 and 0; pooled, the fast clip weighs twice as much: 2/3."""
    fast, slow = drifting_clip(1.0, seed=1), drifting_clip(0.5, seed=2)
    refs = {"fast": real_clip(fast, "fast"), "slow": real_clip(slow, "slow")}
    rep = SystemReport(
        "mine",
        [
            score_clip(fast, fast, "fast", reference=refs["fast"]),
            score_clip(copy_baseline(slow), slow, "slow", reference=refs["slow"]),
        ],
        refs,
    )
    assert [c.speed_ratio for c in rep.clips] == [pytest.approx(1.0), 0.0]
    want = refs["fast"].speed / (refs["fast"].speed + refs["slow"].speed)
    assert rep.speed_ratio == pytest.approx(want) and want == pytest.approx(2 / 3, abs=0.05)
    assert rep.speed == pytest.approx(refs["fast"].speed / 2)
    ms = {k: r.moving_step for k, r in refs.items()}
    assert rep.leak == pytest.approx(refs["fast"].leak * ms["fast"] / (ms["fast"] + ms["slow"]))
    assert rep.leak_clip_mean == pytest.approx(refs["fast"].leak / 2)
    assert rep.steadiness == pytest.approx(rep.clips[0].steadiness)  # the frozen clip has none
    assert rep.direction_agrees == (1, 2)
    d = rep.to_dict()
    assert d["direction_agrees"] == 1 and d["direction_clips"] == 2 and d["speed_ratio"] == rep.speed_ratio
    assert d["direction_consistency"] == pytest.approx(rep.clips[0].direction_consistency / 2)


def test_evaluate_measures_each_real_clip_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Flows are the slow part: one flow computation per real clip and one per system's video, never one
    per (system, clip) pair for the real clip."""
    data = tmp_path / "data"
    write_clip(data / "v1" / "v1_1", drifting_clip(0.7, size=128, seed=1))
    write_clip(data / "v2" / "v2_1", drifting_clip(-0.4, 0.4, size=128, seed=2))
    calls = []
    real_inner_flows = mm.inner_flows

    def counted(video, *args, **kwargs):
        calls.append(video.shape)
        return real_inner_flows(video, *args, **kwargs)

    monkeypatch.setattr(mm, "inner_flows", counted)
    report = evaluate(data, systems=("copy",))
    assert len(calls) == 4  # 2 real clips + the copy system's 2 videos
    assert set(report.real.clips) == {"v1/v1_1", "v2/v2_1"}
    assert report.real.clips["v1/v1_1"].speed == pytest.approx(0.7, rel=0.12)
    d = report.to_dict()
    assert d["real"]["speed"] == pytest.approx(report.real.speed) and len(d["real"]["per_clip"]) == 2
    assert d["systems"]["copy"]["speed_ratio"] == 0.0 and d["systems"]["copy"]["direction_clips"] == 2
    # the still copy covers none of the real clips' moving pixels: all of them held still
    copy = d["systems"]["copy"]
    assert (copy["cover"], copy["cover_slow"], copy["cover_still"]) == (0.0, 0.0, 1.0)
    assert {"cover_slow", "cover_still"} <= set(d["definitions"])
    for key in ("flows", "speed", "speed_ratio", "steadiness", "leak", "direction", "direction_agrees"):
        assert key in d["definitions"]


# ---- the evaluation loop on files -----------------------------------------------------------------


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    from skyforecast.model.networks import MDGAN

    folder = tmp_path / "model"
    MDGAN(ngf=4).save_pretrained(folder)
    return folder


def test_evaluate_copy_baseline_on_written_clips(tmp_path: Path):
    """Two clips in the Sky Timelapse layout, a 64-frame sequence giving two clips, and a clip with a
    broken frame (skipped and reported, not fatal). No model is needed for the copy baseline."""
    data = tmp_path / "data"
    a, b = moving_clip(seed=1, size=128), moving_clip(seed=2, size=128)
    write_clip(data / "vid1" / "vid1_1", a)
    write_clip(data / "vid2" / "vid2_1", np.concatenate([b, a]))
    write_clip(data / "vid3" / "vid3_1", a)
    (data / "vid3" / "vid3_1" / "vid3_1_frames_00000005.png").write_bytes(b"not a png")

    report = evaluate(data, systems=("copy",))
    assert report.weights is None and report.device is None
    rep = report.systems["copy"]
    assert [c.clip for c in rep.clips] == ["vid1/vid1_1", "vid2/vid2_1@0", "vid2/vid2_1@32"]
    assert report.skipped == ["vid3/vid3_1: a frame could not be read"]
    expected = score_clip(copy_baseline(b), b)
    assert rep.clips[1].psnr == pytest.approx(expected.psnr)
    assert rep.clips[1].ssim == pytest.approx(expected.ssim)
    assert rep.psnr == pytest.approx(np.mean([c.psnr for c in rep.clips]))
    assert rep.motion_ratio == 0.0

    limited = evaluate(data, systems=("copy",), limit=1)
    assert [c.clip for c in limited.systems["copy"].clips] == ["vid1/vid1_1"]


def test_evaluate_model_systems_score_what_the_pipeline_predicts(tmp_path: Path, tiny_model: Path):
    from skyforecast.model.pipeline import SkyPipeline

    data = tmp_path / "data"
    real = moving_clip(seed=3, size=128)
    write_clip(data / "v" / "v_1", real)
    report = evaluate(data, tiny_model, device="cpu", batch_size=2)
    assert list(report.systems) == ["default", "stage2", "transfer", "stage1", "copy"]
    assert "model folder" in report.weights and report.device == "cpu"

    pipe = SkyPipeline.from_pretrained(str(tiny_model), device="cpu")
    for name, stage in (("stage2", 2), ("stage1", 1)):
        pred = pipe.predict_squares(real[:1], stage=stage)[0]
        want = score_clip(pred, real)
        got = report.systems[name].clips[0]
        assert got.psnr == pytest.approx(want.psnr) and got.ssim == pytest.approx(want.ssim)
        assert got.motion_ratio == pytest.approx(want.motion_ratio)
        assert 0 < got.psnr < PSNR_CAP
    from skyforecast.render.transfer import transfer

    warped = transfer(real[0], pipe.predict_squares(real[:1], stage=2)[0])
    assert (warped[0] == real[0]).all()  # the photo itself, moved by the prediction's flow
    want, got = score_clip(warped, real), report.systems["transfer"].clips[0]
    assert got.psnr == pytest.approx(want.psnr) and got.motion_ratio == pytest.approx(want.motion_ratio)

    from skyforecast.render.steady import default_output

    made, _ = default_output(real[0], pipe.predict_squares(real[:1], stage=2)[0])
    assert (made[0] == real[0]).all()  # what predict writes by default, at 128x128: the photo, moved
    want, got = score_clip(made, real), report.systems["default"].clips[0]
    assert got.psnr == pytest.approx(want.psnr) and got.motion_ratio == pytest.approx(want.motion_ratio)

    d = report.to_dict()
    json.dumps(d)  # everything is plain JSON (no NaN, no numpy types)
    assert d["clips"] == 1 and set(d["systems"]) == {"default", "stage2", "transfer", "stage1", "copy"}
    assert d["systems"]["default"]["auto_direction_clips"] == 1


def test_evaluate_at_a_photo_size_and_best_of_k_directions(tmp_path: Path, tiny_model: Path):
    import cv2

    from skyforecast.model.pipeline import SkyPipeline
    from skyforecast.render.steady import default_output

    data = tmp_path / "data"
    real = drifting_clip(1.0, size=128, seed=5)
    write_clip(data / "v" / "v_1", real)
    report = evaluate(data, tiny_model, systems=("copy",), device="cpu", photo_size=256, directions=4)
    assert list(report.systems) == ["copy", "default", "best"]  # best-of-K brings the default along
    assert report.to_dict()["photo_size"] == 256 and report.to_dict()["directions"] == 4
    pred = SkyPipeline.from_pretrained(str(tiny_model), device="cpu").predict_squares(real[:1], stage=2)[0]
    big = cv2.resize(real[0], (256, 256), interpolation=cv2.INTER_CUBIC)
    scores = []
    for k in range(4):  # each direction rendered at 256 px, shrunk to 128 px and scored
        made, _ = default_output(big, pred, 90.0 * k)
        assert made.shape == (32, 256, 256, 3)
        small = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in made])
        scores.append(score_clip(small, real))
    best = report.systems["best"].clips[0]
    assert best.psnr == pytest.approx(max(s.psnr for s in scores))
    assert best.cover == pytest.approx(max(scores, key=lambda s: s.psnr).cover)
    assert report.systems["best"].speed_ratio is not None and report.systems["default"].cover is not None
    with pytest.raises(ValueError, match="photo size"):
        evaluate(data, tiny_model, systems=("copy",), photo_size=8)


def test_evaluate_rejects_unknown_systems(tmp_path: Path):
    with pytest.raises(ValueError, match="systems"):
        evaluate(tmp_path, systems=("stage3",))


# ---- real data ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _copy_report(data: Path):
    """One copy-baseline evaluation of the real data, shared by the tests that read it."""
    return evaluate(data, systems=("copy",))


def test_copy_baseline_on_real_sky_dev(real_sky_dev: Path):
    """The data README gives 25.70 dB for the first frame repeated. On these JPEG files our per-frame
    definition measures 25.56 dB and the pooled-MSE one 24.26 dB: per-frame is the only RGB definition
    within 0.2 dB, so it is the one used (the residual 0.14 dB is not explained; see the README)."""
    report = _copy_report(real_sky_dev)
    rep = report.systems["copy"]
    assert report.num_clips == 16 and not report.skipped
    assert rep.psnr == pytest.approx(25.56, abs=0.05)
    assert abs(rep.psnr - 25.70) < 0.2
    assert rep.psnr_pooled == pytest.approx(24.26, abs=0.05)
    assert rep.motion_ratio == 0.0
    assert 0.5 < rep.ssim < 1.0


def test_real_clip_motion_on_real_sky_dev(real_sky_dev: Path):
    """MOTION-NOTES measured the real clips at speed 0.82 px/step (median over clips 0.49), steadiness 0.90
    and leak 0.30 (the notes' ~0.33 is the same leak, averaged over clips instead of pooled). Ours: 0.84,
    0.49, 0.90, 0.29 pooled and 0.32 averaged."""
    report = _copy_report(real_sky_dev)
    real = report.real
    assert len(real.clips) == 16
    assert real.speed == pytest.approx(0.82, abs=0.03)
    assert real.speed_median == pytest.approx(0.49, abs=0.02)
    assert real.steadiness == pytest.approx(0.90, abs=0.02)
    assert real.leak == pytest.approx(0.30, abs=0.02)
    assert real.leak_clip_mean == pytest.approx(0.33, abs=0.02)
    assert sum(c.direction is not None for c in real.clips.values()) == 16
    copy = report.systems["copy"]
    assert copy.speed_ratio == 0.0 and copy.leak == 0.0 and copy.direction_agrees == (0, 16)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyforecast", "evaluate", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "COLUMNS": "120"},
    )


def test_cli_on_real_sky_dev_prints_tables_and_writes_json(
    real_sky_dev: Path, tiny_model: Path, tmp_path: Path
):
    out = tmp_path / "scores" / "eval.json"
    r = _cli(
        str(real_sky_dev),
        "-w",
        str(tiny_model),
        "--device",
        "cpu",
        "--limit",
        "3",
        "--per-clip",
        "--json",
        str(out),
        "-q",
    )
    assert r.returncode == 0, r.stderr
    for label in ("model (Stage II)", "Stage I (Base-Net)", "first frame repeated", "grid00/grid00_1"):
        assert label in r.stdout
    d = json.loads(out.read_text())
    assert d["clips"] == 3
    copy = d["systems"]["copy"]
    assert copy["motion_ratio"] == copy["inner_motion_ratio"] == 0.0 and len(copy["per_clip"]) == 3
    assert copy["per_clip"][0]["clip"] == "grid00/grid00_1"
    assert "inner_motion_ratio" in d["definitions"] and "inner" in r.stdout
    for column in ("speed", "steady", "leak", "dir", "real clip"):
        assert column in r.stdout
    assert len(d["real"]["per_clip"]) == 3 and 0 < d["real"]["speed"] < 5 and 0 < d["real"]["leak"] < 1
    assert copy["speed_ratio"] == 0.0 and copy["steadiness"] is None and copy["direction_agrees"] == 0
    for name in ("stage1", "stage2"):
        system = d["systems"][name]
        assert 0 < system["psnr"] < 100 and system["motion_ratio"] > 0 and system["inner_motion_ratio"] > 0
        inner = [c["inner_motion_ratio"] for c in system["per_clip"]]
        assert system["inner_motion_ratio"] == pytest.approx(sum(inner) / len(inner))
        speeds = [c["speed"] for c in system["per_clip"]]
        real_speeds = [c["speed"] for c in d["real"]["per_clip"]]
        assert system["speed_ratio"] == pytest.approx(sum(speeds) / sum(real_speeds))
        assert 0 <= system["direction_agrees"] <= system["direction_clips"] == 3

    r = _cli(str(real_sky_dev), "-w", str(tiny_model), "--device", "cpu", "--limit", "1", "--json", "-", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["clips"] == 1  # stdout holds only the JSON; the tables go to stderr
    assert "first frame repeated" in r.stderr


def test_cli_errors_are_one_line(tmp_path: Path, tiny_model: Path):
    r = _cli(str(tmp_path / "missing"), "-w", str(tiny_model))
    assert r.returncode == 1 and "no such folder" in r.stderr and "Traceback" not in r.stderr
    data = tmp_path / "data"
    write_clip(data / "v" / "v_1", moving_clip(size=128))
    r = _cli(str(data), "-w", str(tmp_path / "nope"))
    assert r.returncode == 1 and "no such model folder" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
