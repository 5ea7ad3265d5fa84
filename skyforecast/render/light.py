"""The sky's light stays where it is while its clouds move: a sun's glow, the haze brighter towards the
horizon, a photo's darker corners.

Moved as a whole, a photo's sky carries its brightness with it: the glow around a low sun slid sideways with
the haze, and every still thing standing in it (a tree, a pylon, the sky held still between their branches)
was left with the photo's brighter sky around it, a pale "puff" of the still part's outline in the moving
sky (village-dusk.jpg at 1080p: the sky around its pylons 15-38 levels darker by frame 31). So each moved
pixel is moved from the light where its sky came from to the light where it lands, by the offset
``T(x) - T(x + D)`` within ``levels.level_offset``'s limits (a lit cloud brought into a brighter glow is
not clipped to flat white), ``T`` the sky's smooth brightness (a blur of ``BLUR`` of the width, as the
long videos' brightness trend in ``render.inflow``). ``T`` is made from the sky's smooth
parts only (clear sky, haze, a glow: little detail at a quarter of 1920 px), weighted in a normalised
convolution: made from all of it, a white cloud's own brightness stayed behind as a pale patch in the blue
sky it left, and darkened the cloud where it came to blue. Where a sky has few smooth parts (an overcast
sky of textured cloud) the offset fades out (``CONFIDENT``), and clouds move with their own shading as
before.

Next to a still part (within ``NEAR`` of the width of a tree, a pylon, the skyline) the moving sky meets
the photo's own sky held still there, and any error in its light shows as an outline. There the offset
comes from a narrower light (``NARROW``) and is not limited: in a long video's later cycles the sky is
rolled from far away, and the wide light within its limits left the sky beside village-dusk.jpg's tree
15-22 levels darker than the sky held between its branches (a pale outline from frame 64 on; 0-3 levels
so).

The offsets are made on a coarse grid (they are smooth) and added in whole levels (``apply``):
``SteadyRenderer`` adds them to RGB, ``planar.PlanarFrames`` to luma and chroma (an offset is linear in
both). No torch here."""

from __future__ import annotations

import cv2
import numpy as np

from ..io.yuv import MATRIX
from .levels import level_offset
from .sampling import nodes

BLUR = 0.08  # share of the photo's width: the blur that leaves the light (no cloud shapes)
SMOOTH = 1.5  # grey levels of detail (a difference of Gaussians at a quarter of 1920 px) of a smooth sky
CONFIDENT = 0.3  # share of smooth sky around a point above which its light is held fully in place
DETAIL_WIDTH = 480.0  # pixels: the width (of the photo) at which detail is measured
COARSE = 3  # the light's offsets are made on a grid this many times coarser than the renderer's
LIMIT = 2.0  # the light moves a level by at most this factor (and brightens it only part of the way to white)
SHRINK = 8  # the light is made at an eighth of the size (a blur this wide costs little there)
# Next to a still part (a tree, a pylon, the skyline) the moving sky meets the photo's own sky held still
# there, so it takes the light of its place exactly: a blur of NARROW of the width, without LIMIT, within
# NEAR of the width of a still part and fading out over as much again.
NEAR = 0.03
NARROW = 0.02


def light(source: np.ndarray, width: int, blur: float = BLUR) -> tuple[np.ndarray, float, float]:
    """((h, w, 4) float32, x factor, y factor): the light of ``source`` (a sky source, possibly wrapped
    beyond a photo ``width`` pixels wide) at a small size, a blur of ``blur`` of the width, its RGB in the
    first three channels and the share of smooth sky it was made from in the fourth; the factors map
    source pixels to its pixels."""
    h, w = source.shape[:2]
    q = min(1.0, DETAIL_WIDTH / width)
    qw, qh = max(16, int(round(w * q))), max(16, int(round(h * q)))
    # the eighth made from the quarter: straight from a wrapped source's odd width it took 8 ms at 1080p
    detailed = cv2.resize(source, (qw, qh), interpolation=cv2.INTER_AREA) if q < 1 else source
    sw, sh = max(8, w // SHRINK), max(8, h // SHRINK)
    small = cv2.resize(detailed, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    grey = cv2.cvtColor(detailed, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = np.abs(cv2.GaussianBlur(grey, (0, 0), 1.0) - cv2.GaussianBlur(grey, (0, 0), 3.0))
    detail = cv2.GaussianBlur(detail, (0, 0), 2.0)
    smooth = cv2.resize(1.0 / (1.0 + (detail / SMOOTH) ** 4), (sw, sh), interpolation=cv2.INTER_AREA)
    weighted = np.dstack([small * smooth[..., None], smooth])
    # blurred where the kernel is about 8 px wide (sampled bilinearly, the light needs no more pixels):
    # at an eighth of a 1080p frame's wrapped source the blur alone took 6.6 ms
    sigma = max(1.0, blur * width * sw / w)
    f = max(1.0, sigma / 4)
    bw, bh = max(4, int(round(sw / f))), max(4, int(round(sh / f)))
    weighted = cv2.resize(weighted, (bw, bh), interpolation=cv2.INTER_AREA)
    both = cv2.GaussianBlur(weighted, (0, 0), sigma * bw / sw, borderType=cv2.BORDER_REFLECT)
    share = both[..., 3:]
    return np.dstack([both[..., :3] / np.maximum(share, 1e-4), share]), w / bw, h / bh


class StillLight:
    """Per frame, the offsets that keep the light of ``renderer``'s sky in place (module docstring)."""

    def __init__(self, renderer):
        r = renderer
        ph, pw = r.photo.shape[:2]
        gw, gh = r._gsize
        # the light is smoother than the motion: its own grid, a third of the renderer's each way
        self.size = (max(2, -(-gw // COARSE)), max(2, -(-gh // COARSE)))
        nx, ny = nodes(self.size[0], pw) + r._pad, nodes(self.size[1], ph) + r._vpad
        self._x, self._y = (a.astype(np.float32) for a in np.meshgrid(nx, ny))
        self.renderer, self.width = r, pw
        self.near = _near_still(r.alpha, nx - r._pad, ny - r._vpad)  # 1 next to a still part, 0 away
        self._lights: dict[int, tuple] = {}
        # the light that stays: the photo's own sky's, where each node is
        self.home = self._at(r._source(0), np.zeros((*self.size[::-1], 2), np.float32))

    def _at(self, source: np.ndarray, disp: np.ndarray) -> list[np.ndarray]:
        """The lights of a wrapped sky ``source`` (its ``BLUR`` light, and its ``NARROW`` one where a node
        is near a still part) where each grid node samples it (x + D)."""
        key = id(source)
        if key not in self._lights:  # one per wrapped source: a long video makes one per cycle
            live = list(self.renderer._wrapped.values())
            self._lights = {k: v for k, v in self._lights.items() if any(v[0] is s for s in live)}
            blurs = (BLUR, NARROW) if self.near.any() else (BLUR,)
            self._lights[key] = (source, [light(source, self.width, blur) for blur in blurs])
        r = self.renderer
        out = []
        for small, fx, fy in self._lights[key][1]:
            mx = (self._x + disp[..., 0] * r._gscale[0] + 0.5) / fx - 0.5
            my = (self._y + disp[..., 1] * r._gscale[1] + 0.5) / fy - 0.5
            out.append(cv2.remap(small, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        return out

    def offset(self, warps: list[tuple[np.ndarray, np.ndarray]], first: np.ndarray | None) -> np.ndarray:
        """float32 RGB levels on the light's grid (``size``) to add to the moved sky of a frame made of
        ``warps`` ((grid displacement, wrapped source) per phase) blended by ``first`` (both on the
        renderer's grid, ``SteadyRenderer.plan``)."""
        parts = []
        for disp, source in warps:
            there = self._at(source, cv2.resize(disp, self.size, interpolation=cv2.INTER_LINEAR))
            home = self.home[0]
            sure = np.clip(np.minimum(home[..., 3:], there[0][..., 3:]) / CONFIDENT, 0.0, 1.0)
            part = level_offset(np.maximum(there[0][..., :3], 1.0), home[..., :3], LIMIT) * sure
            if len(there) > 1:  # next to a still part: the photo's light of that place, all the way
                home, near = self.home[1], there[1]
                sure = np.clip(np.minimum(home[..., 3:], near[..., 3:]) / CONFIDENT, 0.0, 1.0)
                part += (home[..., :3] - near[..., :3]) * sure * self.near - part * self.near
            parts.append(part)
        if first is None:
            return parts[0]
        f = cv2.resize(first, self.size, interpolation=cv2.INTER_AREA)[..., None]
        return parts[0] * f + parts[1] * (1.0 - f)


def _near_still(alpha: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(len(ys), len(xs), 1) float32: 1 where a grid node (photo pixels ``xs`` across, ``ys`` down) of the
    sky lies within ``NEAR`` of the width of a still part (``alpha`` under a half), fading to 0 at twice
    that; the frame's own edges are not still parts."""
    ph, pw = alpha.shape[:2]
    f = max(1, pw // 240)  # measured on a grid of about 240 columns: the weight is smooth
    small = cv2.resize(alpha, (max(2, pw // f), max(2, ph // f)), interpolation=cv2.INTER_AREA)
    if not (small < 0.5).any():  # all sky: nothing still to meet
        return np.zeros((len(ys), len(xs), 1), np.float32)
    dist = cv2.distanceTransform((small >= 0.5).astype(np.uint8), cv2.DIST_L2, 3) * f
    reach = NEAR * pw
    weight = np.clip(2.0 - dist / reach, 0.0, 1.0).astype(np.float32)
    mx, my = (a.astype(np.float32) for a in np.meshgrid((xs + 0.5) / f - 0.5, (ys + 0.5) / f - 0.5))
    return cv2.remap(weight, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[..., None]


def yuv_offset(offset: np.ndarray) -> np.ndarray:
    """An RGB ``offset`` as the offset of BT.709 TV-range (Y, Cb, Cr): the linear part of ``io.yuv``'s
    matrix (the planes' own constants cancel)."""
    return cv2.transform(offset.astype(np.float32), MATRIX[:, :3])


MIDDLE = 128  # an offset travels as uint8 whole levels around this


def apply(moved: np.ndarray, offset: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int]):
    """``moved`` (a box of a frame, uint8 with ``offset``'s channels) moved in place by ``offset`` (float
    levels on the light's grid), enlarged to the frame ``size`` (width, height) as the grid's other maps
    are and cut to ``box`` (rows y0:y1, columns x0:x1 of the frame). The offset travels as uint8 whole
    levels (up to 127 either way) and is added by ``cv2.addWeighted``: 2 ms for a 1080p RGB frame (a float
    offset took 3.5 ms, whole levels added and subtracted 6 ms). Whole levels add nothing to round: in
    half levels, the MP4 made from planes decoded farther from the one made through RGB (1.19 levels per
    pixel against 1.15, on the 640x360 test clip)."""
    y0, y1, x0, x1 = box
    coded = np.clip(np.rint(offset + MIDDLE), 0, 255).astype(np.uint8)
    if coded.min() == coded.max() == MIDDLE:  # nothing to add (early frames)
        return moved
    big = cv2.resize(coded, size, interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
    cv2.addWeighted(moved, 1.0, big, 1.0, -MIDDLE, dst=moved)
    return moved


__all__ = ["BLUR", "CONFIDENT", "SMOOTH", "StillLight", "apply", "light", "yuv_offset"]
