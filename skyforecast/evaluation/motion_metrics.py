"""How a video moves, measured from dense optical flow: speed, steadiness, leak and direction.

Pixel metrics cannot tell clouds that drift from clouds that shimmer, nor a sky that moves from a roof that
wobbles. These numbers can, and they are cheap enough to compute for every clip and every system that
``skyforecast.evaluation.scoring`` scores. Only numpy and OpenCV are needed (no torch), so any module can
import them.

All of them look at the *inner* frames 1..30 of a 32-frame clip, i.e. the frame steps 1->2 .. 29->30: a 3D
U-Net's temporal padding makes the step out of frame 0 and the step into frame 31 jump, and a predicted
clip's frame 0 is the input photo itself.

Definitions (the evaluation README and the JSON ``definitions`` block repeat them):

- flows: OpenCV DIS optical flow (preset MEDIUM) from frame t to frame t+1 for each inner step, computed on
  8-bit grey frames (``cv2.COLOR_RGB2GRAY``; float input in [0, 1] is rounded to 8 bits first), in pixels.
  The flow at pixel x says where the content at x in frame t went in frame t+1.
- speed: the mean flow length over all pixels and inner steps, in pixels per frame step.
- steadiness: every pixel of frame 1 is followed along its trajectory (the flow of each next step is
  sampled, bilinearly, at the pixel's displaced position; positions that leave the frame sample the nearest
  border flow). Its path length is the sum of the sampled flow lengths, its net displacement the distance
  from start to end. On the moving half of the pixels (path length above the median path length) the
  steadiness is sum |net displacement| / sum path length: 1 for content that drifts in a straight line, near
  0 for content that shimmers back and forth. Undefined (None) when nothing moves.
- leak of a video against a real clip: the mean |frame step| of the video where the real clip is still (the
  40 % of pixels with the lowest temporal standard deviation in the real clip) over the real clip's own mean
  |frame step| where it moves (the 30 % with the highest). Frame steps are absolute differences of
  consecutive grey frames (BT.601 weights) in [0, 1], std over the inner frames. The real clip against
  itself scores ~0.3 (sensor noise and light also change still ground); lower means the ground holds still.
- cover of a video against a real clip: the share of the real clip's moving pixels (the 30 % with the
  highest temporal std of grey frames 0..31) where the video's mean |frame step| over frames 0..31 is at
  least ``COVER_SHARE`` of the real clip's at that pixel. Leak says whether the ground holds still; cover
  says whether the sky that moves in reality moves in the video (a mask that keeps a band of cloud frozen
  scores low). Real clips score 1 against themselves.
- direction: the mean flow vector over the moving half of the pixels (as for steadiness) and all inner
  steps, as an angle in degrees counter-clockwise from "to the right" as seen on screen (0 = right, 90 = up,
  180 = left, 270 = down), in [0, 360); consistency = |mean vector| / mean vector length, in [0, 1] (1 when
  every moving pixel moves the same way). The angle is None when nothing moves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FIRST_INNER = 1  # inner frames 1..30 of a 32-frame clip: steps 1->2 .. 29->30
LAST_INNER = 30
STILL_SHARE = 0.4  # leak: the real clip's stillest 40 % of pixels ...
MOVING_SHARE = 0.3  # ... against its most changing 30 %
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as cv2.COLOR_RGB2GRAY
COVER_SHARE = 1.0 / 3.0  # cover: a pixel moves when its mean step is at least this share of the real one's
COVER_STILL = 0.1  # ... and is held still (or nearly) below this share; slow in between
NO_MOTION = 1e-3  # px per step: below this mean flow length a video counts as not moving

__all__ = [
    "FIRST_INNER",
    "LAST_INNER",
    "FlowStats",
    "StillRegions",
    "agree_within",
    "cover",
    "cover_shares",
    "angle_difference",
    "flow_speed",
    "flow_stats",
    "follow_pixels",
    "inner_flows",
    "leak",
    "motion_direction",
    "moving_half",
    "ratio_of_sums",
    "steadiness",
    "still_regions",
    "still_step",
]


# ---- flows --------------------------------------------------------------------------------------


def _grey_u8(video: np.ndarray) -> np.ndarray:
    """(T,H,W,3) uint8, or float in [0, 1] -> (T,H,W) uint8 grey frames (what DIS accepts)."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a (T,H,W,3) video, got shape {video.shape}")
    if video.dtype != np.uint8:
        video = np.clip(np.rint(video.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video])


def _inner(length: int, first: int, last: int) -> slice:
    """The inner frames first..last of a video, or all of it when it is too short to have them."""
    if length > last:
        return slice(first, last + 1)
    return slice(0, length)


def inner_flows(video: np.ndarray, first: int = FIRST_INNER, last: int = LAST_INNER) -> np.ndarray:
    """DIS (preset MEDIUM) forward flows between consecutive frames first..last of a (T,H,W,3) video:
    (last - first, H, W, 2) float32 in pixels, (dx, dy) with y pointing down. A video of ``last`` frames or
    fewer uses all its frames. Compute these once per video and derive every number from them. Two
    identical frames get a zero flow without running DIS (which returns exactly zero for them anyway): a
    still copy costs nothing."""
    grey = _grey_u8(video)[_inner(len(video), first, last)]
    if len(grey) < 2:
        raise ValueError("a video needs at least 2 frames to measure motion")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = np.zeros((len(grey) - 1, *grey.shape[1:], 2), np.float32)
    for i in range(len(grey) - 1):
        if not np.array_equal(grey[i], grey[i + 1]):
            flows[i] = dis.calc(grey[i], grey[i + 1], None)
    return flows


def _lengths(flows: np.ndarray) -> np.ndarray:
    flows = np.asarray(flows, np.float32)
    return np.sqrt(flows[..., 0] ** 2 + flows[..., 1] ** 2)


def flow_speed(flows: np.ndarray) -> float:
    """Mean flow length over all pixels and steps of (S,H,W,2) flows: pixels per frame step."""
    return float(_lengths(flows).mean(dtype=np.float64))


def follow_pixels(flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Follow every pixel of the first frame through (S,H,W,2) forward flows.

    Returns (displacement (H,W,2), path length (H,W)), both float32 in pixels. Each step's flow is sampled
    bilinearly where the pixel has got to, not where it started: summing flows at fixed pixels would add up
    the motion of different pieces of cloud and call a drift that crosses a flow boundary unsteady (or a
    shimmer that moves past steady). Outside the frame the nearest border flow is used."""
    flows = np.asarray(flows, np.float32)
    _, h, w, _ = flows.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    px, py = xs.copy(), ys.copy()
    path = np.zeros((h, w), np.float32)
    for flow in flows:
        step = cv2.remap(flow, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        path += np.sqrt(step[..., 0] ** 2 + step[..., 1] ** 2)
        px += step[..., 0]
        py += step[..., 1]
    return np.dstack([px - xs, py - ys]), path


def moving_half(path: np.ndarray) -> np.ndarray:
    """The pixels whose path length is above the median path length: (H,W) bool."""
    return path > np.median(path)


@dataclass(frozen=True)
class FlowStats:
    """What one video's inner flows say: speed (px/step), steadiness, direction (degrees, see the module
    docstring) and its consistency. ``steadiness`` and ``direction`` are None when nothing moves."""

    speed: float
    steadiness: float | None
    direction: float | None
    consistency: float


def _direction(flows: np.ndarray, lengths: np.ndarray, moving: np.ndarray) -> tuple[float | None, float]:
    """Angle and consistency of the mean flow vector over the ``moving`` pixels and all steps."""
    count = int(moving.sum()) * len(flows)
    if count == 0:
        return None, 0.0
    mean_length = float(lengths.sum(axis=0, dtype=np.float64)[moving].sum()) / count
    if mean_length < NO_MOTION:
        return None, 0.0
    total = np.asarray(flows, np.float32).sum(axis=0, dtype=np.float64)[moving].sum(axis=0) / count
    mx, my = float(total[0]), float(total[1])
    angle = math.degrees(math.atan2(-my, mx)) % 360.0  # y points down in images; up is 90 degrees
    return angle, min(1.0, math.hypot(mx, my) / mean_length)


def flow_stats(flows: np.ndarray) -> FlowStats:
    """Speed, steadiness and direction from one video's inner flows (the flows are followed once)."""
    lengths = _lengths(flows)
    speed = float(lengths.mean(dtype=np.float64))
    net, path = follow_pixels(flows)
    moving = moving_half(path)
    travelled = float(path[moving].sum(dtype=np.float64))
    steady = None
    if speed >= NO_MOTION and travelled > 0:
        steady = float(np.sqrt((net[moving].astype(np.float64) ** 2).sum(axis=-1)).sum() / travelled)
    angle, consistency = _direction(flows, lengths, moving)
    return FlowStats(speed=speed, steadiness=steady, direction=angle, consistency=consistency)


def steadiness(video: np.ndarray) -> float | None:
    """|net displacement| / path length of the moving half of the pixels over the inner steps (see the
    module docstring); None when the video does not move."""
    return flow_stats(inner_flows(video)).steadiness


def motion_direction(video: np.ndarray) -> tuple[float | None, float]:
    """(angle in degrees, consistency) of a video's dominant motion over its inner steps: 0 = right,
    90 = up, 180 = left, 270 = down as seen on screen; consistency in [0, 1]. The angle is None when the
    video does not move."""
    stats = flow_stats(inner_flows(video))
    return stats.direction, stats.consistency


def angle_difference(a: float, b: float) -> float:
    """The smaller angle between two directions in degrees: in [0, 180]."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def agree_within(a: float | None, b: float | None, degrees: float = 90.0) -> bool:
    """Whether two directions (degrees) are at most ``degrees`` apart; False when either is None."""
    if a is None or b is None:
        return False
    return angle_difference(a, b) <= degrees


# ---- leak ---------------------------------------------------------------------------------------


def _grey_unit(video: np.ndarray, first: int, last: int) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a (T,H,W,3) video, got shape {video.shape}")
    inner = video[_inner(len(video), first, last)]
    scale = 1 / 255.0 if inner.dtype == np.uint8 else 1.0
    return inner.astype(np.float32) @ (GREY_WEIGHTS * np.float32(scale))


def _mean_step(grey: np.ndarray) -> np.ndarray:
    """Per-pixel mean |frame step| of (T,H,W) grey frames: (H,W)."""
    if len(grey) < 2:
        raise ValueError("a video needs at least 2 frames to measure motion")
    return np.abs(np.diff(grey, axis=0)).mean(axis=0)


@dataclass(frozen=True)
class StillRegions:
    """Where a real clip is still, and how much it changes where it moves: the leak's reference, computed
    once per real clip and shared by every system scored against it."""

    still: np.ndarray  # (H,W) bool: the STILL_SHARE of pixels with the lowest temporal std
    moving: np.ndarray  # (H,W) bool: the MOVING_SHARE with the highest
    moving_step: float  # the real clip's mean |frame step| over ``moving``, grey in [0, 1]
    # cover's reference over all frames 0..31: the moving pixels and the real clip's per-pixel mean step
    cover_moving: np.ndarray | None = None
    cover_step: np.ndarray | None = None


def still_regions(real: np.ndarray, first: int = FIRST_INNER, last: int = LAST_INNER) -> StillRegions:
    """The still and the moving region of a real (T,H,W,3) clip over its inner frames."""
    grey = _grey_unit(real, first, last)
    std = grey.std(axis=0)
    still = std <= np.quantile(std, STILL_SHARE)
    moving = std >= np.quantile(std, 1.0 - MOVING_SHARE)
    whole = _grey_unit(real, 0, len(real) - 1)
    whole_std = whole.std(axis=0)
    return StillRegions(
        still=still,
        moving=moving,
        moving_step=float(_mean_step(grey)[moving].mean()),
        cover_moving=whole_std >= np.quantile(whole_std, 1.0 - MOVING_SHARE),
        cover_step=_mean_step(whole),
    )


def still_step(
    video: np.ndarray, regions: StillRegions, first: int = FIRST_INNER, last: int = LAST_INNER
) -> float:
    """A video's mean |frame step| (grey, [0, 1]) over the real clip's still region: the leak's numerator."""
    step = _mean_step(_grey_unit(video, first, last))
    if step.shape != regions.still.shape:
        raise ValueError(f"video frames {step.shape} do not match the real clip's {regions.still.shape}")
    return float(step[regions.still].mean())


def leak(video: np.ndarray, real: np.ndarray | StillRegions) -> float | None:
    """Mean |frame step| of ``video`` where the real clip is still over the real clip's mean |frame step|
    where it moves (see the module docstring). ``real`` is the real clip or its ``still_regions``. None when
    the real clip does not change at all."""
    regions = real if isinstance(real, StillRegions) else still_regions(real)
    if regions.moving_step <= 0:
        return None
    return still_step(video, regions) / regions.moving_step


def cover(video: np.ndarray, real: np.ndarray | StillRegions) -> float | None:
    """The share of the real clip's moving pixels where ``video`` moves too (see the module docstring), over
    all frames of both; None when the real clip does not change at all."""
    shares = cover_shares(video, real)
    return None if shares is None else shares[0]


def cover_shares(video: np.ndarray, real: np.ndarray | StillRegions) -> tuple[float, float, float] | None:
    """Where the real clip's moving pixels go in ``video``: the shares (covered, slow, still) that move at
    least ``COVER_SHARE`` of the real clip's mean step there (``cover``), at least ``COVER_STILL`` of it but
    less, and less than that (held still or nearly). They sum to 1; None where ``cover`` is None. Says
    whether a low cover is a sky that moves too slowly or parts that the video keeps still."""
    regions = real if isinstance(real, StillRegions) else still_regions(real)
    if regions.cover_moving is None or regions.cover_step is None or not regions.cover_moving.any():
        return None
    step = _mean_step(_grey_unit(video, 0, len(video) - 1))
    if step.shape != regions.cover_moving.shape:
        want = regions.cover_moving.shape
        raise ValueError(f"video frames {step.shape} do not match the real clip's {want}")
    where = regions.cover_moving & (regions.cover_step > 0)
    if not where.any():
        return None
    share = step[where] / regions.cover_step[where]
    covered = float((share >= COVER_SHARE).mean())
    still = float((share < COVER_STILL).mean())
    return covered, 1.0 - covered - still, still


def ratio_of_sums(numerators: Sequence[float], denominators: Sequence[float]) -> float | None:
    """sum(numerators) / sum(denominators): how the speed ratio and the leak pool clips (a clip that moves
    more weighs more, as in a ratio of means); None when the denominators sum to 0."""
    total = float(sum(denominators))
    return float(sum(numerators)) / total if total > 0 else None
