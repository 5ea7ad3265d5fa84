"""Steady (Eulerian) sky motion rendered: the photo moved along the field of ``field`` frame by frame.

Frame t is the photo moved by integrating the steady field M(x) of ``render.field`` (Holynski et al.,
"Animating Pictures with Eulerian Motion Fields", CVPR 2021):

    D_0 = 0,  D_t(x) = D_{t-1}(x) + V(x + D_{t-1}(x)),  frame_t(x) = photo(x + D_t(x))   (V = -M, backward)

Loops and long videos use two phases (Holynski's symmetric blending): the photo moved forward t steps and
moved backward N - t steps. Holynski cross-fades the whole frame over the whole cycle, which overlays two
photos (the sky's fine detail halves at mid-cycle); here each patch of sky hands over at its own time,
spread over the middle ``BLEND_SPAN`` of the cycle, and per pixel by validity (a sample from outside the
frame or from the still foreground is invalid), so the loop closes exactly, content that flows in comes
from the other phase, and no frame step stands out (spread over 90 % of the cycle, the largest step of a
32-frame loop of examples/sky.jpg is 1.27x the median; over the middle half it was 2.18x). Displacement
never exceeds one cycle (``CYCLE`` frames), so a 480-frame video looks like frame 32. No torch here."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .field import (  # noqa: F401 - the field's names, importable from here as before
    DEFAULT_DIRECTION,
    DIRECTIONS,
    REAL_SPEED,
    SKY_SHARE,
    Speed,
    SteadyField,
    fit_field,
    horizon_of,
    inner_flows,
    night_field,
    parse_direction,
    parse_speed,
)
from .inflow import (  # noqa: F401 - sky_source, wrapped: importable from here as before
    ROLL_FEATHER,
    behind_still,
    brightness,
    periodic,
    periodic_width,
    rolled,
    sky_source,
    wrapped,
)
from .light import StillLight, apply
from .sampling import SampleMap
from .skymask import bounding_box, detail_scale, is_night, sky_mask, soft_alpha, starless

CYCLE = 64  # frames: the longest one phase travels; longer videos and loops blend two phases
BLEND_SPAN = 0.9  # share of a cycle in whose middle the two phases hand over (each pixel at its own time)
SWITCH_SPAN = 0.08  # share of a cycle one pixel takes to hand over from one phase to the other
SWITCH_SCALE = 0.1  # frame heights: the size of the patches that hand over together
ROLL_MAX_PIXELS = 3840 * 2160  # larger frames repeat their cycles instead of rolling them (memory)


# ---- rendering ---------------------------------------------------------------------------------------


class SteadyRenderer:
    """Frames of ``photo`` (H, W, 3) uint8 moved by ``field``: ``renderer[t]`` for t in ``range(frames)``.

    ``alpha`` (H, W) float32 in [0, 1] (``skymask.soft_alpha``): 0 = the photo's own pixels, bit for bit;
    None = everything moves. ``loop``: frame ``frames`` equals frame 0 (two phases blended); a video longer
    than ``CYCLE`` frames is made of cycles that divide it, so displacement stays bounded, each cycle's sky
    rolled sideways from the last one's (``_source``), so the cycles do not repeat.
    ``gain``: optional (frames, 3) per-channel light factors for the moving part. ``source``: the
    ``sky_source`` of ``photo`` and ``alpha > 0`` when it was made already (``SkyLayer``). ``glow``: a still
    layer the moved ``source`` is added to (night skies: the glow stays, the stars turn).

    The displacement D_t is integrated on a small grid (the field is smooth) and upsampled per frame; each
    frame is one ``cv2.remap`` per phase from the *original* photo (never a re-warp of a warped frame).
    Frames share work buffers: read one renderer from one thread at a time (each output renders its own)."""

    GRID = 96  # rows of the integration grid
    STRIP = 16  # rows per strip of the feathered edge that is blended

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
        # content that flows in across an edge is a translated copy of sky (``wrapped``): across the left
        # or right edge the sky that left across the other one, across the top or bottom the sky next to
        # that edge shifted half a width sideways
        steps = self.period if self.two_phase else self.frames
        reach = np.abs(fwd).reshape(-1, 2).max(axis=0) * self._gscale * steps + 2
        self._pad = int(min(pw, math.ceil(reach[0]))) if reach[0] > 2 else 0
        self._vpad = int(min(ph, math.ceil(reach[1]))) if reach[1] > 2 else 0
        sky = None if alpha is None else alpha > 0  # where patches of sky may come from (``wrapped``)
        if sky is not None and glow is None and not field.spin:  # what the still parts hide, as it shows
            # how far the sky travels along each row (the neighbouring grid rows' too: stream lines bend)
            travel = cv2.dilate(np.abs(fwd[..., 0]).max(axis=1), np.ones((3, 1), np.uint8)).ravel()
            rows = (np.arange(gh) + 0.5) * ph / gh - 0.5
            travel = np.interp(np.arange(ph), rows, travel * self._gscale[0] * steps + 2)
            self.source = behind_still(self.source, sky, travel, self._drift(fwd))
        # the sides the sky flows in across (both for two phases): only those are given blocks of sky
        vx = fwd[..., 0][self._sky_small > 0] if self._sky_small is not None else fwd[..., 0].ravel()
        vx = vx * self._gscale[0] * steps
        sides = (True, True) if self.two_phase else (bool((vx > 0.5).any()), bool((vx < -0.5).any()))
        self._wrapped = {0: wrapped(self.source, self._pad, self._vpad, even=True, sky=sky, sides=sides)}
        self._light: StillLight | None = None  # made at the first moved frame
        self._roll = 0.0
        self._row_roll = np.zeros(ph, np.float32)  # per row, the trend's roll beyond the clouds'
        self._levels: tuple[np.ndarray, np.ndarray] | None = None  # a loop's rolled skies are relevelled
        if self.two_phase and glow is None and not field.spin:
            self._set_up_rolls(fwd[..., 0] * self._gscale[0], alpha)
        # Work buffers reused by every frame: a 1080p frame needs ~40 MB of temporaries, and fresh arrays
        # that large come from mmap, so each frame paid for touching new pages again (page faults made the
        # renderer's time swing between 0.2 and 0.45 s for 32 frames)
        self._big = np.empty((ph, pw, 2), np.float32)
        self._sampler = SampleMap(self._gsize, (pw, ph), self.box, (self._pad, self._vpad), self._big)
        self._moved: list[np.ndarray] = []  # the warped RGB box of each phase, made at the first RGB frame
        if alpha is not None:
            self._inside, self._band = edge_parts(alpha[y0:y1, x0:x1], self.STRIP)

    def __len__(self) -> int:
        return self.frames

    def _drift(self, fwd: np.ndarray) -> int:
        """Which sides of the still parts the sky shows as it drifts: -1 their left sides (it drifts left), 1
        their right sides, 0 both (two phases run the field both ways)."""
        if self.two_phase:
            return 0
        where = self._sky_small > 0.5 if self._sky_small is not None else np.ones(fwd.shape[:2], bool)
        return -1 if not where.any() or fwd[..., 0][where].mean() < 0 else 1

    def _set_up_rolls(self, vx: np.ndarray, alpha: np.ndarray | None) -> None:
        """A long video is not a loop: each cycle's sky is the photo's rolled sideways by the distance the
        clouds travelled (``vx``: their speed, output pixels per frame, on the grid), so the photo does not
        come back every cycle (a loop rolls whole widths). Where a patch hands over from one phase to the
        other, both show the same sky only if the roll is the travel: the clouds are rolled by the mean
        travel (clouds rolled row by row, each by its own, sheared more every cycle: slanted streaks by the
        end of 160 frames), and the brightness trend, which has no cloud shapes to shear, by each row's own
        travel (the field moves the sky faster higher up). Rolled by the mean travel, nudged, and moved to
        the photo's brightness where it landed, the trend differed from the other phase's by 8 levels on
        average on a sunset (16 on village-dusk), whose deep blue then appeared in arcs where they hand
        over. Rolled skies come from a sky whose edges fade into the fill: where the photo's sky met a
        hill, a cloud cut off by the hill would be carried into open sky as a hard shape."""
        photo = self.photo
        if photo.shape[0] * photo.shape[1] > ROLL_MAX_PIXELS:  # its float copies would cost gigabytes
            return
        where = self._sky_small > 0.5 if self._sky_small is not None else np.ones(vx.shape, bool)
        if not where.any():
            return
        rows = np.flatnonzero(where.any(axis=1))
        mean = float(vx[where].mean())
        self._roll = self._roll_per_cycle(mean * self.period, periodic_width(photo.shape[1]))
        if not self._roll:
            return
        soft = sky_source(photo, alpha > 0, feather=ROLL_FEATHER) if alpha is not None else self.source
        if self.loop:  # levelled where it lands: its rolls do not follow the clouds
            self._periodic = periodic(soft)
            self._levels = (brightness(self.source), brightness(self._periodic, wrap=True))
        else:  # trend and clouds apart; rows without sky take the nearest sky row's travel
            self._periodic = periodic(soft, split=True)
            spread = np.array([vx[r][where[r]].mean() - mean for r in rows]) * self.period
            centres = (rows + 0.5) * photo.shape[0] / vx.shape[0] - 0.5
            travel = np.interp(np.arange(photo.shape[0]), centres, spread) + mean * self.period - self._roll
            self._row_roll = travel.astype(np.float32)  # the trend's roll beyond the clouds'

    def _roll_per_cycle(self, per_cycle: float, width: int) -> float:
        """Pixels the clouds are rolled sideways from one cycle to the next: the sky's mean horizontal travel
        in a cycle (``per_cycle``), so that where the two phases hand over they show nearly the same clouds,
        nudged where the photo's clouds would come back (``_never_back``). A loop must come back to the
        photo after its last cycle: over all its cycles it rolls whole ``width``s of the periodic sky (none
        for a short one)."""
        cycles = int(round(self.frames / self.period))
        if self.loop:
            per_cycle = round(per_cycle * cycles / width) * width / cycles
        elif abs(per_cycle) >= 1.0:
            per_cycle = _never_back(per_cycle / width, cycles) * width
        return per_cycle if abs(per_cycle) >= 1.0 else 0.0

    def _source(self, cycle: int) -> np.ndarray:
        """The wrapped sky source of a cycle: the photo's own for cycle 0, else its ``periodic`` sky rolled
        sideways ``cycle`` times (``rolled``). The first cycle's and those next to ``cycle`` are kept."""
        if self.loop:  # the last cycle's next one is the first
            cycle %= max(1, int(round(self.frames / self.period)))
        if cycle not in self._wrapped:
            width, shift = self.photo.shape[1], cycle * self._roll
            if self.loop:
                source = rolled(self._periodic, shift, width, self._pad, levels=self._levels)
            else:
                sky, trend = self._periodic
                source = rolled(sky, shift, width, self._pad, trend=(trend, cycle * self._row_roll))
            self._wrapped = {c: w for c, w in self._wrapped.items() if c == 0 or cycle - 1 <= c <= cycle + 1}
            self._wrapped[cycle] = wrapped(source, 0, self._vpad)  # the sides continue the periodic sky
        return self._wrapped[cycle]

    def _cycles(self, t: int) -> list[int]:
        """The cycle whose sky each phase of frame ``t`` shows (as ``_phases``: the forward phase shows its
        own cycle's, the backward phase the next one's)."""
        c = int(math.floor(t / self.period)) if self._roll else 0
        return [c, c + 1] if self._roll else [0, 0]

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

    def plan(self, t: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None] | None:
        """What frame ``t`` is made of: None when it is the photo itself, else the phases to warp, each
        (grid displacement, wrapped sky source), and the first phase's weight per grid pixel where two
        blend (None for one). ``__getitem__`` makes RGB from it, ``planar.PlanarFrames`` yuv420p."""
        if self.box[1] <= self.box[0]:
            return None
        phases = [(k, w, c) for (k, w), c in zip(self._phases(t), self._cycles(t), strict=False) if w > 0]
        if len(phases) == 2 and phases[1][1] >= 1.0:
            phases = phases[1:]
        if len(phases) == 1 and phases[0][0] == 0 and phases[0][2] == 0 and self.gain is None:
            return None
        warps = [(self.displacement(k), self._source(c)) for k, _, c in phases]
        if len(warps) == 1:
            return warps, None
        # per-pixel phase weights: blend weight times validity, renormalised (at the grid's size)
        back = self._switch(phases[0][0] / self.period)
        weights = [(1.0 - back) * self._valid(warps[0][0]), back * self._valid(warps[1][0])]
        return warps, weights[0] / (weights[0] + weights[1])

    def __getitem__(self, t: int) -> np.ndarray:
        if not -self.frames <= t < self.frames:
            raise IndexError(f"frame {t} of {self.frames}")
        t %= self.frames
        y0, y1, x0, x1 = self.box
        ph, pw = self.photo.shape[:2]
        out = self.photo.copy()
        plan = self.plan(t)
        if plan is None:
            return out
        warps, first = plan
        offset = self.light_offset(warps, first)
        if not self._moved:  # not made for a renderer whose frames are only made as planes (``planar``)
            self._moved = [np.empty((y1 - y0, x1 - x0, 3), np.uint8) for _ in range(2)]
        moved = self._warp(*warps[0], self._moved[0])
        if first is not None:
            first = cv2.resize(first, (pw, ph), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
            moved = cv2.blendLinear(moved, self._warp(*warps[1], self._moved[1]), first, 1.0 - first)
        if offset is not None:
            apply(moved, offset, (pw, ph), self.box)
        if self.glow is not None:
            moved = cv2.add(moved, self.glow[y0:y1, x0:x1])
        if self.gain is not None:
            g = self.gain[t]
            moved = cv2.multiply(moved, (float(g[0]), float(g[1]), float(g[2]), 0.0))
        if self.alpha is None:
            out[y0:y1, x0:x1] = moved
            return out
        composite(out[y0:y1, x0:x1], moved, self.photo[y0:y1, x0:x1], self._inside, self._band)
        return out

    def light_offset(self, warps, first: np.ndarray | None) -> np.ndarray | None:
        """The RGB levels (on the light's coarse grid) that keep the sky's light in place in a frame made of
        ``warps`` (``render.light``); None where everything moves (no sky mask: the ground's light would
        stay while its detail moved) and for a night sky, whose moved layer holds only the stars (its glow
        stays apart already; on examples/night.jpg the offsets rounded to nothing, so they are not made)."""
        if self.glow is not None or self.alpha is None:
            return None
        if self._light is None:
            self._light = StillLight(self)
        return self._light.offset(warps, first)

    def _warp(self, disp: np.ndarray, source: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The box of the wrapped sky ``source`` sampled at x + D (D: the grid displacement ``disp``)."""
        m = self.sample_map(disp)
        return cv2.remap(source, m, None, self._interp, dst=out, borderMode=cv2.BORDER_REFLECT)

    def sample_map(self, disp: np.ndarray) -> np.ndarray:
        """Where each pixel of the box samples the wrapped sky source, x + pad + D, for ``cv2.remap``: the
        grid displacement ``disp`` upsampled to the frame (a buffer that the next call overwrites)."""
        return self._sampler.sample(disp, self._gscale)


Band = tuple[int, int, int, int, np.ndarray, np.ndarray]  # rows, columns, alpha and 1 - alpha of one strip


def edge_parts(alpha: np.ndarray, strip: int) -> tuple[np.ndarray, list[Band]]:
    """(inside, bands) of a box's ``alpha``: uint8 1 where it is 1 (the moved sky is copied there), and the
    feathered edge (0 < alpha < 1, blended; ``blendLinear`` keeps 0 and 1 exact) in strips of ``strip``
    rows, each cut to the columns its part of the edge spans: a skyline's edge is a thin curve across the
    frame, and one box around all of it blended most of the sky for nothing."""
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    band = (a > 0) & (a < 1)
    bands: list[Band] = []
    for r0 in range(0, a.shape[0], strip):
        cols = np.flatnonzero(band[r0 : r0 + strip].any(axis=0))
        if len(cols):
            part = np.ascontiguousarray(a[r0 : r0 + strip, cols[0] : cols[-1] + 1])
            bands.append((r0, r0 + len(part), int(cols[0]), int(cols[-1]) + 1, part, 1.0 - part))
    return (a >= 1.0).astype(np.uint8), bands


def composite(out: np.ndarray, moved: np.ndarray, still: np.ndarray, inside: np.ndarray, bands: list[Band]):
    """``out`` (a box of the frame, holding the photo) gets the ``moved`` sky where alpha is 1 and the
    blend of it with ``still`` on the feathered edge; alpha 0 keeps the photo exactly."""
    cv2.copyTo(moved, inside, out[...])
    for by0, by1, bx0, bx1, a, rest in bands:
        out[by0:by1, bx0:bx1] = cv2.blendLinear(moved[by0:by1, bx0:bx1], still[by0:by1, bx0:bx1], a, rest)


NUDGE = 0.2  # at most this share of the width is added to a cycle's roll so the sky never comes back
AWAY = 0.1  # share of the width: clouds rolled this far from a whole width do not look like the photo's


def _never_back(share: float, cycles: int) -> float:
    """The roll per cycle (a share of the periodic sky's width) nearest ``share``, within ``NUDGE``, whose
    multiples over ``cycles`` cycles stay ``AWAY`` from every whole width but none, or else as far as any
    can: eight cycles of an eighth of a width each would bring the photo's sky back. A nudge shows the two
    phases that hand over as far apart as it moves the roll from the clouds' own travel, so a video whose
    sky stays away anyway is not nudged at all (a nudge towards the farthest return moved a 1080p
    sunset's roll from 222 to 430 px)."""
    candidates = share + np.linspace(-NUDGE, NUDGE, 161)
    multiples = np.abs(np.outer(np.arange(1, cycles + 1), candidates))
    nearest = np.abs(multiples - np.maximum(1.0, np.round(multiples))).min(axis=0)  # closest return
    return float(candidates[np.argmax(np.minimum(nearest, AWAY) - 0.25 * np.abs(candidates - share))])


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
    moves), its feathered ``alpha`` (``skymask.soft_alpha``) and the sky-only ``source`` (``sky_source``).
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
    if sky is None:
        return SkyLayer(None)
    alpha = soft_alpha(sky)
    if is_night(photo):
        glow, stars = split_stars(photo, alpha > 0)
        return SkyLayer(sky, alpha, stars, glow)
    return SkyLayer(sky, alpha, sky_source(photo, alpha > 0))


def split_stars(photo: np.ndarray, sky: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(glow, stars) with glow + stars = photo inside ``sky``: the glow is the photo's grey opening with a
    disc ~1/200 of the shorter side (at least 5 px), wider than a star, and as many times wider as the
    photo's finest detail spans pixels (``skymask.detail_scale``: the stars of a small photo enlarged are
    blobs, and a 5 px disc took them all for glow, so nothing moved); strokes much longer than wide (light
    pillars, aurora rays) stay with the glow; stars outside the sky are zero, so nothing from the lit
    windows below is carried into the sky."""
    width = max(5, int(round(min(photo.shape[:2]) / 200))) * detail_scale(photo)
    glow = starless(photo, int(round(width)) | 1, strokes=True)
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
