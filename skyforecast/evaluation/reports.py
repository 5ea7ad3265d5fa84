"""What an evaluation run reports: each system's scores pooled over clips (``SystemReport``), the real clips
measured as a system would be (``RealReport``), the whole run (``EvalReport``) and the definitions its JSON
carries. Apart from the evaluation loop so that a report can be built, read and printed without a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from . import motion_metrics as mm
from .clip_scores import DIRECTION_AGREES, ClipScore, RealClip
from .metrics import PSNR_CAP, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW

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
    def cover_slow(self) -> float | None:
        """Mean over clips of the share of the real moving pixels that move here under a third as much."""
        return _mean([c.cover_slow for c in self.clips])

    @property
    def cover_still(self) -> float | None:
        """Mean over clips of the share of the real moving pixels held still here (under a tenth as much)."""
        return _mean([c.cover_still for c in self.clips])

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
            "cover_slow": self.cover_slow,
            "cover_still": self.cover_still,
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
    "cover_slow": "share of the same pixels where the system's mean step is at least a tenth of the real "
    "clip's but under a third (moves, too slowly); mean over clips",
    "cover_still": "share of the same pixels where it is under a tenth (held still or nearly); cover + "
    "cover_slow + cover_still = 1 per clip",
    "photo_size": "null: the default output renders the clip's 128x128 first frame; N: that frame enlarged "
    "to NxN (bicubic) as the photo, the default output rendered at that size and shrunk to 128x128 "
    "(area) to be scored (the prediction is the same: the model sees 128 px either way)",
    "best": "the default output rendered with --direction 0, 360/K, ... (K = directions); per clip the "
    "direction with the best PSNR, all its scores; then mean over clips (best of K samples, as stochastic "
    "video prediction is scored)",
    "real": "the real clips measured like a system (speed in px per step, leak of the real clip against "
    "itself): what a ratio of 1 means",
}
