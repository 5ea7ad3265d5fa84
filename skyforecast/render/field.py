"""The steady (Eulerian) velocity field of a photo's sky: a physical model fitted to the prediction.

MD-GAN's 32 predicted frames move, but each step's optical flow is noisy and the speed is a fraction of a
real sky's; warping the photo with 32 unrelated flows makes clouds shimmer. Real skies drift: over a
time-lapse a cloud's net displacement is ~0.9 of its path (``real-sky-dev``). Following Holynski et al.,
"Animating Pictures with Eulerian Motion Fields" (CVPR 2021), the prediction here only supplies a *steady*
field M(x), and ``render.steady`` moves the photo by integrating it over time, so clouds travel along the
field's stream lines at a constant speed, for any number of frames, without chaining predictions.

The field is a physical model with two numbers plus a small correction:

- clouds are a layer at a fixed height above a camera that looks at the horizon; a drift (dX, dZ) of that
  layer (across the view, away from the camera) appears in the image, at height u above the horizon and
  x' from the centre, as ``dx = a u - b x' u``, ``dy = b u^2`` (y down): speed grows with the height
  above the horizon, and motion away from the camera converges to a vanishing point on the horizon;
- the horizon is put ``HORIZON_BELOW_SKY`` of the frame height below the lowest sky (the skyline of hills,
  trees and roofs hides the first degrees above the true horizon);
- (a, b) come from a least-squares fit to the prediction's mean optical flow over the sky, on its inner
  frames 1..30 (the first and last steps jump: temporal padding);
- a low-frequency residual of the prediction's flow (heavily smoothed, weight ``RESIDUAL_WEIGHT``).

Speed is calibrated, not taken from the model (its flow is ~0.15 of real speed): the field's mean length over
the sky is ``REAL_SPEED`` frame heights per frame, the mean over ``real-sky-dev``'s clips of the mean
optical-flow length over each clip's moving half (0.0103: 1.32 px per frame at 128 px; the median clip
moves 0.0054), times ``--speed``, times how much faster than typical the prediction itself moves
((length / ``PRED_TYPICAL``) ** ``PRED_EXPONENT``, within ``PRED_LIMITS``): the bundled model's sky speed
ranks the real clips' speeds with a Spearman correlation of 0.6 on ``real-sky-dev``, so a fast prediction
means a fast sky, but its spread is far narrower than the real one.
Direction: the prediction's, when its per-step drifts agree (``CONSISTENT``), else ``DEFAULT_DIRECTION``.
No torch here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from ..io.constants import ArgumentError

# Calibration and physics constants (see the module docstring and README "Beyond the paper").
REAL_SPEED = 0.0103  # frame heights per frame: mean real sky speed over the moving half, real-sky-dev
# the field's mean over the whole sky mask is this share of REAL_SPEED: the mask takes all of the sky down to
# the skyline, and in real clips a part of it moves slower or not at all (real-sky-dev, photos at 128 / 720
# px, the sky's light kept in place: 0.75 gives speed ratio 0.79 / 0.81, leak 0.28 / 0.28 (the real clips'
# own: 0.29-0.30), cover 0.56 / 0.60; 0.8 gives 0.84 / 0.86, 0.30 / 0.29, 0.58 / 0.61: at the real clips'
# leak, with no margin for clips whose still parts are fewer)
SKY_SHARE = 0.75
PRED_TYPICAL = 0.15  # model px per inner step: the bundled model's median sky flow length on real-sky-dev
PRED_EXPONENT = 2.0  # how strongly a prediction that moves more than typical speeds the sky up
PRED_LIMITS = (0.5, 2.0)  # ... within these factors
HORIZON_BELOW_SKY = 0.25  # frame heights from the lowest sky to the assumed horizon
RESIDUAL_WEIGHT = 0.3  # share of the prediction's low-frequency flow residual that is kept
RESIDUAL_SIGMA = 0.15  # its smoothing, Gaussian sigma in frame heights
CONSISTENT = 0.6  # the prediction's direction is used when its per-step drifts agree this much (0..1)
MIN_DRIFT = 0.02  # ... and its median drift is at least this many model pixels per step
DEFAULT_DIRECTION = 0.0  # degrees (0 = to the right): horizontal drift when the prediction has no direction
POLE_ABOVE_HORIZON = 1.0  # frame heights above the horizon where night skies turn (~40 degrees up)
DIRECTIONS = {"right": 0.0, "up": 90.0, "left": 180.0, "down": 270.0}


# ---- options -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speed:
    """``--speed``: ``factor`` times the calibrated real speed, or ``px`` pixels per frame at the output
    resolution (the field's mean over the sky)."""

    factor: float = 1.0
    px: float | None = None

    def frac(self, height: int) -> float:
        """Mean sky speed in frame heights per frame, for frames ``height`` pixels high."""
        return self.px / height if self.px is not None else self.factor * SKY_SHARE * REAL_SPEED


def parse_speed(text: str | float | None) -> Speed:
    """``1.5``, ``1.5x`` (a factor of real speed) or ``3px`` (pixels per frame at the output size)."""
    if text is None:
        return Speed()
    value = str(text).strip().lower()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(x|px)?", value)
    if not match:
        raise ArgumentError(
            "speed", f"must be a factor like 1.5 or 1.5x, or pixels per frame like 3px, got {text!r}"
        )
    number, unit = float(match.group(1)), match.group(2)
    if unit == "px":
        if number > 200:
            raise ArgumentError("speed", f"{text}: at most 200px per frame")
        return Speed(px=number)
    if number > 20:
        raise ArgumentError("speed", f"{text}: at most 20x real speed")
    return Speed(factor=number)


def parse_direction(text: str | float | None) -> float | None:
    """``auto`` -> None; ``left``/``right``/``up``/``down`` or degrees counter-clockwise from "to the right"
    (90 = up, as on a map) -> degrees in [0, 360)."""
    if text is None:
        return None
    value = str(text).strip().lower()
    if value == "auto":
        return None
    if value in DIRECTIONS:
        return DIRECTIONS[value]
    try:
        degrees = float(value.removesuffix("deg").removesuffix("°"))
    except ValueError:
        raise ArgumentError(
            "direction", f"must be auto, left, right, up, down or degrees (0 = right, 90 = up), got {text!r}"
        ) from None
    if not math.isfinite(degrees):
        raise ArgumentError("direction", f"must be a finite angle, got {text!r}")
    return degrees % 360.0


@dataclass
class SteadyField:
    """A steady forward velocity field in frame heights per frame, defined on the whole frame.

    ``a``, ``b``: the cloud-layer drift (see the module docstring), already scaled to the chosen speed;
    ``horizon``: the horizon's row in frame heights from the top; ``aspect``: width / height;
    ``residual``: (h, w, 2) low-frequency correction at any small size, or None.
    ``direction``: degrees (0 = right, 90 = up) at the reference point; ``source``: ``"prediction"``,
    ``"default"``, ``"night"`` or ``"user"``; ``consistency``: how much the prediction's per-step drifts
    agreed. ``spin``: a rotation about ``pole`` (x from the centre, y from the top, frame heights), radians
    per frame, positive counter-clockwise on the screen: stars wheeling about the celestial pole."""

    a: float
    b: float
    horizon: float
    aspect: float
    residual: np.ndarray | None = None
    direction: float = 0.0
    source: str = "user"
    consistency: float = 0.0
    spin: float = 0.0
    pole: tuple[float, float] = (0.0, 0.0)

    def velocity(self, size: tuple[int, int]) -> np.ndarray:
        """(h, w, 2) float32 forward velocity in *pixels per frame* of a (w, h) frame."""
        w, h = size
        ys = (np.arange(h, dtype=np.float32) + 0.5) / h
        xs = (np.arange(w, dtype=np.float32) + 0.5) / h - 0.5 * self.aspect
        u = np.maximum(self.horizon - ys, 0.02)[:, None]
        vx = self.a * u - self.b * xs[None, :] * u
        vy = np.broadcast_to(self.b * u * u, vx.shape)
        if self.spin:
            # counter-clockwise on the screen (y down): v = spin * (dy, -dx) about the pole
            vx = vx + self.spin * (ys[:, None] - self.pole[1])
            vy = vy - self.spin * (xs[None, :] - self.pole[0])
        field = np.dstack(np.broadcast_arrays(vx, vy)).astype(np.float32)
        if self.residual is not None:
            field += cv2.resize(self.residual, (w, h), interpolation=cv2.INTER_LINEAR)
        return field * np.float32(h)


def _model_terms(size: tuple[int, int], horizon: float, aspect: float) -> tuple[np.ndarray, ...]:
    """The two unit fields (a = 1, b = 0) and (a = 0, b = 1) on a (w, h) grid, in frame heights."""
    w, h = size
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * aspect - 0.5 * aspect
    u = np.maximum(horizon - ys, 0.02)[:, None] * np.ones((1, w), np.float32)
    across = np.dstack([u, np.zeros_like(u)])
    away = np.dstack([-xs[None, :] * u, u * u])
    return across, away


def horizon_of(sky: np.ndarray) -> float:
    """The assumed horizon (frame heights from the top) for a binary sky mask: below its lowest rows."""
    h = sky.shape[0]
    rows = np.flatnonzero((sky > 0.5).mean(axis=1) > 0.02)
    bottom = (rows[-1] + 1) / h if len(rows) else 0.5
    return float(bottom + HORIZON_BELOW_SKY)


def inner_flows(video: np.ndarray, method: str = "dis") -> np.ndarray:
    """Forward optical flow of each inner step 1->2 .. 29->30 of a predicted clip (the padded first and
    last steps jump and are left out): (S, h, w, 2) float32 in model pixels."""
    from .flow import _flow_engine

    calc = _flow_engine(method)
    last = min(len(video) - 2, 30)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video[1 : last + 1]]
    if len(grey) < 2:  # a clip too short for inner steps: use all of it
        grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video]
    if len(grey) < 2:  # a single frame: nothing moves
        return np.zeros((1,) + video.shape[1:3] + (2,), np.float32)
    return np.stack([calc(grey[i], grey[i + 1]) for i in range(len(grey) - 1)])


def fit_field(
    video: np.ndarray,
    sky: np.ndarray,
    aspect: float = 1.0,
    speed: Speed | None = None,
    direction: float | None = None,
    height: int = 128,
    method: str = "dis",
    night: bool = False,
) -> SteadyField:
    """The steady field for a photo: from its prediction ``video`` (T, h, w, 3) uint8 at the model's size
    (the photo squashed to a square), the photo's ``sky`` mask (any size; binary) and its ``aspect``
    (width / height). ``direction`` (degrees) overrides the prediction's; ``speed`` sets the mean sky speed,
    ``height`` being the output frame height (for ``Speed.px``). ``night`` with no ``direction``: the sky
    wheels about a pole above the frame (``night_field``) instead of drifting."""
    speed = speed or Speed()
    _, mh, mw, _ = video.shape
    sky_small = cv2.resize((sky > 0.5).astype(np.float32), (mw, mh), interpolation=cv2.INTER_AREA) > 0.5
    horizon = horizon_of(sky_small)
    across, away = _model_terms((mw, mh), horizon, aspect)
    raw = inner_flows(video, method)
    # model pixels of the squashed square -> frame heights of the photo (x is stretched by the aspect)
    flows = raw * np.array([aspect / mw, 1.0 / mh], np.float32)
    where = sky_small if sky_small.sum() >= 16 else np.ones((mh, mw), bool)
    drifts = np.array([np.median(f[where], axis=0) for f in flows])  # per-step global drift
    lengths = np.linalg.norm(drifts, axis=1)
    consistency = float(np.linalg.norm(drifts.sum(axis=0)) / max(lengths.sum(), 1e-12))
    mean_flow = flows.mean(axis=0)
    # least squares of the mean flow on the two unit fields, over the sky; then once more without the
    # worst fifth of the residuals (flow on a blurry GAN video has outliers)
    design = np.stack([across[where].reshape(-1), away[where].reshape(-1)], axis=1)
    target = mean_flow[where].reshape(-1)
    keep = np.ones(len(target), bool)
    coef = np.zeros(2)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        err = np.abs(design @ coef - target)
        keep = err <= np.percentile(err, 80) + 1e-12
    fitted = coef[0] * across + coef[1] * away
    frac = speed.frac(height)
    pred_speed = float(np.sqrt((raw**2).sum(axis=-1))[:, where].mean())  # model px per step
    if speed.px is None:
        frac *= float(np.clip((pred_speed / PRED_TYPICAL) ** PRED_EXPONENT, *PRED_LIMITS))
    median_drift = float(np.median(lengths)) * mh  # in model pixels per step
    if night and direction is None:
        return night_field(where, horizon, aspect, frac, consistency)
    if direction is not None:
        source, residual = "user", None
        theta = math.radians(direction)
    else:
        ref = _reference(fitted, where)
        usable = consistency >= CONSISTENT and median_drift >= MIN_DRIFT and np.linalg.norm(ref) > 0
        if usable:
            source = "prediction"
            theta = math.atan2(-ref[1], ref[0])
            rest = np.where(where[..., None], mean_flow - fitted, 0).astype(np.float32)
            sigma = RESIDUAL_SIGMA * mh
            norm = cv2.GaussianBlur(where.astype(np.float32), (0, 0), sigma)[..., None]
            residual = cv2.GaussianBlur(rest, (0, 0), sigma) / np.maximum(norm, 1e-3)
        else:
            source, residual = "default", None
            theta = math.radians(DEFAULT_DIRECTION)
    # unit drift at the reference height, split into across (a) and away (b) parts
    ux, uy = math.cos(theta), -math.sin(theta)  # y down in the image
    u_ref = float(np.mean(np.maximum(horizon - (np.flatnonzero(where.any(axis=1)) + 0.5) / mh, 0.02)))
    a, b = ux / u_ref, uy / (u_ref * u_ref)
    shape = a * across + b * away
    scale = frac / max(float(np.linalg.norm(shape[where], axis=1).mean()), 1e-12)
    if residual is not None:
        # the residual keeps its size relative to the fitted field's
        fit_mean = max(float(np.linalg.norm(fitted[where], axis=1).mean()), 1e-12)
        residual = (RESIDUAL_WEIGHT * residual * (frac / fit_mean)).astype(np.float32)
    field = SteadyField(
        a=a * scale,
        b=b * scale,
        horizon=horizon,
        aspect=aspect,
        residual=residual,
        direction=math.degrees(theta) % 360.0,
        source=source,
        consistency=consistency,
    )
    # the residual changes the mean a little: the whole field is rescaled to the set speed
    total = float(np.linalg.norm(field.velocity((mw, mh))[where], axis=1).mean()) / mh
    if total > 0:
        k = frac / total
        field.a, field.b = field.a * k, field.b * k
        if field.residual is not None:
            field.residual = (field.residual * k).astype(np.float32)
    return field


def night_field(
    sky: np.ndarray, horizon: float, aspect: float, frac: float, consistency: float = 0.0
) -> SteadyField:
    """Stars wheel about the celestial pole, which stands above the horizon at the latitude's height: the
    pole is put ``POLE_ABOVE_HORIZON`` frame heights above the assumed horizon, over the frame's centre,
    and the turn is counter-clockwise (a camera facing the pole from the northern hemisphere, where most
    star-trail photos are taken; ``--direction`` gives a straight drift instead). The spin is set so the
    mean speed over ``sky`` (a boolean mask at any size) is ``frac`` frame heights per frame."""
    h, w = sky.shape
    pole = (0.0, horizon - POLE_ABOVE_HORIZON)
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * aspect - 0.5 * aspect
    radius = np.hypot(xs[None, :] - pole[0], ys[:, None] - pole[1])
    spin = frac / max(float(radius[sky].mean()), 1e-6)
    field = SteadyField(0.0, 0.0, horizon, aspect, None, 0.0, "night", consistency, spin, pole)
    vx = np.broadcast_to(spin * (ys[:, None] - pole[1]), sky.shape)[sky].mean()
    vy = np.broadcast_to(-spin * (xs[None, :] - pole[0]), sky.shape)[sky].mean()
    field.direction = math.degrees(math.atan2(-float(vy), float(vx))) % 360.0  # the mean drift, for reports
    return field


def _reference(field: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The field's mean vector over the sky (frame heights per frame, y down)."""
    return field[where].mean(axis=0)
