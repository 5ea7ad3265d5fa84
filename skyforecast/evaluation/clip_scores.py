"""One clip scored: how a real clip moves (``RealClip``, measured once) and one system's scores against it
(``ClipScore``). Apart from the reports that pool them over clips and from the loop that makes the videos, so
one pair of videos can be scored without either."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import motion_metrics as mm
from .metrics import (
    _check_pair,
    _psnr_pooled,
    _unit,
    frame_change,
    inner_frame_change,
    psnr_frames,
    ssim_frames,
)

DIRECTION_AGREES = 90.0  # degrees: a system's direction agrees with the real clip's when at most this apart


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
    cover_slow: float | None = None  # share of the real moving pixels that move, but under a third as much
    cover_still: float | None = None  # ... that move under a tenth as much: held still


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
    covered, slow, still = mm.cover_shares(pred, reference.regions) or (None, None, None)
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
        cover=covered,
        cover_slow=slow,
        cover_still=still,
    )
