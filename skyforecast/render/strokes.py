"""Thin strokes in a photo: wires, pylons, branches and burnt-in digits, which the sky mask keeps still, and
the tests that tell a structure standing in front of the sky from the texture of the clouds around it; and
the region tools the mask is cut with (parts by size, by width, by what they touch)."""

from __future__ import annotations

import cv2
import numpy as np

JOIN_REACH = 0.08  # frame heights: how far from a grounded thin structure its fainter parts are looked for
JOIN_AREA = 0.002  # share of the frame: a faint part larger than this is cloud texture, not a part


def percentile_u8(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` of uint8 values from their histogram: the same number (linear
    interpolation between the two nearest ranks) at a tenth of the time on a 1080p frame's worth."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    rank = q / 100.0 * (counts[-1] - 1)
    lo, hi = int(np.floor(rank)), int(np.ceil(rank))
    a, b = (float(np.searchsorted(counts, r, side="right")) for r in (lo, hi))
    return a + (b - a) * (rank - lo)


def faint_parts(hat: np.ndarray, noise: float, grounded: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fainter thin strokes next to the grounded ones (uint8, 1 = still): a distant pylon's insulators and
    the twigs of a bare tree, which haze makes too faint for ``thin_dark``'s threshold and which a gap
    separates from the structure they belong to. Only small pieces within ``JOIN_REACH`` of a grounded thin
    structure count; cloud texture at the same contrast forms large connected webs and is left to move."""
    if not grounded.any():
        return np.zeros_like(grounded)
    weak = (hat > max(2.0, 2.0 * noise)).astype(np.uint8)
    reach = max(3, int(round(JOIN_REACH * size[1])))
    near = cv2.distanceTransform((grounded == 0).astype(np.uint8), cv2.DIST_L2, 3) <= reach  # a wide dilation
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    touching = np.zeros(n, bool)
    touching[np.unique(labels[(weak > 0) & (near > 0)])] = True
    small = stats[:, cv2.CC_STAT_AREA] <= JOIN_AREA * size[0] * size[1]
    keep = touching & small
    keep[0] = False
    return keep[labels].astype(np.uint8)


TEXTURED = 0.2  # share of the sky around a stroke with texture half as dark as a stroke: a cloud's
STANDOUT = 1.8  # a stroke's median black-hat over the 90th percentile of the sky's around it: a structure
HANGING = 3.6  # the same for a stroke that only touches the frame's top


def standing_out(
    strokes: np.ndarray, hat: np.ndarray, level: float, sky: np.ndarray, k: int, strict: bool = False
) -> np.ndarray:
    """The strokes (uint8 components) that are structures, not the texture of the clouds around them: those
    with a sky around them (``sky``, within two black-hat widths ``k``) mostly smooth, or much darker than
    its texture there. Along the skyline of a textured sky (a sea's lower clouds) every dark cloud edge rises
    from the still part; kept as structures, they and the gaps between them froze a band of cloud.

    ``strict`` (strokes that only touch the frame's top, nothing still): at least ``k`` long and
    ``HANGING`` times darker than the texture around, smooth sky or not; the small dark bits of clouds
    along the top of an all-sky photo pass the lenient test."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    keep = np.zeros(n, bool)
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * k + 1, 4 * k + 1))
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i, :4])
        if strict and max(w, h) < k:
            continue
        box = np.s_[max(0, y - 2 * k) : y + h + 2 * k, max(0, x - 2 * k) : x + w + 2 * k]
        part = (labels[box] == i).astype(np.uint8)
        around = (cv2.dilate(part, ring) > 0) & (part == 0) & sky[box]
        if not around.any() or (not strict and (hat[box][around] > level / 2).mean() <= TEXTURED):
            keep[i] = True
            continue
        contrast = float(np.median(hat[box][part > 0])) / (percentile_u8(hat[box][around], 90) + 1.0)
        keep[i] = contrast >= (HANGING if strict else STANDOUT)
    keep[0] = False
    return keep[labels].astype(np.uint8)


ANCHOR_SHARE = 0.03  # a still region's own dark strokes: at least this share of it (a pylon's: 6-45 %)


def anchored(
    region: np.ndarray, grounded: np.ndarray, width: float, share: float = ANCHOR_SHARE
) -> np.ndarray:
    """The 8-connected parts of ``region`` of which ``grounded`` strokes make at least ``share``, or that
    are nowhere wider than ``2 * width`` (a faint wire held by one stroke); of the others only their grounded
    strokes (uint8, 1 = kept). A thin structure's still region is its strokes, their fainter parts and the
    sky between them; two specks on a ridge (1 % of such a region on a coast photo, 36 px wide at 1280 px)
    had gathered the faint shading of the dark clouds over it into a frozen patch of cloud."""
    region = region.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    held = np.bincount(labels[grounded > 0], minlength=n)
    keep = held >= share * stats[:, cv2.CC_STAT_AREA]
    keep[0] = True  # the background: not a part
    inside = cv2.distanceTransform(region, cv2.DIST_L2, 3)  # half the width of the region at each pixel
    for i in np.flatnonzero(~keep):
        x, y, w, h = (int(v) for v in stats[i, :4])
        box = np.s_[y : y + h, x : x + w]
        keep[i] = inside[box][labels[box] == i].max() <= width
    keep[0] = False
    return (keep[labels] | ((grounded > 0) & (region > 0))).astype(np.uint8)


HANGING_DARK = 0.5  # percentile of the sky's grey that a stroke hanging from the top edge is darker than


def hanging(
    strokes: np.ndarray, grey: np.ndarray, hat: np.ndarray, level: float, sky: np.ndarray, k: int
) -> np.ndarray:
    """The strokes (uint8) that hang into the frame from its top edge and are structures (uint8, 1 = kept):
    an insulator whose pylon arm is above the frame touches nothing still in the photo. It goes on beyond
    the border, but it must look like a structure more clearly than what rises from the ground: darker
    than nearly all of the ``sky`` (a gap of blue between white clouds is as dark as the blue elsewhere)
    and than the texture around it (``standing_out``'s strict test). The sides are left out: there the
    dark edges of clouds passed."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(strokes.astype(np.uint8), connectivity=8)
    ids = np.unique(labels[0])
    if not ids.any():
        return np.zeros(strokes.shape, np.uint8)
    sample = grey[::4, ::4][sky[::4, ::4]]  # every 16th pixel is plenty for a percentile
    limit = percentile_u8(sample if sample.size else grey[sky], HANGING_DARK)
    dark = []
    for i in ids[ids > 0]:
        x, y, w, h = (int(v) for v in stats[i, :4])
        part = labels[y : y + h, x : x + w] == i
        if np.percentile(grey[y : y + h, x : x + w][part], 10) < limit:  # its fringe is paler: not the median
            dark.append(i)
    if not dark:
        return np.zeros(strokes.shape, np.uint8)
    return standing_out(np.isin(labels, dark).astype(np.uint8), hat, level, sky, k, strict=True)


def sizeable(binary: np.ndarray, area: float) -> np.ndarray:
    """The 8-connected parts of ``binary`` of at least ``area`` pixels: uint8, 1 = kept."""
    binary = binary.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= area
    if keep[1:].all():
        return (binary > 0).astype(np.uint8)  # nothing to drop: no lookup over the whole frame
    keep[0] = False
    return keep[labels].astype(np.uint8)


def broad_parts(binary: np.ndarray, width: float, share: float, work: int = 540) -> np.ndarray:
    """``binary`` (uint8/bool) without its parts narrower than ``width`` of the shorter side (an opening
    with a disc that wide) or smaller than ``share`` of the frame (8-connected): uint8. Found at a size
    whose shorter side is about ``work`` (every ``f``-th pixel; at a 1080p frame's own size the two passes
    took 25 ms) and kept at full size where ``binary`` is."""
    binary = (binary > 0).astype(np.uint8)
    f = max(1, min(binary.shape) // work)
    small = np.ascontiguousarray(binary[::f, ::f])
    k = int(round(width * min(small.shape))) | 1
    if k >= 3:
        small = cv2.morphologyEx(small, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    keep = sizeable(small, share * small.size)
    if f > 1:
        keep = cv2.resize(keep, (binary.shape[1], binary.shape[0]), interpolation=cv2.INTER_NEAREST)
    return binary & keep


def reaching(binary: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected parts of ``binary`` that hold a pixel of ``seeds``: uint8, 1 = kept."""
    _, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    hit = np.unique(labels[(seeds > 0) & (binary > 0)])
    return np.isin(labels, hit[hit > 0]).astype(np.uint8)


def thin_strokes(image: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Thin high-contrast strokes (wires, pylons, branches, burnt-in digits): much stronger edges than the
    top rows' and narrow enough to vanish in a 5 px median; bool, widened by a pixel."""
    top = max(2, image.shape[0] // 12)
    grey = lab[..., 0]
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    fine = np.sqrt(gx * gx + gy * gy)
    smooth = cv2.medianBlur(image, 5)
    residual = np.abs(image.astype(np.float32) - smooth.astype(np.float32)).max(axis=2)
    thin = (fine > max(8.0, 4.0 * float(np.percentile(fine[:top], 90)))) & (residual > 25)
    return cv2.dilate(thin.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
