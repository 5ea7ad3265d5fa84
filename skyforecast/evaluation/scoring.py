"""Scoring predictions against real time-lapses: PSNR, SSIM and motion, for predict's output, the model and
baselines.

Every 32-frame clip of a dataset is predicted from its first frame and frames 1..31 of the prediction are
compared with the real frames 1..31 (frame 0 is the input itself, so it would only flatter the score).
Pixel metrics reward a video that does not move (repeating the first frame beats the authors' Stage II by
9 dB on real-sky-dev), so a motion ratio is always reported beside them, and the same run scores two
baselines: the first frame repeated 32 times (``copy``) and Base-Net alone (``stage1``). ``transfer``
scores the model's motion apart from its pixels: the input photo itself warped by the optical flow of the
Stage II prediction, with its slow brightness change (``skyforecast.render.motion``: the warp ``predict
--resolution`` applies, here to the 128x128 input and with no mask). It separates the cost of the
generator's blur (none here) from the cost of the motion. It says little about the motion's direction:
for the bundled model on real-sky-dev the same flow negated scores only 0.3 dB less. ``default`` scores what
``skyforecast predict`` writes by default, at 128x128 from the clip's first frame
(``steady.default_output``: the photo's sky moved by the steady field of the Stage II prediction).

Definitions (all on RGB in [0, 1]):

- PSNR of a clip: the mean over frames 1..31 of the per-frame PSNR ``10 log10(1 / MSE_t)``, MSE_t pooled
  over the frame's pixels and channels; a frame predicted exactly (MSE 0) counts as ``PSNR_CAP`` = 100 dB.
  With 8-bit frames of 128x128 the smallest non-zero MSE gives about 95 dB, so the cap never hides an
  error. ``psnr_pooled`` (one PSNR from the MSE pooled over all 31 frames) is reported too.
- SSIM of a clip: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  data range 1, computed per RGB channel over the valid region (no padding), averaged over channels, then
  over frames 1..31.
- frame change of a video: the mean absolute difference of consecutive frames over all 32 frames;
  a clip's motion ratio is the prediction's frame change over the real clip's (1 = as much change as
  reality, 0 = frozen; undefined, and left out of the mean, when the real clip does not change at all).
- inner motion ratio: the same over the inner frame steps only (1->2 ... 29->30), leaving out the step
  from frame 0 and the step into frame 31. A 3D U-Net's temporal padding makes its first and last frames
  jump (in our models each end step is 2.4-3.4x a real step), and two jumps out of 31 steps can make a video
  that hardly moves score a motion ratio of 0.5; this ratio says whether the middle of the video moves.
- speed, steadiness, leak and direction: measured from DIS optical flow over the inner frames 1..30
  (``skyforecast.evaluation.motion_metrics`` defines them). The speed ratio of a system is the sum over clips
  of its mean flow length over the sum of the real clips' (a ratio of means: clips that move more weigh more);
  the leak pools clips the same way (the sum of the system's still-region steps over the sum of the real
  clips' moving-region steps); steadiness is the mean over clips that move. Direction: in how many clips
  the system's dominant direction is within 90 degrees of the real clip's. The real clips themselves are
  measured the same way once per clip (``real_clip``) and reported as a "real clip" row, so a reader sees
  what a ratio of 1 means in px per step.
- Every other system score is the mean of its per-clip scores.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io.constants import FRAMES
from . import motion_metrics as mm

DIRECTION_AGREES = 90.0  # degrees: a system's direction agrees with the real clip's when at most this apart
PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

SYSTEMS = ("default", "stage2", "transfer", "stage1", "copy")
SYSTEM_LABELS = {
    "default": "predict (default)",
    "stage2": "model (Stage II)",
    "transfer": "Stage II flow on photo",
    "stage1": "Stage I (Base-Net)",
    "copy": "first frame repeated",
}
# The reference numbers on the 16 clips of ../shared/data/real-sky-dev (see its README).
REFERENCE_REAL_SKY_DEV = {
    "authors' Stage I": {"psnr": 22.96, "motion_ratio": 0.78},
    "authors' Stage II": {"psnr": 16.71, "motion_ratio": 0.90},
    "first frame repeated": {"psnr": 25.70, "motion_ratio": 0.00},
}

__all__ = [
    "PSNR_CAP",
    "REFERENCE_REAL_SKY_DEV",
    "SYSTEMS",
    "ClipScore",
    "EvalReport",
    "RealClip",
    "RealReport",
    "SystemReport",
    "copy_baseline",
    "evaluate",
    "frame_change",
    "inner_frame_change",
    "psnr_frames",
    "real_clip",
    "score_clip",
    "ssim_frames",
]


# ---- metrics ------------------------------------------------------------------------------------


def _unit(video: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float64 [0, 1]; float input is taken as already in [0, 1]."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video.astype(np.float64) / 255.0
    return video.astype(np.float64, copy=False)


def _check_pair(pred: np.ndarray, real: np.ndarray) -> None:
    if pred.shape != real.shape or pred.ndim != 4 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (T,H,W,3) videos of one shape, got {pred.shape} and {real.shape}")


def psnr_frames(pred: np.ndarray, real: np.ndarray, cap: float = PSNR_CAP) -> np.ndarray:
    """Per-frame PSNR in dB of two (T,H,W,3) videos (uint8, or float in [0, 1]), capped at ``cap``."""
    _check_pair(pred, real)
    mse = ((_unit(pred) - _unit(real)) ** 2).reshape(len(pred), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(1.0 / mse), cap)


def _psnr_pooled(pred: np.ndarray, real: np.ndarray, cap: float = PSNR_CAP) -> float:
    mse = float(((_unit(pred) - _unit(real)) ** 2).mean())
    return cap if mse == 0 else min(10.0 * math.log10(1.0 / mse), cap)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filtering of (T,H,W,C) over H and W (no padding, as in Wang et al.'s
    reference code: border windows would mix in invented pixels). OpenCV does the filtering because it
    is ~50x faster than numpy shifts; the border mode is irrelevant since the border is cropped away."""
    import cv2

    r = len(w) // 2
    out = np.empty((x.shape[0], x.shape[1] - 2 * r, x.shape[2] - 2 * r, x.shape[3]), np.float64)
    for t in range(len(x)):
        f = cv2.sepFilter2D(x[t], cv2.CV_64F, w, w, borderType=cv2.BORDER_REFLECT)
        out[t] = (f if f.ndim == 3 else f[..., None])[r:-r, r:-r]
    return out


def ssim_frames(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of two (T,H,W,3) videos (uint8, or float in [0, 1]), averaged over RGB channels."""
    _check_pair(pred, real)
    if min(pred.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    x, y = _unit(pred), _unit(real)
    w = _gaussian_window()
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mx, my = _filter_valid(x, w), _filter_valid(y, w)
    vx = _filter_valid(x * x, w) - mx * mx
    vy = _filter_valid(y * y, w) - my * my
    cxy = _filter_valid(x * y, w) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ssim_map.mean(axis=(1, 2, 3))


def frame_change(video: np.ndarray) -> float:
    """Mean absolute difference of consecutive frames of a (T,H,W,3) video, in [0, 1] units (what the
    motion ratio compares; not a flow length, unlike ``skyforecast.render.motion.flow_travel``)."""
    v = _unit(video)
    if len(v) < 2:
        return 0.0
    return float(np.abs(np.diff(v, axis=0)).mean())


def inner_frame_change(video: np.ndarray) -> float:
    """``frame_change`` without the first and the last frame step (0->1 and T-2->T-1): the change inside
    the clip, free of the jumps that temporal padding puts at a generated clip's two ends."""
    v = _unit(video)
    return frame_change(v[1:-1]) if len(v) >= 4 else frame_change(v)


def copy_baseline(real: np.ndarray, frames: int = FRAMES) -> np.ndarray:
    """The video that never moves: the clip's first frame repeated ``frames`` times."""
    return np.repeat(np.asarray(real)[:1], frames, axis=0)


@dataclass
class RealClip:
    """How a real clip moves: the reference its predictions' speed, leak and direction are measured
    against. ``regions`` (the still and moving pixels, for the leak) stays out of the JSON."""

    clip: str
    motion: float  # frame change over all 32 frames, [0, 1] units
    speed: float  # mean flow length per inner step, px
    steadiness: float | None
    leak: float | None  # the real clip against itself (sensor noise and light on still ground)
    direction: float | None  # degrees, 0 = right, 90 = up
    direction_consistency: float
    regions: mm.StillRegions = field(repr=False, compare=False)

    @property
    def moving_step(self) -> float:
        return self.regions.moving_step

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "regions"}
        d["moving_step"] = self.moving_step
        return d


def real_clip(real: np.ndarray, clip: str = "") -> RealClip:
    """Measure a real (T,H,W,3) clip once (its flows are computed here and nowhere else), for scoring any
    number of systems against it."""
    stats = mm.flow_stats(mm.inner_flows(real))
    regions = mm.still_regions(real)
    return RealClip(
        clip=clip,
        motion=frame_change(real),
        speed=stats.speed,
        steadiness=stats.steadiness,
        leak=mm.leak(real, regions),
        direction=stats.direction,
        direction_consistency=stats.consistency,
        regions=regions,
    )


@dataclass
class ClipScore:
    """One system's scores on one clip. ``motion_ratio`` is None when the real clip does not move;
    ``speed`` is in px per frame step, ``direction`` in degrees (0 = right, 90 = up; None when the video
    does not move), ``direction_agrees`` None when the real clip has no direction."""

    clip: str
    psnr: float
    psnr_pooled: float
    ssim: float
    motion: float
    motion_ratio: float | None
    inner_motion_ratio: float | None = None
    speed: float | None = None
    speed_ratio: float | None = None
    steadiness: float | None = None
    leak: float | None = None
    direction: float | None = None
    direction_consistency: float | None = None
    direction_agrees: bool | None = None
    cover: float | None = None


def score_clip(
    pred: np.ndarray,
    real: np.ndarray,
    clip: str = "",
    real_motion: float | None = None,
    reference: RealClip | None = None,
) -> ClipScore:
    """Score a predicted (32,H,W,3) video against the real one over frames 1..31 (frame 0 is the input).

    ``reference`` is the real clip's ``real_clip`` measurement; pass it when several systems are scored
    against one clip, so the real clip's flows are computed once. The prediction's flows are computed once
    here and give its speed, steadiness and direction together."""
    _check_pair(pred, real)
    if len(real) < 2:
        raise ValueError("a clip needs at least 2 frames (frame 0 is the input)")
    p, r = _unit(pred), _unit(real)
    if reference is None:
        reference = real_clip(real, clip)
    rm = reference.motion if real_motion is None else real_motion
    pm = frame_change(p)
    rim = inner_frame_change(r)
    stats = mm.flow_stats(mm.inner_flows(pred))
    agrees = None
    if reference.direction is not None:
        agrees = mm.agree_within(stats.direction, reference.direction, DIRECTION_AGREES)
    leak = (
        mm.still_step(pred, reference.regions) / reference.moving_step if reference.moving_step > 0 else None
    )
    return ClipScore(
        clip=clip,
        psnr=float(psnr_frames(p[1:], r[1:]).mean()),
        psnr_pooled=_psnr_pooled(p[1:], r[1:]),
        ssim=float(ssim_frames(p[1:], r[1:]).mean()),
        motion=pm,
        motion_ratio=pm / rm if rm > 0 else None,
        inner_motion_ratio=inner_frame_change(p) / rim if rim > 0 else None,
        speed=stats.speed,
        speed_ratio=stats.speed / reference.speed if reference.speed >= mm.NO_MOTION else None,
        steadiness=stats.steadiness,
        leak=leak,
        direction=stats.direction,
        direction_consistency=stats.consistency,
        direction_agrees=agrees,
        cover=mm.cover(pred, reference.regions),
    )


# ---- reports ------------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _pooled_leak(clips: Sequence[ClipScore | RealClip], real: dict[str, RealClip]) -> float | None:
    """The leak pooled over clips: sum of still-region steps over sum of the real moving-region steps."""
    pairs = [
        (c.leak * real[c.clip].moving_step, real[c.clip].moving_step)
        for c in clips
        if c.leak is not None and c.clip in real
    ]
    return mm.ratio_of_sums([n for n, _ in pairs], [d for _, d in pairs]) if pairs else None


@dataclass
class RealReport:
    """The real clips measured as a system would be: what speed ratio 1 and the other numbers mean."""

    clips: dict[str, RealClip] = field(default_factory=dict)

    label = "real clip"

    @property
    def speed(self) -> float | None:
        """Mean over clips of the mean flow length per inner step, px: the speed ratio's denominator."""
        return _mean([c.speed for c in self.clips.values()])

    @property
    def speed_median(self) -> float | None:
        return float(np.median([c.speed for c in self.clips.values()])) if self.clips else None

    @property
    def steadiness(self) -> float | None:
        return _mean([c.steadiness for c in self.clips.values()])

    @property
    def leak(self) -> float | None:
        return _pooled_leak(list(self.clips.values()), self.clips)

    @property
    def leak_clip_mean(self) -> float | None:
        return _mean([c.leak for c in self.clips.values()])

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "speed": self.speed,
            "speed_median": self.speed_median,
            "steadiness": self.steadiness,
            "leak": self.leak,
            "leak_clip_mean": self.leak_clip_mean,
            "direction_consistency": _mean([c.direction_consistency for c in self.clips.values()]),
            "per_clip": [c.to_dict() for c in self.clips.values()],
        }


@dataclass
class SystemReport:
    """One system (one of ``SYSTEMS``) over all clips; the means are over clips. ``real`` holds the real
    clips' measurements (shared with the ``EvalReport``) for the pooled speed ratio and leak."""

    name: str
    clips: list[ClipScore] = field(default_factory=list)
    real: dict[str, RealClip] = field(default_factory=dict, repr=False)
    # "default" only: per clip, whether --direction auto took the prediction's direction, and whether that
    # direction agreed with the real clip's (None: the real clip has no direction)
    auto_direction: dict[str, tuple[bool, bool | None]] = field(default_factory=dict)
    label_text: str | None = None  # a label for a system outside ``SYSTEM_LABELS`` (best of K)

    @property
    def label(self) -> str:
        return self.label_text or SYSTEM_LABELS.get(self.name, self.name)

    @property
    def psnr(self) -> float | None:
        return _mean([c.psnr for c in self.clips])

    @property
    def psnr_pooled(self) -> float | None:
        return _mean([c.psnr_pooled for c in self.clips])

    @property
    def ssim(self) -> float | None:
        return _mean([c.ssim for c in self.clips])

    @property
    def motion_ratio(self) -> float | None:
        return _mean([c.motion_ratio for c in self.clips])

    @property
    def inner_motion_ratio(self) -> float | None:
        return _mean([c.inner_motion_ratio for c in self.clips])

    @property
    def speed(self) -> float | None:
        """Mean over clips of the mean flow length per inner step, px."""
        return _mean([c.speed for c in self.clips])

    @property
    def speed_ratio(self) -> float | None:
        """Sum over clips of this system's speed over the sum of the real clips' speeds."""
        pairs = [
            (c.speed, self.real[c.clip].speed)
            for c in self.clips
            if c.speed is not None and c.clip in self.real
        ]
        return mm.ratio_of_sums([p for p, _ in pairs], [r for _, r in pairs]) if pairs else None

    @property
    def steadiness(self) -> float | None:
        """Mean over the clips where the system moves."""
        return _mean([c.steadiness for c in self.clips])

    @property
    def leak(self) -> float | None:
        return _pooled_leak(self.clips, self.real)

    @property
    def leak_clip_mean(self) -> float | None:
        return _mean([c.leak for c in self.clips])

    @property
    def cover(self) -> float | None:
        """Mean over clips of the share of the real clip's moving pixels that move here too."""
        return _mean([c.cover for c in self.clips])

    @property
    def direction_agrees(self) -> tuple[int, int]:
        """(clips whose direction agrees with the real clip's within 90 degrees, clips where the real clip
        has a direction); a clip where the system does not move counts as not agreeing."""
        known = [c.direction_agrees for c in self.clips if c.direction_agrees is not None]
        return sum(known), len(known)

    def to_dict(self) -> dict:
        agree, of = self.direction_agrees
        return {
            "label": self.label,
            "psnr": self.psnr,
            "psnr_pooled": self.psnr_pooled,
            "ssim": self.ssim,
            "motion_ratio": self.motion_ratio,
            "inner_motion_ratio": self.inner_motion_ratio,
            "speed": self.speed,
            "speed_ratio": self.speed_ratio,
            "steadiness": self.steadiness,
            "leak": self.leak,
            "leak_clip_mean": self.leak_clip_mean,
            "cover": self.cover,
            "direction_agrees": agree,
            "direction_clips": of,
            "direction_consistency": _mean([c.direction_consistency for c in self.clips]),
            **self._auto_direction_dict(),
            "per_clip": [asdict(c) for c in self.clips],
        }

    def _auto_direction_dict(self) -> dict:
        if not self.auto_direction:
            return {}
        took = [agrees for used, agrees in self.auto_direction.values() if used]
        return {
            "auto_direction_from_prediction": len(took),
            "auto_direction_from_prediction_agrees": sum(1 for a in took if a),
            "auto_direction_clips": len(self.auto_direction),
        }


@dataclass
class EvalReport:
    """Everything one evaluation run measured; ``to_dict`` is what ``--json`` writes."""

    data: str
    weights: str | None
    device: str | None
    systems: dict[str, SystemReport]
    real_motion: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    real: RealReport = field(default_factory=RealReport)
    photo_size: int | None = None  # the default output's photo: the first frame enlarged to this (px)
    directions: int | None = None  # best of this many directions, when asked

    def __post_init__(self) -> None:
        for rep in self.systems.values():  # one dict of real clips, seen by every system
            rep.real = self.real.clips

    @property
    def num_clips(self) -> int:
        return len(self.real_motion)

    def to_dict(self) -> dict:
        return {
            "data": self.data,
            "weights": self.weights,
            "device": self.device,
            "clips": self.num_clips,
            "photo_size": self.photo_size,
            "directions": self.directions,
            "skipped": self.skipped,
            "definitions": DEFINITIONS,
            "real_motion_mean": _mean(list(self.real_motion.values())),
            "real": self.real.to_dict(),
            "systems": {name: rep.to_dict() for name, rep in self.systems.items()},
        }


DEFINITIONS = {
    "frames": "prediction frames 1..31 against real frames 1..31; frame 0 is the input",
    "psnr": f"mean over frames of 10*log10(1/MSE_t), RGB in [0,1], capped at {PSNR_CAP:g} dB; then mean "
    "over clips",
    "psnr_pooled": "per clip 10*log10(1/MSE) with MSE pooled over frames 1..31; mean over clips",
    "ssim": f"Gaussian window {SSIM_WINDOW}, sigma {SSIM_SIGMA}, K1 {SSIM_K1}, K2 {SSIM_K2}, valid region, "
    "mean over RGB channels and frames; mean over clips",
    "motion_ratio": "mean |frame t+1 - frame t| of the prediction (32 frames) over that of the real clip; "
    "mean over clips",
    "inner_motion_ratio": "as motion_ratio over the inner frame steps 1->2 .. 29->30 only (no step from "
    "frame 0 or into frame 31, where temporal padding makes generated clips jump)",
    "flows": "OpenCV DIS optical flow, preset MEDIUM, frame t -> t+1 for the inner steps 1->2 .. 29->30, on "
    "8-bit grey frames (cv2 RGB2GRAY) at 128x128; computed once per video",
    "speed": "mean flow length over all pixels and inner steps, px per frame step; per system the mean over "
    "clips",
    "speed_ratio": "sum over clips of the system's speed / sum over clips of the real clips' speed (a ratio "
    "of means); per clip: the system's speed / the real clip's",
    "steadiness": "each pixel of frame 1 followed along its trajectory (each next flow sampled bilinearly "
    "at the displaced position, border flow outside the frame); on the pixels whose path length is above "
    "the median: sum |net displacement| / sum path length; null when the video does not move; per system "
    "the mean over clips where it moves",
    "leak": "mean |grey frame step| (inner steps, [0,1]) of the system on the real clip's still pixels "
    "(lowest 40 % of per-pixel temporal std of the real clip's grey frames 1..30) / the real clip's mean "
    "|grey frame step| on its moving pixels (top 30 %); per system pooled over clips: sum of numerators / "
    "sum of denominators (leak_clip_mean: the mean of the per-clip ratios)",
    "direction": "per clip: angle of the mean flow vector over the moving half of the pixels (as for "
    "steadiness) and the inner steps, degrees counter-clockwise from right as seen on screen (0 right, 90 "
    "up, 180 left, 270 down); direction_consistency = |mean vector| / mean vector length; null when the "
    "video does not move",
    "direction_consistency": "per system and for the real clips: the mean over clips of the per-clip "
    "consistency (near 0: no dominant direction, so agreement is a coin toss)",
    "direction_agrees": f"clips whose direction is within {DIRECTION_AGREES:g} degrees of the real clip's, "
    "out of direction_clips (the clips where the real clip has a direction); not moving = not agreeing",
    "cover": "share of the real clip's moving pixels (top 30 % of per-pixel temporal std of grey frames "
    "0..31) where the system's mean |grey frame step| over frames 0..31 is at least a third of the real "
    "clip's there; mean over clips",
    "photo_size": "null: the default output renders the clip's 128x128 first frame; N: that frame enlarged "
    "to NxN (bicubic) as the photo, the default output rendered at that size and shrunk to 128x128 "
    "(area) to be scored (the prediction is the same: the model sees 128 px either way)",
    "best": "the default output rendered with --direction 0, 360/K, ... (K = directions); per clip the "
    "direction with the best PSNR, all its scores; then mean over clips (best of K samples, as stochastic "
    "video prediction is scored)",
    "real": "the real clips measured like a system (speed in px per step, leak of the real clip against "
    "itself): what a ratio of 1 means",
}


# ---- the evaluation loop ------------------------------------------------------------------------


def _clip_name(index, clip, clips_per_sequence: dict[int, int]) -> str:
    """A readable clip id: the frame folder or video relative to the data root, plus ``@start`` when a
    sequence gives several clips."""
    seq = index.sequences[clip.sequence]
    try:
        name = Path(seq.path).relative_to(index.root).as_posix()
    except ValueError:
        name = seq.path
    if name in ("", "."):
        name = Path(index.root).name
    return f"{name}@{clip.start}" if clips_per_sequence[clip.sequence] > 1 else name


def _checked_systems(
    systems: Sequence[str], batch_size: int, photo_size: int | None, directions: int | None
) -> Sequence[str]:
    """``evaluate``'s arguments checked (``ValueError`` names the bad one); the systems to score, with the
    default output added when ``directions`` asks for its best of K."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"systems must be among {SYSTEMS}, got {list(systems)}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if photo_size is not None and not 16 <= photo_size <= 4096:
        raise ValueError(f"photo size must be 16..4096 px, got {photo_size}")
    if directions is not None and not 1 <= directions <= 64:
        raise ValueError(f"directions must be 1..64, got {directions}")
    if directions is not None and "default" not in systems:
        systems = (*systems, "default")
    return systems


def evaluate(
    data: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    *,
    systems: Sequence[str] = SYSTEMS,
    device: str = "auto",
    batch_size: int = 8,
    limit: int | None = None,
    pipeline=None,
    on_clip: Callable[[str, int, int], None] | None = None,
    photo_size: int | None = None,
    directions: int | None = None,
    index=None,
) -> EvalReport:
    """Predict every 32-frame clip of ``data`` from its first frame and score the chosen ``systems``.

    Clips are found and read exactly as training reads them (``skyforecast.io.clips``: Sky Timelapse
    ``<video>/<clip>/*.jpg``, image-sequence folders or video files; frames squashed to 128x128), so
    evaluation sees what training saw. Clips are predicted and scored ``batch_size`` at a time, never all
    held in memory. ``pipeline`` (a ``SkyPipeline``) overrides ``weights``/``device``; model systems are
    only loaded when asked for, so ``systems=("copy",)`` needs no weights. Raises ``DataError`` for
    unusable data and ``WeightsError`` for unusable weights. ``on_clip(name, done, total)`` is called after
    each clip. ``photo_size``: the default output starts from the first frame enlarged to that many pixels
    (what a user's photo looks like to the renderer), scored at 128 px. ``directions``: also score the
    default output's best of that many directions (the system ``best``).
    ``index`` (a ``data.ClipIndex``) scores those clips instead of discovering ``data``'s (a
    training run's held-out share).
    """
    from ..io.clips import ClipDataset, discover_clips

    systems = _checked_systems(systems, batch_size, photo_size, directions)
    index = discover_clips(data, frames=FRAMES) if index is None else index
    count = len(index.clips) if limit is None else min(len(index.clips), max(0, int(limit)))
    dataset = ClipDataset(index, crop="squash")

    needs_model = any(s != "copy" for s in systems)
    weights_text = None
    if needs_model and pipeline is None:
        from ..model.pipeline import SkyPipeline
        from ..model.weights import resolve

        weights_text = resolve(weights).describe()
        pipeline = SkyPipeline.from_pretrained(weights, device=device)
    elif needs_model:
        weights_text = "a SkyPipeline passed in"

    report = EvalReport(
        data=str(data),
        weights=weights_text,
        device=str(pipeline.device) if needs_model else None,
        systems={s: SystemReport(s) for s in systems},
        photo_size=photo_size,
        directions=directions,
    )
    if directions is not None:
        report.systems["best"] = SystemReport(
            "best", label_text=f"best of {directions} directions", real=report.real.clips
        )
    per_sequence = Counter(c.sequence for c in index.clips)
    for start in range(0, count, batch_size):
        names, reals = [], []
        for i in range(start, min(start + batch_size, count)):
            name = _clip_name(index, index.clips[i], per_sequence)
            item = dataset[i]
            if item is None:
                report.skipped.append(f"{name}: a frame could not be read")
                continue
            names.append(name)
            reals.append(item.numpy().transpose(1, 2, 3, 0))  # (3,T,H,W) -> (T,H,W,3)
        if not reals:
            continue
        real = np.stack(reals)
        preds, fits = _system_videos(pipeline, real, systems, batch_size, photo_size)
        for i, name in enumerate(names):
            ref = real_clip(real[i], name)  # the real clip's flows: computed once, used by every system
            report.real.clips[name] = ref
            report.real_motion[name] = ref.motion
            for s in systems:
                report.systems[s].clips.append(score_clip(preds[s][i], real[i], clip=name, reference=ref))
            if directions is not None:
                best = _best_direction(real[i], preds["stage2"][i], directions, photo_size)
                report.systems["best"].clips.append(score_clip(best, real[i], clip=name, reference=ref))
            if "default" in systems:
                used, fitted = fits[i]
                agrees = None
                if ref.direction is not None:
                    agrees = mm.agree_within(fitted, ref.direction, DIRECTION_AGREES)
                report.systems["default"].auto_direction[name] = (used, agrees)
            if on_clip is not None:
                on_clip(name, len(report.real_motion) + len(report.skipped), count)
    return report


def _default_video(
    first: np.ndarray, prediction: np.ndarray, photo_size: int | None, direction: float | None = None
):
    """``steady.default_output`` for a clip's first frame, at ``photo_size`` when given (the frame enlarged
    bicubically, the output shrunk back to the clip's size): (frames, field)."""
    import cv2

    from ..render.steady import default_output

    if photo_size is None:
        return default_output(first, prediction, direction)
    h, w = first.shape[:2]
    big = cv2.resize(first, (photo_size, photo_size), interpolation=cv2.INTER_CUBIC)
    video, fit = default_output(big, prediction, direction)
    small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in video])
    return small, fit


def _best_direction(real: np.ndarray, prediction: np.ndarray, k: int, photo_size: int | None) -> np.ndarray:
    """The default output with the direction (of 0, 360/k, ...) whose PSNR against ``real`` is best."""
    best, best_psnr = None, -math.inf
    for i in range(k):
        video, _ = _default_video(real[0], prediction, photo_size, 360.0 * i / k)
        psnr = float(psnr_frames(video[1:], real[1:]).mean())
        if psnr > best_psnr:
            best, best_psnr = video, psnr
    return best


def _system_videos(
    pipeline, real: np.ndarray, systems: Sequence[str], batch_size: int, photo_size: int | None = None
) -> tuple[dict[str, np.ndarray], list[tuple[bool, float | None]]]:
    """Each asked system's videos for a batch of real clips (N,T,H,W,3), and for the default system, per
    clip, whether ``--direction auto`` took the prediction's direction and the direction it fitted. The
    default and transfer systems start from Stage II's prediction, made once for both."""
    preds: dict[str, np.ndarray] = {}
    for s in systems:
        if s == "copy":
            preds[s] = np.stack([copy_baseline(r) for r in real])
        elif s in ("stage1", "stage2"):
            preds[s] = pipeline.predict_squares(real[:, 0], stage=int(s[-1]), batch_size=batch_size)
    if ("default" in systems or "transfer" in systems) and "stage2" not in preds:
        preds["stage2"] = pipeline.predict_squares(real[:, 0], stage=2, batch_size=batch_size)
    fits: list[tuple[bool, float | None]] = []
    if "default" in systems:
        made = [_default_video(r[0], y, photo_size) for r, y in zip(real, preds["stage2"], strict=True)]
        preds["default"] = np.stack([video for video, _ in made])
        fits = [(fit.source == "prediction", fit.direction) for _, fit in made]
    if "transfer" in systems:
        from ..render.motion import transfer

        preds["transfer"] = np.stack([transfer(r[0], y) for r, y in zip(real, preds["stage2"], strict=True)])
    return preds, fits


# ---- presentation -------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _direction_cell(score: ClipScore | RealClip) -> str:
    if score.direction is None:
        return "none"
    text = f"{score.direction:.0f}°"
    agrees = getattr(score, "direction_agrees", None)
    return text if agrees is None else f"{text} {'yes' if agrees else 'no'}"


def _cells(score: SystemReport | ClipScore) -> list[str]:
    """PSNR, SSIM, motion ratio, inner motion ratio, speed ratio, steadiness, leak and direction as the
    tables print them."""
    if isinstance(score, SystemReport):
        agree, of = score.direction_agrees
        direction = f"{agree}/{of}"
    else:
        direction = _direction_cell(score)
    return [
        _fmt(score.psnr, 2),
        _fmt(score.ssim, 3),
        _fmt(score.motion_ratio, 2),
        _fmt(score.inner_motion_ratio, 2),
        _fmt(score.speed_ratio, 2),
        _fmt(score.steadiness, 2),
        _fmt(score.leak, 2),
        _fmt(score.cover, 2),
        direction,
    ]


def _real_cells(score: RealReport | RealClip) -> list[str]:
    """The real clip as a row: its own motion in absolute units where a system shows ratios."""
    direction = "" if isinstance(score, RealReport) else _direction_cell(score)
    return [
        "",
        "",
        "1.00",
        "1.00",
        _fmt(score.speed, 2),
        _fmt(score.steadiness, 2),
        _fmt(score.leak, 2),
        "1.00",
        direction,
    ]


_COLUMNS = ("PSNR", "SSIM", "motion", "inner", "speed", "steady", "leak", "cover", "dir")


def _table(title: str, first: str, caption: str | None = None):
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        caption=caption,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),  # the box's one-space dividers keep the columns apart: the summary fits 80 columns
        show_edge=False,
    )
    table.add_column(first, no_wrap=True)  # system and clip names stay whole (and greppable)
    for name in _COLUMNS:
        table.add_column(name, justify="right")
    return table


def report_tables(report: EvalReport, per_clip: bool = False) -> list:
    """Rich tables for a report: one row per system and one for the real clips, then (``per_clip``) one
    table per system with a row per clip. Kept here rather than in the CLI so notebooks can show the same
    tables."""
    weights = f"weights: {report.weights}" if report.weights else "no model"
    summary = _table(
        f"{report.data}: {report.num_clips} clips, frames 1..31",
        "system",
        f"{weights}. PSNR in dB; motion: motion ratio, 1 = moves as much as the real clip, 0 = frozen; "
        "inner: the same without the first and last frame steps; speed: flow length per inner step over the "
        "real clips' (real clip row: px per step); steady: net displacement / path length of moving pixels; "
        "leak: change where the real clip is still (lower = ground holds still); cover: share of the real "
        "clip's moving pixels that move here too; dir: clips whose "
        f"direction is within {DIRECTION_AGREES:g}° of the real clip's",
    )
    summary.add_row(report.real.label, *_real_cells(report.real), style="dim")
    for rep in report.systems.values():
        summary.add_row(rep.label, *_cells(rep))
    tables = [summary]
    if per_clip:
        real = _table(
            report.real.label, "clip", "speed in px per step; direction in degrees: 0 = right, 90 = up"
        )
        for c in report.real.clips.values():
            real.add_row(c.clip, *_real_cells(c))
        tables.append(real)
        for rep in report.systems.values():
            table = _table(rep.label, "clip")
            for c in rep.clips:
                table.add_row(c.clip, *_cells(c))
            tables.append(table)
    return tables
