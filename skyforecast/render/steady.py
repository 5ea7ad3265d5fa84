"""Steady (Eulerian) sky motion: one velocity field per photo, fitted to the prediction, integrated over time.

MD-GAN's 32 predicted frames move, but each step's optical flow is noisy and the speed is a fraction of a
real sky's; warping the photo with 32 unrelated flows makes clouds shimmer. Real skies drift: over a
time-lapse a cloud's net displacement is ~0.9 of its path (``real-sky-dev``). Following Holynski et al.,
"Animating Pictures with Eulerian Motion Fields" (CVPR 2021), the prediction here only supplies a *steady*
field M(x), and frame t is the photo moved by integrating it:

    D_0 = 0,  D_t(x) = D_{t-1}(x) + V(x + D_{t-1}(x)),  frame_t(x) = photo(x + D_t(x))   (V = -M, backward)

so clouds travel along the field's stream lines at a constant speed, for any number of frames, without
chaining predictions.

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

Loops and long videos use two phases (Holynski's symmetric blending): the photo moved forward t steps and
moved backward N - t steps, cross-faded over the middle half of the cycle (``blend_weight``; Holynski fades
over all of it, which leaves a faint double exposure in most frames), and per pixel by validity (a sample
from outside the frame or from the still foreground is invalid), so the loop closes exactly and content
that flows in comes from the other phase. Displacement never exceeds one cycle (``CYCLE`` frames), so a
480-frame video looks like frame 32. No torch here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from ..io.constants import ArgumentError
from .motion import bounding_box

# Calibration and physics constants (see the module docstring and README "Beyond the paper").
REAL_SPEED = 0.0103  # frame heights per frame: mean real sky speed over the moving half, real-sky-dev
# the field's mean over the whole sky mask is this share of REAL_SPEED: the mask takes all of the sky down to
# the skyline, and in real clips a part of it moves slower (real-sky-dev: 0.75 keeps PSNR above 21.5 dB with
# speed ratio 0.81; 1.0 gave 21.2 dB, leak 0.47)
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
CYCLE = 64  # frames: the longest one phase travels; longer videos and loops blend two phases
BLEND_SPAN = 0.5  # share of a cycle in whose middle the two phases hand over (each pixel at its own time)
SWITCH_SPAN = 0.08  # share of a cycle one pixel takes to hand over from one phase to the other
SWITCH_SCALE = 0.1  # frame heights: the size of the patches that hand over together
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


# ---- the field -------------------------------------------------------------------------------------


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
    from .motion import _flow_engine

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


# ---- rendering ---------------------------------------------------------------------------------------


def blend_weight(x: float, span: float = BLEND_SPAN) -> float:
    """The backward phase's weight at ``x`` (0..1) of a cycle: 0 for the first (1 - span)/2 of the cycle, a
    smoothstep across the middle ``span``, 1 after. A linear fade over the whole cycle (Holynski's) shows
    both phases, a faint double exposure, in 58 % of the frames of a long video; over the middle half it
    is 22 %, and the largest frame step grows from 1.2x to 1.7x the median (examples/sky.jpg, 480 frames),
    inside the 3x that reads as a jump."""
    z = min(max((x - 0.5) / span + 0.5, 0.0), 1.0)
    return float(z * z * (3.0 - 2.0 * z))


class SteadyRenderer:
    """Frames of ``photo`` (H, W, 3) uint8 moved by ``field``: ``renderer[t]`` for t in ``range(frames)``.

    ``alpha`` (H, W) float32 in [0, 1] (``motion.soft_alpha``): 0 = the photo's own pixels, bit for bit;
    None = everything moves. ``loop``: frame ``frames`` equals frame 0 (two phases blended); a video longer
    than ``CYCLE`` frames is a loop of a cycle that divides it, so displacement stays bounded.
    ``gain``: optional (frames, 3) per-channel light factors for the moving part. ``source``: the
    ``sky_source`` of ``photo`` and ``alpha > 0`` when it was made already (``SkyLayer``). ``glow``: a still
    layer the moved ``source`` is added to (night skies: the glow stays, the stars turn).

    The displacement D_t is integrated on a small grid (the field is smooth) and upsampled per frame; each
    frame is one ``cv2.remap`` per phase from the *original* photo (never a re-warp of a warped frame).
    Frames share work buffers: read one renderer from one thread at a time (each output renders its own)."""

    GRID = 96  # rows of the integration grid

    def __init__(
        self,
        photo: np.ndarray,
        field: SteadyField,
        frames: int = 32,
        alpha: np.ndarray | None = None,
        loop: bool = False,
        gain: np.ndarray | None = None,
        source: np.ndarray | None = None,
        glow: np.ndarray | None = None,
    ):
        ph, pw = photo.shape[:2]
        self.glow = glow
        # stars are a pixel or two wide: bilinear sampling at a fractional position spreads one over four
        # pixels, and they dimmed at once after frame 0 (the brightest 200 star pixels of examples/night.jpg
        # by 29 %; bicubic 14 %, then steady); clouds are smooth, and bicubic would cost them twice the time
        self._interp = cv2.INTER_CUBIC if glow is not None else cv2.INTER_LINEAR
        self.photo, self.frames, self.alpha, self.gain = photo, int(frames), alpha, gain
        if alpha is not None:
            binary = alpha > 0
            self.box = bounding_box(binary)
            self.source = sky_source(photo, binary) if source is None else source
        else:
            self.box = (0, ph, 0, pw)
            self.source = photo
        self.loop = bool(loop)
        if self.frames > CYCLE:
            self.period = self.frames / math.ceil(self.frames / CYCLE)  # cycles divide the video
            self.two_phase = True
        else:
            self.period = float(self.frames)
            self.two_phase = self.loop
        gh = min(ph, self.GRID)
        gw = max(2, int(round(pw * gh / ph)))
        self._gsize = (gw, gh)
        self._gscale = np.array([pw / gw, ph / gh], np.float32)
        fwd = field.velocity((gw, gh))  # grid pixels per frame (the field is in frame heights)
        self._back = -fwd  # backward field: where each pixel's content was one frame ago
        self._ahead = fwd  # for the backward phase: where it will be
        self._gx, self._gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
        self._disp: dict[int, np.ndarray] = {0: np.zeros((gh, gw, 2), np.float32)}
        sky_small = None
        if alpha is not None:
            sky_small = cv2.resize((alpha > 0).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
        self._sky_small = sky_small
        # when each patch hands over (two-phase videos): a smooth random field, spread evenly over the middle
        # of the cycle; seeded, so a photo always gets the same video
        noise = np.random.default_rng(0).random((gh, gw)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), max(1.0, SWITCH_SCALE * gh))
        rank = np.argsort(np.argsort(noise, axis=None)).reshape(gh, gw) / max(1, gh * gw - 1)
        half = (BLEND_SPAN - SWITCH_SPAN) / 2
        self._onset = (0.5 - half + 2 * half * rank).astype(np.float32)
        y0, y1, x0, x1 = self.box
        bx, by = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        # content that flows in across an edge is a translated copy of sky (``wrapped``): across the left
        # or right edge the sky that left across the other one, across the top or bottom the sky next to
        # that edge shifted half a width sideways
        steps = self.period if self.two_phase else self.frames
        reach = np.abs(fwd).reshape(-1, 2).max(axis=0) * self._gscale * steps + 2
        self._pad = int(min(pw, math.ceil(reach[0]))) if reach[0] > 2 else 0
        self._vpad = int(min(ph, math.ceil(reach[1]))) if reach[1] > 2 else 0
        self._wrapped = wrapped(self.source, self._pad, self._vpad)
        self._base = np.dstack([bx + self._pad, by + self._vpad])  # output-pixel grid of the box, made once
        # Work buffers reused by every frame: a 1080p frame needs ~40 MB of temporaries, and fresh arrays
        # that large come from mmap, so each frame paid for touching new pages again (page faults made the
        # renderer's time swing between 0.2 and 0.45 s for 32 frames)
        self._big = np.empty((ph, pw, 2), np.float32)
        self._map = np.empty((y1 - y0, x1 - x0, 2), np.float32)
        self._moved = [np.empty((y1 - y0, x1 - x0, 3), np.uint8) for _ in range(2)]
        if alpha is not None:
            a = np.ascontiguousarray(alpha[y0:y1, x0:x1], dtype=np.float32)
            self._inside = (a >= 1.0).astype(np.uint8)
            band = (a > 0) & (a < 1)  # the feathered edge, blended (blendLinear keeps 0 and 1 exact)
            self._band = bounding_box(band) if band.any() else None
            if self._band is not None:
                by0, by1, bx0, bx1 = self._band
                part = np.ascontiguousarray(a[by0:by1, bx0:bx1])
                self._band_alpha = (part, 1.0 - part)

    def __len__(self) -> int:
        return self.frames

    def displacement(self, t: int) -> np.ndarray:
        """D_t on the integration grid, in grid pixels (backward: frame t samples the photo at x + D_t)."""
        if t in self._disp:
            return self._disp[t]
        step = 1 if t > 0 else -1
        prev = self.displacement(t - step)
        field = self._back if step > 0 else self._ahead
        mx, my = self._gx + prev[..., 0], self._gy + prev[..., 1]
        v = cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._disp[t] = prev + v
        return self._disp[t]

    def _phases(self, t: int) -> list[tuple[int, float]]:
        """The phases of frame t and their share of the frame's pixels (the backward phase's weight,
        averaged over the grid)."""
        if not self.two_phase:
            return [(t, 1.0)]
        n = self.period
        tau = t % n
        lo = int(math.floor(tau))
        if tau != lo:  # a cycle that does not divide evenly: use the nearest whole step
            lo = int(round(tau))
        w = float(self._switch(lo / n).mean())
        return [(lo, 1.0 - w), (lo - int(round(n)), w)]

    def _switch(self, x: float) -> np.ndarray:
        """The backward phase's weight per grid pixel at ``x`` (0..1) of a cycle: each patch of sky hands over
        from the forward to the backward phase at its own time in the middle ``BLEND_SPAN`` of the cycle,
        over ``SWITCH_SPAN`` of it. A whole-frame cross-fade shows two photos overlaid at mid-cycle (the
        sky's fine detail halves); staggered, only the patches handing over blend at any moment."""
        z = np.clip((x - self._onset) / SWITCH_SPAN + 0.5, 0.0, 1.0)
        return z * z * (3.0 - 2.0 * z)

    def _valid(self, disp: np.ndarray) -> np.ndarray:
        """Per grid pixel, 1 where the sample lands inside the frame and in the sky, else a small weight."""
        gw, gh = self._gsize
        mx, my = self._gx + disp[..., 0], self._gy + disp[..., 1]
        inside = ((mx >= 0) & (mx <= gw - 1) & (my >= 0) & (my <= gh - 1)).astype(np.float32)
        if self._sky_small is not None:
            inside *= cv2.remap(self._sky_small, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return cv2.GaussianBlur(inside, (0, 0), 1.5) + 1e-3

    def __getitem__(self, t: int) -> np.ndarray:
        if not -self.frames <= t < self.frames:
            raise IndexError(f"frame {t} of {self.frames}")
        t %= self.frames
        y0, y1, x0, x1 = self.box
        ph, pw = self.photo.shape[:2]
        out = self.photo.copy()
        if y1 <= y0:
            return out
        phases = [(k, w) for k, w in self._phases(t) if w > 0]
        if len(phases) == 2 and phases[1][1] >= 1.0:
            phases = phases[1:]
        if len(phases) == 1 and phases[0][0] == 0 and self.gain is None:
            return out
        if len(phases) == 1:
            moved = self._warp(self.displacement(phases[0][0]), self._moved[0])
        else:
            # per-pixel phase weights: blend weight times validity, renormalised (at the grid's size)
            disps = [self.displacement(k) for k, _ in phases]
            back = self._switch(phases[0][0] / self.period)
            weights = [(1.0 - back) * self._valid(disps[0]), back * self._valid(disps[1])]
            total = sum(weights)
            first = cv2.resize(weights[0] / total, (pw, ph), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
            moved = cv2.blendLinear(
                self._warp(disps[0], self._moved[0]), self._warp(disps[1], self._moved[1]), first, 1.0 - first
            )
        if self.glow is not None:
            moved = cv2.add(moved, self.glow[y0:y1, x0:x1])
        if self.gain is not None:
            g = self.gain[t]
            moved = cv2.multiply(moved, (float(g[0]), float(g[1]), float(g[2]), 0.0))
        if self.alpha is None:
            out[y0:y1, x0:x1] = moved
            return out
        comp = out[y0:y1, x0:x1]
        cv2.copyTo(moved, self._inside, comp[...])  # alpha 1: the moved sky; alpha 0 keeps the photo exactly
        if self._band is not None:
            by0, by1, bx0, bx1 = self._band
            a, rest = self._band_alpha
            comp[by0:by1, bx0:bx1] = cv2.blendLinear(
                moved[by0:by1, bx0:bx1], self.photo[y0 + by0 : y0 + by1, x0 + bx0 : x0 + bx1], a, rest
            )
        return out

    def _warp(self, disp: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The box of the sky source sampled at x + D (grid displacement ``disp``), written into ``out``."""
        y0, y1, x0, x1 = self.box
        ph, pw = self.photo.shape[:2]
        cv2.resize(disp * self._gscale, (pw, ph), dst=self._big, interpolation=cv2.INTER_LINEAR)
        cv2.add(self._big[y0:y1, x0:x1], self._base, dst=self._map)
        return cv2.remap(self._wrapped, self._map, None, self._interp, dst=out, borderMode=cv2.BORDER_REFLECT)


SEAM = 0.03  # share of the width (height) over which a continued copy is blended into the edge it continues


def _fade_from_mirror(copy: np.ndarray, inner: np.ndarray, towards_edge: bool) -> np.ndarray:
    """``copy`` (the continuation next to an edge, along axis 1) faded in from ``inner``'s mirror image:
    the columns nearest the edge are the edge's own pixels mirrored, so the join has no hard step.
    ``towards_edge``: ``copy``'s last column touches the edge (it lies before it), else its first."""
    band = copy.shape[1]
    ramp = ((np.arange(band, dtype=np.float32) + 1) / (band + 1))[None, :, None]  # 0 at the edge -> 1
    weight = ramp[:, ::-1] if towards_edge else ramp
    mirror = inner[:, :band][:, ::-1] if towards_edge else inner[:, -band:][:, ::-1]
    mixed = copy.astype(np.float32) * weight + mirror.astype(np.float32) * (1 - weight)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def wrapped(source: np.ndarray, pad: int, vpad: int = 0) -> np.ndarray:
    """``source`` continued ``pad`` pixels to the left and right by the sky at its other side, and ``vpad``
    rows above and below by its own top (bottom) rows shifted half a width sideways: translated copies, so
    clouds keep their shapes (a mirrored edge made a symmetric "butterfly" cloud, a stretched one streaks),
    and a shifted one does not line up with the clouds it continues. Each seam is softened: over ``SEAM``
    of the size next to an edge the copy fades in from the edge's own mirror image."""
    h, w = source.shape[:2]
    if vpad > 0:
        vpad = min(vpad, h)
        band = min(vpad, max(2, int(round(SEAM * h))), h // 2)
        top = _shifted(source[:vpad], w // 2)
        bottom = _shifted(source[h - vpad :], w // 2)
        # rows as columns: the seam code works along axis 1
        top[vpad - band :] = _fade_from_mirror(
            top[vpad - band :].swapaxes(0, 1), source[:band].swapaxes(0, 1), True
        ).swapaxes(0, 1)
        bottom[:band] = _fade_from_mirror(
            bottom[:band].swapaxes(0, 1), source[h - band :].swapaxes(0, 1), False
        ).swapaxes(0, 1)
        source = np.concatenate([top, source, bottom])
    if pad <= 0:
        return source
    out = cv2.copyMakeBorder(source, 0, 0, pad, pad, cv2.BORDER_WRAP)
    band = min(pad, max(2, int(round(SEAM * w))), w // 2)
    out[:, pad - band : pad] = _fade_from_mirror(out[:, pad - band : pad], source, True)
    out[:, pad + w : pad + w + band] = _fade_from_mirror(out[:, pad + w : pad + w + band], source, False)
    return out


def _shifted(rows: np.ndarray, shift: int) -> np.ndarray:
    """``rows`` moved ``shift`` pixels sideways, wrapping around (the wrap's seam softened as ``wrapped``
    softens its sides)."""
    w = rows.shape[1]
    if shift <= 0 or w < 4:
        return rows.copy()
    return np.ascontiguousarray(wrapped(rows, shift)[:, w : 2 * w])


def sky_source(photo: np.ndarray, sky: np.ndarray, work: int = 160) -> np.ndarray:
    """The photo with everything outside ``sky`` painted over with sky colours, as the source to warp from:
    a stream line that starts under the still foreground (behind a mountain, a roof) then fetches a smooth
    continuation of the nearby sky instead of a smear of roof. The fill is a normalised convolution at a
    small size (shorter side ``work``) from sky pixels a little inside the mask (the mask's edge pixels can
    carry the foreground's colour), with kernels 4x wider than tall: sky colour changes little along a row
    (the same height above the horizon) and much from row to row, so the hole gets the colours of its own
    rows, not vertical streaks. The sky keeps the photo's pixels."""
    ph, pw = photo.shape[:2]
    if sky.all() or not sky.any():
        return photo
    scale = min(1.0, work / min(ph, pw))
    size = (max(8, int(round(pw * scale))), max(8, int(round(ph * scale))))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    inside = cv2.resize(sky.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    eroded = cv2.erode(inside, np.ones((5, 5), np.uint8))
    m = (eroded if eroded.any() else inside).astype(np.float32)
    fill = small.copy()
    have = m > 0
    for sx in (2.0, 8.0, 32.0, 128.0):
        den = cv2.GaussianBlur(m, (0, 0), sigmaX=sx, sigmaY=sx / 4)
        num = cv2.GaussianBlur(small * m[..., None], (0, 0), sigmaX=sx, sigmaY=sx / 4)
        ok = (den > 1e-3) & ~have
        fill[ok] = num[ok] / den[ok][:, None]
        have |= ok
    if not have.all():
        fill[~have] = small[m > 0].mean(axis=0)
    fill = cv2.GaussianBlur(fill, (0, 0), 1.5)
    big = cv2.resize(np.clip(fill + 0.5, 0, 255).astype(np.uint8), (pw, ph), interpolation=cv2.INTER_LINEAR)
    return np.where(sky[..., None], photo, big)


# ---- light -------------------------------------------------------------------------------------------


LIGHT_LIMIT = 0.08  # the light trend never changes a channel by more than this share


def light_trend(video: np.ndarray, frames: int, sky: np.ndarray | None = None) -> np.ndarray:
    """(frames, 3) per-channel factors: the prediction's global brightness and colour change, as a straight
    line fitted over its inner frames 1..30 (no flicker, no per-region blotches), clamped to
    +-``LIGHT_LIMIT``, continued past frame 31 and held at the limit."""
    t_in = np.arange(1, min(len(video) - 1, 31))
    if len(t_in) < 2:
        return np.ones((frames, 3), np.float32)
    _, mh, mw, _ = video.shape
    where = (
        np.ones((mh, mw), bool)
        if sky is None
        else (cv2.resize((sky > 0.5).astype(np.float32), (mw, mh), interpolation=cv2.INTER_AREA) > 0.5)
    )
    if where.sum() < 16:
        where = np.ones((mh, mw), bool)
    means = np.array([video[i][where].reshape(-1, 3).mean(axis=0) for i in t_in]) + 1.0
    ratio = means / means[0]
    slope = np.array([np.polyfit(t_in, ratio[:, c], 1)[0] for c in range(3)])
    factors = 1.0 + slope[None, :] * np.arange(frames, dtype=np.float64)[:, None]
    return np.clip(factors, 1 - LIGHT_LIMIT, 1 + LIGHT_LIMIT).astype(np.float32)


# ---- one call --------------------------------------------------------------------------------------


@dataclass
class SkyLayer:
    """What moves in one photo and what it is sampled from: the binary ``sky`` mask (None: everything
    moves), its feathered ``alpha`` (``motion.soft_alpha``) and the sky-only ``source`` (``sky_source``).
    None of it depends on the prediction, so ``predict`` makes it while the model loads."""

    sky: np.ndarray | None
    alpha: np.ndarray | None = None
    source: np.ndarray | None = None
    glow: np.ndarray | None = None  # night skies: the still glow; ``source`` then holds the stars alone

    @property
    def night(self) -> bool:
        return self.glow is not None


def sky_layer(photo: np.ndarray, sky: np.ndarray | None) -> SkyLayer:
    """The ``SkyLayer`` of ``photo`` (H, W, 3) uint8 for a binary ``sky`` mask at its size. A night sky
    (``skymask.is_night``) is split into its glow (a grey opening: the stars removed), which stays, and
    its stars (the rest, inside the sky), which move: turning the glow too would tilt the bright band
    above the horizon along with the stars."""
    from .motion import soft_alpha
    from .skymask import is_night

    if sky is None:
        return SkyLayer(None)
    alpha = soft_alpha(sky)
    if is_night(photo):
        glow, stars = split_stars(photo, alpha > 0)
        return SkyLayer(sky, alpha, stars, glow)
    return SkyLayer(sky, alpha, sky_source(photo, alpha > 0))


def split_stars(photo: np.ndarray, sky: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(glow, stars) with glow + stars = photo inside ``sky``: the glow is the photo's grey opening with a
    disc ~1/200 of the shorter side (at least 5 px), wider than a star; stars outside the sky are zero,
    so nothing from the lit windows below is carried into the sky."""
    from .skymask import starless

    glow = starless(photo, max(5, int(round(min(photo.shape[:2]) / 200)) | 1))
    stars = cv2.subtract(photo, glow)
    stars[~sky] = 0
    return glow, stars


def animate_frames(
    photo: np.ndarray,
    video: np.ndarray,
    sky: np.ndarray | SkyLayer | None,
    *,
    frames: int = 32,
    speed: Speed | None = None,
    direction: float | None = None,
    loop: bool = False,
    light: bool = False,
    method: str = "dis",
    night: bool | None = None,
) -> tuple[SteadyRenderer, SteadyField]:
    """The renderer (frame by frame) for ``photo`` at its own size, moved by the steady field of its
    prediction ``video``; ``sky`` is a binary mask at the photo's size (None: everything moves) or its
    ``SkyLayer`` made beforehand. ``night`` (None: the layer's, ``skymask.is_night``): with ``direction``
    auto, the sky wheels about a pole instead of drifting."""
    layer = sky if isinstance(sky, SkyLayer) else sky_layer(photo, sky)
    ph, pw = photo.shape[:2]
    region = np.ones((ph, pw), np.float32) if layer.sky is None else layer.sky
    night = layer.night if night is None else night
    field = fit_field(video, region, pw / ph, speed, direction, ph, method, night=bool(night))
    gain = light_trend(video, frames, region) if light else None
    renderer = SteadyRenderer(photo, field, frames, layer.alpha, loop, gain, layer.source, layer.glow)
    return renderer, field


def animate(photo: np.ndarray, video: np.ndarray, sky: np.ndarray | None, **options) -> np.ndarray:
    """All frames of ``animate_frames`` as one (T, H, W, 3) uint8 array (small videos, tests, evaluate)."""
    renderer, _ = animate_frames(photo, video, sky, **options)
    return np.stack([renderer[t] for t in range(len(renderer))])


def default_output(
    photo: np.ndarray, video: np.ndarray, direction: float | None = None
) -> tuple[np.ndarray, SteadyField]:
    """What ``skyforecast predict`` writes by default, for a photo already at the output size: the sky
    found by ``skymask.sky_mask`` moved by the steady field of ``video`` at the default speed and direction,
    32 frames, no light trend (``direction``: as ``--direction``, None = auto). Returns (frames, field);
    ``evaluate`` scores it."""
    from .skymask import sky_mask

    renderer, field = animate_frames(photo, video, sky_mask(photo), frames=len(video), direction=direction)
    return np.stack([renderer[t] for t in range(len(renderer))]), field


__all__ = [
    "CYCLE",
    "DEFAULT_DIRECTION",
    "REAL_SPEED",
    "SkyLayer",
    "SteadyField",
    "SteadyRenderer",
    "Speed",
    "animate",
    "animate_frames",
    "default_output",
    "fit_field",
    "inner_flows",
    "light_trend",
    "sky_layer",
    "sky_source",
    "parse_direction",
    "parse_speed",
]
