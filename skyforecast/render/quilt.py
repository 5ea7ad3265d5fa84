"""Sky for beyond a photo's sides, quilted from the photo's own sky (Efros and Freeman, "Image Quilting for
Texture Synthesis and Transfer", SIGGRAPH 2001). When the sky drifts sideways, what flows in across a side
must be invented. A copy of the other side (the frame wrapped around) is the photo's own texture, but a
photo's two sides are often different skies: a sunset's deep blue side flowed in as a blue band next to
the pale glow it joined, and recolouring it turned its grey clouds pink. Patches taken from rows at the
same height (the sky's colour changes with height) and joined along the seams where they differ least
continue the sky next to the edge in its own colours, with no mirror image and no repeated strip (the
side's own last columns come again only up to the first seams, which are cut through them). The search
runs at a small size; the patches are copied at full size. No torch here."""

from __future__ import annotations

import math

import cv2
import numpy as np

SEARCH_ROWS = 150  # the patches are chosen on the photo scaled to about this height
PATCH = 0.15  # patch side, share of the height
OVERLAP = 0.35  # share of a patch that overlaps the sky already laid, where the seam is cut
ROW_REACH = 0.1  # share of the height: a patch comes from rows at most this far from where it lands
AWAY = 0.15  # share of the width: patches come from at least this far inside the side they continue
EDGE = 0.1  # share of the width: the strip next to the side whose colour the patches should have
CHOICE = 0.15  # a patch is drawn among the candidates within this share of the best one's error
SKY_INSIDE = 0.999  # share of a patch that must be the photo's sky (all of it: a pylon's corner came along)
COLOUR = 0.3  # weight of the patch colour against the overlap agreement
OFFSET_LIMIT = 12.0  # levels a patch is moved at most to the sky it overlaps
MIN_PATCHES = 4  # a photo narrower than this many patches keeps the copy of its other side
SEAM_FEATHER = 0.6  # share of the overlap over which two patches blend either side of their seam


def side_sky(
    source: np.ndarray,
    pad: int,
    left: bool,
    sky: np.ndarray | None = None,
    height: int | None = None,
    seed: int = 0,
    lead: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None:
    """(H, pad, 3) uint8: sky for beyond ``source``'s left (``left``) or right side, quilted from patches
    of its sky (``sky``: where it is the photo's own sky, not a fill; all of it by default). It starts with
    the side's own last columns up to the first seams (the caller joins them to the edge,
    ``sides.harmonic_join``) and continues with patches whose colour is the side's; seeded, so a photo
    always gets the same sky. ``height``: the photo's, when ``source`` is a band of its rows (patch sizes
    and the search's scale follow the photo, not the band). None when the photo is too narrow or too low
    for patches (under ``MIN_PATCHES`` of them across, or lower than one). ``lead``: also the (H, pad)
    float32 share of each pixel that is the side's own last columns (1) rather than patches (0): those
    columns already have the edge's colours, and only the patches are to be moved to them."""
    rng = np.random.default_rng(seed + int(left))
    h, w = source.shape[:2]
    scale = min(1.0, SEARCH_ROWS / (height or h))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(source, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    sky = np.ones((h, w), bool) if sky is None else sky > 0
    inside = cv2.resize(sky.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_AREA) / 255.0
    patch = max(6, round(PATCH * (height or h) * scale))  # a patch's side at the small size
    if size[0] < MIN_PATCHES * patch or size[1] < patch:
        return None
    if not left:
        sky_pad, own = _quilt_right(source, small, inside, pad, scale, patch, rng)
    else:  # the left side is the right side of the photo flipped: flipping the result flips every patch back
        sky_pad, own = _quilt_right(
            source[:, ::-1], small[:, ::-1].copy(), inside[:, ::-1].copy(), pad, scale, patch, rng
        )
        sky_pad, own = np.ascontiguousarray(sky_pad[:, ::-1]), np.ascontiguousarray(own[:, ::-1])
    return (sky_pad, own) if lead else sky_pad


def _quilt_right(
    source: np.ndarray,
    small: np.ndarray,
    inside: np.ndarray,
    pad: int,
    scale: float,
    patch: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``pad`` columns of sky continuing ``source`` beyond its right side, chosen on ``small`` (``source``
    at ``scale``) where ``inside`` (the share of sky at that size) says it is sky, laid at full size; and
    the share of each pixel that is the side's own last columns (``_full_size``)."""
    w = source.shape[1]
    sh, sw = small.shape[:2]
    ph = pw = min(sh, patch)
    over = max(2, round(OVERLAP * ph))
    need = over + math.ceil(pad * sw / w) + 1  # the side's last columns, then the pad, at the small size
    stop = sw - max(ph, round(AWAY * sw))  # candidates end this far inside the side
    if stop < 2 * ph:
        stop = sw
    xs = list(range(0, max(1, need - over), pw - over))
    ys = sorted(set(list(range(0, max(1, sh - ph), ph - over)) + [max(0, sh - ph)]))
    # the side's colour, row by row, clouds and all: a patch should have it where it lands (its mean over
    # the patch against the mean of the side's strip over the same rows)
    strip = small[:, sw - max(2, round(EDGE * sw)) :]
    target = cv2.blur(strip.mean(axis=1, keepdims=True), (1, ph), borderType=cv2.BORDER_REPLICATE)[:, 0]
    means = cv2.blur(small, (pw, ph), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)  # at each top-left
    # the overlaps are matched in colour: matched in grey, a dark blue cloud continued a sunset's orange one
    canvas = np.zeros((sh, xs[-1] + pw, 3), np.float32)
    known = np.zeros(canvas.shape[:2], np.float32)
    canvas[:, :over] = small[:, sw - over :]  # the side's own last columns: the first patches continue them
    known[:, :over] = 1.0
    reach = max(1, round(ROW_REACH * sh))
    # patches come from the photo's own sky: where the source was painted over (behind hills, roofs) it is
    # a smooth fill, which laid flat blocks into the clouds
    inside = cv2.blur(inside, (pw, ph), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    outside = inside < SKY_INSIDE
    placed = []
    for y in ys:  # row by row: each patch's left and top neighbours are laid before it
        y0, y1 = max(0, y - reach), min(sh, y + ph + reach)
        if outside[y0 : y1 - ph + 1, : stop - pw + 1].all():
            y0, y1 = 0, sh  # no sky at these heights: any height
        shift = ((means[y0:y1, :stop] - target[min(sh - 1, y + ph // 2)]) ** 2).sum(axis=2)
        shift[outside[y0:y1, :stop]] = np.inf
        for x in xs:
            here = (slice(y, y + ph), slice(x, x + pw))
            sy, sx = _choose(small[y0:y1, :stop], shift, canvas[here], known[here], over, rng)
            sy += y0
            patch = small[sy : sy + ph, sx : sx + pw]
            new = _new_weights(canvas[here], patch, known[here], over)
            canvas[here] += (patch - canvas[here]) * new[..., None]
            known[here] = 1.0
            placed.append((y, x, sy, sx, new))
    return _full_size(source, pad, scale, over, placed)


def _choose(
    area: np.ndarray,
    shift: np.ndarray,
    template: np.ndarray,
    known: np.ndarray,
    over: int,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Where in ``area`` (the sky, in colour) the next patch comes from: its overlap with the sky laid
    (``template`` where ``known``) should agree, and its mean colour should be the side's at that height
    (``shift``: the squared difference, for the patch at each top-left; infinite where it is not all
    sky); drawn among the nearly best (``CHOICE``), so that a sky of few distinct clouds does not repeat
    one patch."""
    ph, pw, channels = template.shape
    rows, cols = area.shape[0] - ph + 1, area.shape[1] - pw + 1
    ssd = np.zeros((rows, cols), np.float32)
    count = 0
    # the overlap is a strip on the left, one on top, or both (an L): each strip's sum of squared
    # differences at every candidate is one unmasked template match, which is fast
    if known[:, :over].all():
        ssd += cv2.matchTemplate(area[:, : cols + over - 1], template[:, :over], cv2.TM_SQDIFF)
        count += ph * over * channels
    if known[:over].all():
        start = over if count else 0
        part = cv2.matchTemplate(area[: rows + over - 1, start:], template[:over, start:], cv2.TM_SQDIFF)
        ssd += part[:rows, :cols]
        count += over * (pw - start) * channels
    error = np.maximum(ssd, 0.0) / max(1, count) + COLOUR * shift[:rows, :cols]
    best = float(error.min())
    if not np.isfinite(best):  # no patch of sky anywhere: the detail's top-left one
        return 0, 0
    ys, xs = np.nonzero(error <= best * (1.0 + CHOICE) + 1e-3)
    pick = int(rng.integers(len(ys)))
    return int(ys[pick]), int(xs[pick])


def _new_weights(old: np.ndarray, new: np.ndarray, known: np.ndarray, over: int) -> np.ndarray:
    """(rows, cols) float32 weights of the new patch: 0 on the old sky's side of the cheapest seams
    through the left and top overlaps (``cut_weights``), 1 beyond them; 1 wherever nothing was laid yet."""
    weight = np.ones(old.shape[:2], np.float32)
    if known[:, :over].all():
        weight[:, :over] = cut_weights(old[:, :over], new[:, :over], SEAM_FEATHER)[..., 0]
    if known[:over].all():
        top = cut_weights(old[:over].swapaxes(0, 1), new[:over].swapaxes(0, 1), SEAM_FEATHER)[..., 0].T
        weight[:over] = np.minimum(weight[:over], top)
    return np.where(known > 0, weight, 1.0).astype(np.float32)


CUT_FEATHER = 0.3  # share of the join's width over which the two skies blend either side of the cut


def cut_weights(before: np.ndarray, after: np.ndarray, feather: float = CUT_FEATHER) -> np.ndarray:
    """(H, W, 1) float32 weights of ``after`` where two skies of the same shape join (``before`` continues
    the sky on the left, ``after`` the one on the right): 0 left of a cut and 1 right of it, blended over
    ``CUT_FEATHER`` of the width. The cut runs from top to bottom where the two differ least (a
    minimum-error boundary cut, Efros and Freeman 2001), moving a pixel sideways per row at most: it
    passes between clouds, through the clear sky they share. A cross-fade over the whole join cut a cloud
    that the photo's side cuts off as a straight vertical edge, and laid the two skies over each other."""
    h, w = before.shape[:2]
    feather = max(2, int(round(feather * w)))
    lo, hi = feather // 2, w - feather // 2  # the cut stays where its blend fits in the join
    if hi - lo < 1:
        ramp = (np.arange(w, dtype=np.float32) + 0.5) / w
        return np.broadcast_to(ramp[None, :, None], (h, w, 1)).astype(np.float32)
    error = np.abs(before - after).sum(axis=2)
    error = cv2.GaussianBlur(error, (0, 0), 2.0)[:, lo:hi]
    total = error.copy()
    prev = np.full(hi - lo + 2, np.inf, np.float32)
    for y in range(1, h):  # the cheapest path from the top to each pixel, one column sideways per row
        prev[1:-1] = total[y - 1]
        total[y] += np.minimum(np.minimum(prev[:-2], prev[1:-1]), prev[2:])
    cut = np.empty(h, np.int64)
    cut[-1] = int(np.argmin(total[-1]))
    for y in range(h - 2, -1, -1):
        x = cut[y + 1]
        a, b = max(0, x - 1), min(hi - lo, x + 2)
        cut[y] = a + int(np.argmin(total[y, a:b]))
    # the path's one-pixel steps smoothed over a few rows: a staircase edge catches the eye
    cut = cv2.GaussianBlur(cut.astype(np.float32)[:, None], (1, 0), sigmaX=0.1, sigmaY=3.0)[:, 0]
    cols = np.arange(w, dtype=np.float32)[None, :]
    z = np.clip((cols - (cut[:, None] + lo)) / feather + 0.5, 0.0, 1.0)
    return (z * z * (3.0 - 2.0 * z))[..., None].astype(np.float32)


def _full_size(
    source: np.ndarray, pad: int, scale: float, over: int, placed: list
) -> tuple[np.ndarray, np.ndarray]:
    """The quilt laid again at ``source``'s size: the same patches (positions scaled), the same seams
    (the weights enlarged), so the pad has the photo's own detail; and per pixel, the share of it that is
    the side's own last columns (float32, 1 where no patch was laid over them)."""
    h, w = source.shape[:2]
    lead = max(1, round(over / scale))
    ends = [x + new.shape[1] for _, x, _, _, new in placed]
    width = max(lead + pad, math.ceil(max(ends, default=0) / scale) + 1)
    canvas = np.zeros((h, width, 3), np.float32)
    known = np.zeros((h, width), bool)
    canvas[:, :lead] = source[:, w - lead :]
    known[:, :lead] = True
    own = np.zeros((h, width), np.float32)
    own[:, :lead] = 1.0
    for y, x, sy, sx, new in placed:
        bh, bw = math.ceil(new.shape[0] / scale), math.ceil(new.shape[1] / scale)
        fy, fx = min(round(y / scale), h - 1), round(x / scale)
        fsy, fsx = max(0, min(round(sy / scale), h - bh)), max(0, min(round(sx / scale), w - bw))
        region = canvas[fy : fy + bh, fx : fx + bw]
        seen = known[fy : fy + bh, fx : fx + bw]
        rows, cols = region.shape[:2]
        patch = source[fsy : fsy + rows, fsx : fsx + cols].astype(np.float32)
        if seen.any():  # moved to the sky it overlaps: in a smooth sky, a patch a few levels off showed
            # its square (the median, within a few levels: where the two differ in clouds, not in level,
            # the mean moved whole patches)
            every = (slice(None, None, 4), slice(None, None, 4))  # a sixteenth of the pixels tells the level
            offset = np.median(region[every][seen[every]] - patch[every][seen[every]], axis=0)
            patch += np.clip(offset, -OFFSET_LIMIT, OFFSET_LIMIT)
        weight = cv2.resize(new, (bw, bh), interpolation=cv2.INTER_LINEAR)[:rows, :cols]
        weight = np.where(seen, weight, 1.0)[..., None]  # nothing laid there yet: the patch whole
        region += (patch - region) * weight
        own[fy : fy + bh, fx : fx + bw] *= 1.0 - weight[..., 0]
        seen[...] = True
    # the pad starts with the side's last columns again, up to the seams the first patches were cut along
    # through them: started after those columns, it began with a patch's own edge, whatever it held (a dark
    # blue cloud cut off straight beside a sunset's orange one, on its left side at 1080p)
    # (those columns continue the side closely, not exactly: the caller spreads the step at the edge into
    # them, ``sides.harmonic_join``)
    return np.clip(canvas[:, :pad] + 0.5, 0, 255).astype(np.uint8), own[:, :pad]
