"""What may move in a photo: the sky, found from the photo alone (no learned weights).

Real skies move everywhere there are clouds, often most near the horizon, so the mask takes *all* of the sky
down to the skyline (``day_sky``): GrabCut seeded with the top rows as sky and, as still, the bottom rows that
look like ground (dark, green, or brown) and thin high-contrast strokes (wires, pylons, branches, burnt-in
digits); a pixel starts as probable ground when its colour is nearer the ground seeds' than the top rows'.
Where the photo shows a horizon (``horizon``) with no sky below it, the cut is made again with the sky-like
pixels above it as sky and all below it as ground: a sea's colours are its sky's. What GrabCut leaves as
ground is kept still only where it is connected to the bottom edge: a dark cloud floating in the sky is sky, a
house or a tree is not; dark silhouettes reaching the lower half stay too (islands and tree lines on a lake's
horizon, whose reflection parts them from the bottom edge). A photo whose bottom rows look like sky (a camera
tilted up) moves entirely. Thin dark structures standing on the ground (pylons and their faint tops, wires,
bare branches) are taken out of the sky (``thin_dark``), and a bright round sun with its glare stays
(``sun_disc``). Night skies have their own cut (``night_sky``): their stars would look like thin strokes."""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..io.media import InputError, Photo, load_photo
from .flow import estimate_flows
from .horizon import Horizon, horizon_candidates
from .strokes import (
    JOIN_REACH,
    anchored,
    broad_parts,
    faint_parts,
    hanging,
    percentile_u8,
    reaching,
    sizeable,
    standing_out,
    thin_strokes,
)

POCKET = 0.002  # share of the frame: a part of the sky smaller than this stays still, and one narrower
STRAND = 0.02  # than this share of the shorter side (the soft edge's width: there it hardly moves anyway)
GROUND_ROWS = 0.12  # the bottom share of the frame whose ground-like pixels seed the still part
NIGHT_L = 40  # a top this dark (L* of 8-bit Lab, 0..255) is a night sky: see ``is_night`` and ``night_sky``


def sky_mask(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """Binary float32 (H, W) mask of the photo's sky, 1 = may move (see the module docstring). A smaller photo
    than ``work`` is masked as its enlargement: the rules count pixels, and one scene gets one mask."""
    ph, pw = photo.shape[:2]
    if (s := work / max(ph, pw)) > 1:  # at its own 128 px a city's sky stopped at half its height
        big = cv2.resize(np.ascontiguousarray(photo), None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        return resize_mask(sky_mask(big, work), (pw, ph))
    if is_night(photo):  # the strict prior can take a sliver of dark sky and stop at the first stars
        return resize_mask(night_sky(photo, work).astype(np.float32), (pw, ph))
    mask = resize_mask(day_sky(photo, work).astype(np.float32), (pw, ph))
    if not mask.any():
        return mask
    mask = mask * (1.0 - thin_dark(photo, mask)) * (1.0 - sun_disc(photo, work))
    # pockets and strands of sky (between a pylon's arms) stay: moved, their darker sky slid out as a blob
    return broad_parts(mask > 0.5, STRAND, POCKET).astype(np.float32)


def is_night(photo: np.ndarray, work: int = 256) -> bool:
    """A top this dark (median L* below ``NIGHT_L``) is a night sky: its stars wheel instead of drifting
    (``steady``), and its mask comes from ``night_sky``."""
    _, lab = working_image(photo, work)
    top = max(2, lab.shape[0] // 12)
    return bool(np.median(lab[:top, :, 0]) < NIGHT_L)


STROKE_LENGTH = 2  # star widths: a bright stroke this long in one direction is glow, not a star


def starless(image: np.ndarray, width: int = 5, strokes: bool = False) -> np.ndarray:
    """``image`` without its stars: a grey opening with a disc ``width`` pixels across, which removes every
    bright point or stroke narrower than that (stars, lit windows) and keeps the sky's glow.

    ``strokes=True`` keeps the strokes: the largest of that and the openings with lines ``STROKE_LENGTH``
    widths long (four directions), which only points (small in every direction) do not survive. Light
    pillars and aurora rays are narrow but long; taken for stars, they turned with the sky and tilted."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    glow = cv2.morphologyEx(image, cv2.MORPH_OPEN, disc)
    if strokes:
        n = STROKE_LENGTH * width  # lines n pixels long: across, down and along both diagonals
        diagonal = np.eye(n, dtype=np.uint8)
        for line in (np.ones((1, n), np.uint8), np.ones((n, 1), np.uint8), diagonal, diagonal[::-1].copy()):
            np.maximum(glow, cv2.morphologyEx(image, cv2.MORPH_OPEN, line), out=glow)
    return glow


DETAIL_SCALES = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
DETAIL_ERROR = 0.5  # grey levels: a round trip through a smaller size that changes less lost no detail


def detail_scale(photo: np.ndarray) -> float:
    """How many pixels the photo's finest detail spans: the largest factor (of ``DETAIL_SCALES``, else 1) by
    which it can be shrunk and enlarged back (area, then bicubic) changing the grey less than
    ``DETAIL_ERROR`` on average. A camera's photo: 1 (noise and detail at the pixel level); a small photo
    enlarged 6x: about 4-6. Sizes picked for the finest structures (a star's width) scale with it, so an
    enlarged photo looks as it would at its own size."""
    grey = cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = grey.shape
    best = 1.0
    for factor in DETAIL_SCALES:
        size = (max(8, round(w / factor)), max(8, round(h / factor)))
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        back = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        if float(np.abs(back - grey).mean()) >= DETAIL_ERROR:
            break
        best = factor
    return best


def night_sky(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """The cut for night skies: binary uint8 at the working size. A grey opening first removes stars and lit
    windows (points and strokes a few pixels wide), leaving the sky's glow above a darker silhouette of
    land, trees or buildings; GrabCut then splits glow from silhouette, seeded with the top rows as sky and
    the bottom ``GROUND_ROWS`` as still. The stars inside the sky move with it; the cloudy-sky cut would
    have taken every star for a thin stroke of the foreground."""
    image, _ = working_image(photo, work)
    h, w = image.shape[:2]
    top = max(2, h // 12)
    glow = np.ascontiguousarray(cv2.GaussianBlur(starless(image), (0, 0), 1.0))
    gc = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
    gc[int((1 - GROUND_ROWS) * h) :] = cv2.GC_BGD
    gc[:top] = cv2.GC_FGD
    return grabcut_sky(glow, gc)


GAP = 3  # thin structures closer than this many black-hat widths are one still region


def thin_dark(photo: np.ndarray, sky: np.ndarray, work: int = 1280) -> np.ndarray:
    """Thin dark structures standing in front of the sky (wires, pylons, bare branches, faint ones in haze
    too), widened a little: float32 (H, W), 1 = keep still. Found by a morphological black-hat (closing
    minus the image) a few pixels wide, stronger than the sky's own texture away from the ground, and kept
    only where they reach into the sky from the still part (a narrow gap of blue between white clouds looks
    the same, but it floats) or clearly hang from the frame's top (``strokes.hanging``: an insulator), and
    stand out from the sky around them (``strokes.standing_out``: the dark edges of a textured sky's lower
    clouds rise from the skyline too).

    Only the part of a structure inside the sky counts, and the first stroke width above the skyline is the
    skyline's own fringe: it stays still but anchors nothing. Anchored on the ground's texture or on that
    fringe, the gap closing and the fainter parts below turned the clouds along every skyline into a frozen
    band (3-10 % of the sky of real clips, a fifth of the sky of a landscape photo)."""
    ph, pw = photo.shape[:2]
    scale = min(1.0, work / max(ph, pw))
    size = (max(16, int(round(pw * scale))), max(16, int(round(ph * scale))))
    image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if size != (pw, ph) else photo
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)  # uint8: 4x faster morphology
    k = max(5, int(round(min(size) / 60)) | 1)
    hat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    inside = cv2.resize(sky.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not inside.any():
        return np.zeros((ph, pw), np.float32)
    noise = percentile_u8(hat[inside], 50) + 1.0
    height = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)  # above the still part
    level = max(3.0, 4.0 * noise)
    fringe = (hat > level) & inside & (height <= k)
    # cloud texture: strokes as dark as the sky's own texture far from the ground are part of it (a high
    # percentile there would count the wires and pylons themselves)
    far = height > JOIN_REACH * size[1]
    if far.sum() > 0.05 * inside.sum():
        level = max(level, 3.0 * percentile_u8(hat[far], 90))
    above = inside & (height > k)  # the sky, its fringe along the skyline left out
    strokes = ((hat > level) & above).astype(np.uint8)
    thin = reaching(strokes, height <= k + 1.5)  # rising from the fringe's top
    thin = standing_out(thin, hat, level, above, k)
    thin |= hanging(strokes & (thin == 0), grey, hat, level, above, k)  # from above the frame
    # fainter pieces next to them, no fainter than half the level the sky's texture sets: in a textured
    # sky they are cloud shading
    grounded = thin.copy()
    thin |= faint_parts(hat, max(noise, level / 4), thin, size) & (height > k)
    # the sky seen between the branches of a tree (and between close wires) stays too: moving it carried
    # the faint twigs in it away from the tree, a ghost of branches drifting off. A faint speck that the
    # closing leaves on its own belongs to no structure: held still, it showed as a disc of the photo's sky
    # standing in the moving sky around it, a round ghost wherever the sky's colour changes
    gap = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (GAP * k | 1, GAP * k | 1))
    thin = anchored(reaching(cv2.morphologyEx(thin, cv2.MORPH_CLOSE, gap), grounded), grounded, k)
    thin = cv2.dilate(thin, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    half = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k // 2 | 1, k // 2 | 1))
    thin |= cv2.dilate(fringe.astype(np.uint8), half)
    return resize_mask(thin.astype(np.float32), (pw, ph))


SUN_L = 250  # L* (OpenCV's 8-bit scale) of a sun's clipped disc
SUN_GLARE = 2.0  # the still disc around a sun: this many sun radii, plus 3 % of the shorter side
SUN_AREA = (0.001, 0.02)  # a sun's clipped blob, share of the frame (a lit cloud is larger)


def sun_disc(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """The sun and its glare, which stay where they are: float32 (H, W), 1 = still. A sun is a clipped,
    compact and roughly round blob (0.1-2 % of the frame, ``SUN_AREA``, filling 40 % of its bounding box or
    more; a cloud's clipped highlight is a streak, a lit cloud larger); an overcast sky that is white all
    over is not one.
    The largest such blob wins; none: all zeros."""
    ph, pw = photo.shape[:2]
    image, lab = working_image(photo, work)
    h, w = image.shape[:2]
    bright = (lab[..., 0] >= SUN_L).astype(np.uint8)
    n, _, stats, centres = cv2.connectedComponentsWithStats(bright, connectivity=8)
    best = None
    for k in range(1, n):
        x, y, bw, bh, area = stats[k]
        round_enough = area >= 0.4 * bw * bh and 0.4 <= bw / bh <= 2.5
        if (
            SUN_AREA[0] * h * w <= area <= SUN_AREA[1] * h * w
            and round_enough
            and (best is None or area > stats[best, 4])
        ):
            best = k
    disc = np.zeros((h, w), np.float32)
    if best is None:
        return np.zeros((ph, pw), np.float32)
    radius = SUN_GLARE * np.sqrt(stats[best, 4] / np.pi) + 0.03 * min(h, w)
    cx, cy = centres[best]
    cv2.circle(disc, (int(round(cx)), int(round(cy))), int(round(radius)), 1.0, -1)
    return resize_mask(disc, (pw, ph))


def ground_like(lab: np.ndarray) -> np.ndarray:
    """Pixels (of a float32 CIELAB image, OpenCV's 8-bit scale) that look like ground rather than sky: dark
    (silhouettes), green (vegetation) or dark orange-brown (earth, rock, roofs). A sunset's bright orange
    glow, blue sky and grey or white clouds are not."""
    light, a, b = lab[..., 0], lab[..., 1] - 128.0, lab[..., 2] - 128.0
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    green = (chroma > 10) & (hue > 100) & (hue < 200)
    brown = (chroma > 12) & (hue > 30) & (hue <= 100) & (light < 0.6 * _sky_light(lab))
    return _dark(lab) | green | brown


def _sky_light(lab: np.ndarray) -> float:
    """The top rows' lightness (their 25th percentile): what ``ground_like`` measures darkness against."""
    return float(np.percentile(lab[: max(2, lab.shape[0] // 12), :, 0], 25))


def _dark(lab: np.ndarray) -> np.ndarray:
    """``ground_like``'s dark pixels: silhouettes, under half the top rows' lightness (and under 70)."""
    return lab[..., 0] < min(70.0, 0.5 * _sky_light(lab))


def _nearest_distance(lab: np.ndarray, samples: np.ndarray, k: int = 4) -> np.ndarray:
    """Per pixel, the CIELAB distance to the nearest of ``k`` k-means centres of ``samples``."""
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(
        samples.astype(np.float32), min(k, len(samples)), None, crit, 2, cv2.KMEANS_PP_CENTERS
    )
    return np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None], axis=-1), axis=-1)


def day_sky(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """The sky of a day photo down to the skyline: binary uint8 at the working size (see the module
    docstring)."""
    image, lab = working_image(photo, work)
    h, w = image.shape[:2]
    top = max(2, h // 12)
    thin = thin_strokes(image, lab)
    groundy = ground_like(lab)
    bottom = np.zeros((h, w), bool)
    bottom[int((1 - GROUND_ROWS) * h) :] = True
    gc = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
    gc[groundy] = cv2.GC_PR_BGD
    seeds = lab[bottom & groundy]
    if len(seeds) >= 8:
        nearer_ground = _nearest_distance(lab, seeds) < _nearest_distance(lab, lab[:top].reshape(-1, 3))
        gc[nearer_ground] = cv2.GC_PR_BGD
    gc[bottom & groundy] = cv2.GC_BGD
    gc[thin] = cv2.GC_BGD
    gc[:top][~thin[:top]] = cv2.GC_FGD
    if (gc == cv2.GC_FGD).sum() < 4:
        return np.zeros((h, w), np.uint8)  # the top is all strokes: nothing to call sky
    horizon = None
    if ((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)).any():
        cut = gc.copy()
        _grabcut(image, cut)
        horizon = _down_to_the_horizon(lab, gc, cut, groundy | thin, seeds) if len(seeds) >= 8 else None
        if horizon is None:
            gc = cut
        else:
            _grabcut(image, gc)  # again, from the seeds with the horizon's
    sky = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    # still: what is not sky and is connected to the bottom edge; islands floating in the sky are sky,
    # but not silhouettes in the lower half (islands and tree lines on a lake's horizon, which its
    # reflection of the sky separates from the bottom edge), nor what GrabCut left as ground around them
    # (their lit tops drifted off as flecks)
    still = (~sky | thin).astype(np.uint8)
    land = _silhouettes(lab, horizon)
    anchors = land.copy()  # the whole of what GrabCut left as ground around them
    anchors[-1] = True  # and all that reaches the bottom edge
    sky = (~((reaching(still, anchors) > 0) | land)).astype(np.uint8)
    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    sky = cv2.morphologyEx(sky, cv2.MORPH_OPEN, small)
    sky = _keep_sky_regions(sky, large=1.01)
    return cv2.erode(sky, small)


def _grabcut(image: np.ndarray, gc: np.ndarray) -> None:
    """GrabCut from the labels in ``gc`` (changed in place), seeded the same every time (cv2.setRNGSeed), so
    a photo always gets one mask."""
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(image, gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)


FREED_AREA = 0.004  # share of the frame: the least a patch of sky freed by a horizon holds


def _down_to_the_horizon(
    lab: np.ndarray, gc: np.ndarray, cut: np.ndarray, fixed: np.ndarray, seeds: np.ndarray
) -> Horizon | None:
    """Where the photo shows a horizon (``horizon.horizon_candidates``) and GrabCut's ``cut`` has no sky below
    it, the seeds in ``gc`` (changed in place) gain it: what is below it is sure ground, and what is above
    it, not ground-like or a stroke (``fixed``), and coloured more like the sky of the cut than like the
    ground seeds, sure sky; the horizon when they did, else None. The clouds just above a sea share the
    sea's colours, and GrabCut alone froze them with it; a level edge in the clouds, with sky on both sides,
    changes nothing."""
    sky = (cut == cv2.GC_FGD) | (cut == cv2.GC_PR_FGD)
    edges = horizon_candidates(lab, fixed) if sky.sum() >= 8 else []
    edge = next((e for e in edges if sky[e.band(sky.shape, above=False)].mean() <= 0.2), None)
    if edge is None:
        return None
    samples = lab[sky][:: max(1, int(sky.sum()) // 4000)]
    skyish = _nearest_distance(lab, samples) < _nearest_distance(lab, seeds)
    freed = edge.above(gc.shape) & ~fixed & skyish
    # a horizon frees bands of cloud: a few sky-coloured pixels freed on their own are more likely a pale
    # wall between the windows of a building standing on it
    freed = (sizeable(freed & ~sky, FREED_AREA * sky.size) > 0) | (freed & sky)
    gc[edge.below(gc.shape)] = cv2.GC_BGD
    gc[freed] = cv2.GC_FGD
    return edge


def _silhouettes(lab: np.ndarray, horizon: Horizon | None = None) -> np.ndarray:
    """Dark shapes (``ground_like``'s dark) of some size whose lowest row is in the lower half (and, where
    the photo's ``horizon`` is known, within 3 % of the height of it or below): land seen against the sky,
    whatever is below it. A dark cloud floating in the sky is left out (with the sky down to a sunset's
    horizon, its dark lower clouds stood still as land)."""
    h, w = lab.shape[:2]
    dark = _dark(lab).astype(np.uint8)
    # a row of trees is one shape: the gaps between them bridged sideways
    row = cv2.dilate(dark, np.ones((1, max(3, w // 50) | 1), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(row, connectivity=8)
    bottom = stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]
    keep = (stats[:, cv2.CC_STAT_AREA] >= 0.001 * h * w) & (bottom >= 0.5 * h)
    if horizon is not None:
        middle = np.clip(stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH] // 2, 0, w - 1)
        keep &= bottom >= horizon.rows(w)[middle] - 0.03 * h
    keep[0] = False
    return keep[labels] & (dark > 0)


# ---- masks from motion, masks from files, feathering -----------------------------------------------


def flow_travel(flows: np.ndarray) -> np.ndarray:
    """How far each pixel travels, averaged over the video: (H, W) float32 in model pixels.

    Flow magnitude, not frame difference: frame differences light up textured ground (grass flicker, camera
    shake along edges) more than smoothly drifting clouds, while flow sees the clouds travel."""
    if len(flows) < 2:
        return np.zeros(flows.shape[1:3], np.float32)
    return np.sqrt((flows[1:] ** 2).sum(axis=3)).mean(axis=0)


def auto_mask(
    video: np.ndarray, flows: np.ndarray | None = None, min_travel: float = 0.5, ratio: float = 0.3
) -> np.ndarray:
    """Where the predicted video moves, as a clean binary sky mask (H, W) float32 at the video's size.

    A pixel moves when its mean travel exceeds ``ratio`` of the 95th percentile and ``min_travel`` model
    pixels (so a still prediction gives an empty mask and an all-sky one a full mask). The binary map is
    closed and opened (fills gaps, drops specks); only regions touching the top edge (the sky is above the
    ground) or covering a tenth of the frame (a sea of clouds) are kept; small holes are filled; and it is
    eroded one step: a mask that misses a strip of sky costs little, one that grazes a roof makes it
    wobble."""
    if flows is None:
        flows = estimate_flows(video)
    energy = cv2.GaussianBlur(flow_travel(flows), (0, 0), 1.5)
    h, w = energy.shape
    threshold = max(min_travel, ratio * float(np.percentile(energy, 95)))
    binary = (energy > threshold).astype(np.uint8)
    k = max(3, int(round(min(h, w) / 32)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    binary = _keep_sky_regions(binary)
    binary = _fill_small_holes(binary, max_area=0.02 * h * w)
    binary = cv2.erode(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return binary.astype(np.float32)


def refine_mask(mask: np.ndarray, photo: np.ndarray, share: float = 0.5) -> np.ndarray:
    """The final ``--mask auto`` mask: the motion mask confined to where the photo itself shows sky.

    A model's motion is not confined to the sky: trained MD-GANs move roofs, house fronts and the sea as
    readily as clouds, so motion alone cannot say what must stand still. ``sky_prior`` (the photo only, no
    learned weights) says where sky can be; the motion mask may only shrink it. When the motion mostly lies
    elsewhere (it covers less than ``share`` of the prior's sky, as when the model moves the roofs and
    leaves the sky almost still) the motion says nothing about the sky's extent and the prior alone is
    used: the sky then carries whatever motion the model predicts there. An empty motion mask (a still
    prediction) stays empty. Returns a binary float32 mask at the photo's size."""
    ph, pw = photo.shape[:2]
    if not (mask >= 0.5).any():
        return np.zeros((ph, pw), np.float32)
    prior = sky_prior(photo)
    h, w = prior.shape
    moving = resize_mask(mask, (w, h)).astype(np.uint8)
    both = prior & moving
    if both.sum() >= share * prior.sum():
        prior = _keep_sky_regions(both, large=1.01)  # only what still touches the top edge
    return resize_mask(prior.astype(np.float32), (pw, ph))


def sky_prior(photo: np.ndarray, work: int = 320) -> np.ndarray:
    """Where the photo can show sky, from the photo alone: binary uint8 at the working size (the longer side
    ``work`` pixels, never enlarged).

    Sky is taken to be what is connected to the top edge, no busier than the top rows themselves (local
    gradient energy: roofs, brick, foliage, wires and the timestamp's strokes are busier than a sky, which
    is smooth, or cloudy in the same way all over) and coloured like them. Those rules seed GrabCut (colour
    models and an edge-aware cut, no learned weights): the smooth top rows are sure sky, busy pixels and the
    bottom rows sure still, the rest decided by colour and by where the strong edges (roof lines, ridges,
    the horizon) run. It errs on the still side: the result is opened, kept only where it touches the top
    edge and eroded by a pixel, since a strip of still sky costs little and a roof that moves is a failure.
    A photo whose top rows are not sky-like gives an empty prior."""
    image, lab = working_image(photo, work)
    h, w = image.shape[:2]
    grey = cv2.GaussianBlur(lab[..., 0], (0, 0), 1.0)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    energy = cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), max(1.0, w / 100))
    top = max(2, h // 20)
    top_energy = float(np.percentile(energy[:top], 75))
    # a sky is smooth or evenly cloudy (0.5-3 on the four photos; foliage, noise, the ground of an upside-down
    # photo: 3-10) and not darker than the lower half; anything else at the top means no sky to find
    if top_energy > 5.0 or np.median(lab[:top, :, 0]) + 10 < np.median(lab[h // 2 :, :, 0]):
        return np.zeros((h, w), np.uint8)
    busy = energy > max(4.0, 2.5 * top_energy)
    # thin structures (bare branches, wires, distant pylons) vanish in the averaged energy: their own edges
    # count too, against the same rule at the finest scale
    fine = np.sqrt(gx * gx + gy * gy)
    thin = fine > max(6.0, 4.0 * float(np.percentile(fine[:top], 75)))
    busy |= cv2.dilate(thin.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    colours = lab[:top].reshape(-1, 3)
    centre = np.median(colours, axis=0)
    spread = float(np.percentile(np.linalg.norm(colours - centre, axis=1), 90))
    alike = np.linalg.norm(lab - centre, axis=2) < spread + 12.0
    seeds = np.zeros((h, w), bool)
    seeds[:top] = True
    seeds &= alike & ~busy
    if seeds[:top].mean() < 0.2:  # the top is not sky (a forest, a wall, an indoor photo)
        return np.zeros((h, w), np.uint8)
    gc = np.where(alike & ~busy, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[busy] = cv2.GC_BGD
    gc[int(0.85 * h) :] = cv2.GC_BGD  # the sky is above the ground
    gc[seeds] = cv2.GC_FGD
    return grabcut_sky(image, gc)


def working_image(photo: np.ndarray, work: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo reduced so its longer side is at most ``work`` (masks are found there: GrabCut's cost
    grows with pixels, and sky/ground is a coarse question), and its float32 CIELAB copy."""
    ph, pw = photo.shape[:2]
    scale = min(1.0, work / max(ph, pw))
    size = (max(16, int(round(pw * scale))), max(16, int(round(ph * scale))))
    image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if size != (pw, ph) else photo
    image = np.ascontiguousarray(image)
    return image, cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)


def grabcut_sky(image: np.ndarray, gc: np.ndarray) -> np.ndarray:
    """GrabCut from seeds in ``gc`` (cv2.GC_* labels, changed in place), then the sky cleaned: specks opened
    away, only regions touching the top edge kept, and one pixel eroded so the edge of the moving part
    stays inside the sky. Seeded the same every time (cv2.setRNGSeed), so a photo always gets one mask."""
    _grabcut(image, gc)
    sky = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    sky = cv2.morphologyEx(sky, cv2.MORPH_OPEN, small)
    sky = _keep_sky_regions(sky, large=1.01)
    return cv2.erode(sky, small)


def _keep_sky_regions(binary: np.ndarray, large: float = 0.1) -> np.ndarray:
    """Keep regions touching the top edge or covering ``large`` of the frame; islands elsewhere (a skylight
    window, a puddle reflecting the sky) are ground that happens to look or move like sky."""
    h, w = binary.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=4)
    keep = [
        lab
        for lab in range(1, n)
        if stats[lab, cv2.CC_STAT_TOP] == 0 or stats[lab, cv2.CC_STAT_AREA] >= large * h * w
    ]
    return np.isin(labels, keep).astype(np.uint8)


def _fill_small_holes(binary: np.ndarray, max_area: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - binary, connectivity=4)
    h, w = binary.shape
    out = binary.copy()
    for lab in range(1, n):
        x, y, bw, bh, area = stats[lab]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and area <= max_area:
            out[labels == lab] = 1
    return out


def load_mask(
    source: str | os.PathLike | Photo, size: tuple[int, int], photo_size: tuple[int, int]
) -> np.ndarray:
    """A user's mask image (white = sky, black = still; a path, or the ``Photo`` read from it) resized to
    ``size`` = (width, height), binary float32.

    Any size with the photo's aspect ratio is accepted (draw it on a small copy); a different aspect ratio
    means it was drawn for another photo, which is an ``InputError``."""
    mask_photo = source if isinstance(source, Photo) else load_photo(source, min_side=None)
    path = mask_photo.path
    mw, mh = mask_photo.size
    pw, ph = photo_size
    if abs(mw / mh - pw / ph) > 0.01 * (pw / ph) + 1.0 / min(mh, mw):
        raise InputError(path, f"mask is {mw}x{mh} but the photo is {pw}x{ph}: aspect ratios differ")
    grey = np.asarray(mask_photo.image.convert("L"))
    grey = cv2.resize(grey, tuple(size), interpolation=cv2.INTER_AREA if mw > size[0] else cv2.INTER_LINEAR)
    return (grey >= 128).astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a binary mask to (width, height) with a smooth, re-binarised edge (no staircase from 128 px)."""
    if mask.shape[::-1] == tuple(size):
        return mask.astype(np.float32)
    up = cv2.resize(mask.astype(np.float32), tuple(size), interpolation=cv2.INTER_LINEAR)
    return (up >= 0.5).astype(np.float32)


def soft_alpha(mask: np.ndarray, feather: float | None = None) -> np.ndarray:
    """Blend weights (H, W) float32 from a binary mask: exactly 0 outside it (the photo's own pixels), rising
    smoothly to 1 over ``feather`` pixels *inside* it, so the seam is soft but the foreground is untouched.
    Default feather: 2% of the shorter side."""
    h, w = mask.shape
    if feather is None:
        feather = max(2.0, 0.02 * min(h, w))
    binary = (mask >= 0.5).astype(np.uint8)
    if not binary.any():
        return np.zeros((h, w), np.float32)
    # distance to the nearest still pixel; the image border is not a still pixel
    padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    x = np.clip(dist / feather, 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)  # smoothstep


def sky_only(photo: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """The photo with everything outside ``sky`` replaced by a smooth extension of the sky's colours, as the
    source for warping: a sky pixel whose flow points across the horizon then fetches more sky, never a
    smeared piece of roof. Computed once per video at 1/8 scale (normalised convolution at growing radii)."""
    ph, pw = photo.shape[:2]
    if sky.all() or not sky.any():
        return photo
    size = (max(4, pw // 8), max(4, ph // 8))
    m = cv2.resize(sky.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    m = (m > 0.99).astype(np.float32)  # only pure-sky cells feed the fill
    img = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    fill = img.copy()
    have = m.copy()
    for sigma in (1.0, 3.0, 9.0, 27.0, 81.0):
        den = cv2.GaussianBlur(m, (0, 0), sigma)
        num = cv2.GaussianBlur(img * m[..., None], (0, 0), sigma)
        ok = (den > 1e-3) & (have == 0)
        fill[ok] = num[ok] / den[ok][:, None]
        have[ok] = 1
    if not have.all():
        fill[have == 0] = img[m > 0].mean(axis=0)
    big = cv2.resize(np.clip(fill + 0.5, 0, 255).astype(np.uint8), (pw, ph), interpolation=cv2.INTER_LINEAR)
    return np.where(sky[..., None], photo, big)


def bounding_box(region: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding rows and columns (y0, y1, x0, x1) of the True pixels; empty when there are none."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if len(rows) == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


__all__ = [
    "DETAIL_ERROR",
    "DETAIL_SCALES",
    "GROUND_ROWS",
    "NIGHT_L",
    "day_sky",
    "detail_scale",
    "ground_like",
    "is_night",
    "night_sky",
    "sky_mask",
    "starless",
    "sun_disc",
    "thin_dark",
]
