"""What may move in a photo: the sky, found from the photo alone (no learned weights).

Real skies move everywhere there are clouds, often most near the horizon, so the mask takes *all* of the sky
down to the skyline (``day_sky``): GrabCut seeded with the top rows as sky and, as still, the bottom rows that
look like ground (dark, green, or brown) and thin high-contrast strokes (wires, pylons, branches, burnt-in
digits); a pixel starts as probable ground when its colour is nearer the ground seeds' than the top rows'.
What GrabCut leaves as ground is kept still only where it is connected to the bottom edge: a dark cloud
floating in the sky is sky, a house or a tree is not. A photo whose bottom rows look like sky (a camera
tilted up) moves entirely. Thin dark structures standing on the ground (pylons and their faint tops,
wires, bare branches) are taken out of the sky (``thin_dark``), and a bright round sun with its glare
stays (``sun_disc``). Night skies have their own cut (``night_sky``): their stars would look like thin
strokes."""

from __future__ import annotations

import cv2
import numpy as np

from .motion import _keep_sky_regions, grabcut_sky, resize_mask, working_image

# The bottom share of the frame whose ground-like pixels (``ground_like``) seed the still part.
GROUND_ROWS = 0.12
# A top this dark (L* of OpenCV's 8-bit Lab, 0..255) is a night sky: ``night_sky`` finds it (its stars would
# look like thin foreground strokes to ``cloudy_sky``), and its stars wheel (``steady``).
NIGHT_L = 40


def sky_mask(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """Binary float32 (H, W) mask of the photo's sky, 1 = may move. See the module docstring."""
    ph, pw = photo.shape[:2]
    if is_night(photo):  # the strict prior can take a sliver of dark sky and stop at the first stars
        return resize_mask(night_sky(photo, work).astype(np.float32), (pw, ph))
    mask = resize_mask(day_sky(photo, work).astype(np.float32), (pw, ph))
    if not mask.any():
        return mask
    return mask * (1.0 - thin_dark(photo, mask)) * (1.0 - sun_disc(photo, work))


def is_night(photo: np.ndarray, work: int = 256) -> bool:
    """A top this dark (median L* below ``NIGHT_L``) is a night sky: its stars wheel instead of drifting
    (``steady``), and its mask comes from ``night_sky``."""
    _, lab = working_image(photo, work)
    top = max(2, lab.shape[0] // 12)
    return bool(np.median(lab[:top, :, 0]) < NIGHT_L)


def starless(image: np.ndarray, width: int = 5) -> np.ndarray:
    """``image`` without its stars: a grey opening with a disc ``width`` pixels across, which removes every
    bright point or stroke narrower than that (stars, lit windows) and keeps the sky's glow."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    return cv2.morphologyEx(image, cv2.MORPH_OPEN, disc)


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


def thin_dark(photo: np.ndarray, sky: np.ndarray, work: int = 1280) -> np.ndarray:
    """Thin dark structures in front of a smooth sky (wires, pylons, bare branches, faint ones in haze
    too), widened a little: float32 (H, W), 1 = keep still. Found by a morphological black-hat (closing
    minus the image) a few pixels wide, against the sky's own black-hat noise, and kept only where they
    touch the still part of the photo (a narrow gap of blue between white clouds looks the same, but it
    floats)."""
    ph, pw = photo.shape[:2]
    scale = min(1.0, work / max(ph, pw))
    size = (max(16, int(round(pw * scale))), max(16, int(round(ph * scale))))
    image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if size != (pw, ph) else photo
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    k = max(5, int(round(min(size) / 60)) | 1)
    hat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    inside = cv2.resize(sky.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not inside.any():
        return np.zeros((ph, pw), np.float32)
    noise = float(np.median(hat[inside])) + 1.0
    thin = (hat > max(3.0, 4.0 * noise)).astype(np.uint8)
    # only structures that stand on the still part (pylons on the ground, wires on pylons, branches on
    # trees): a dark fleck of cloud floating in the sky is sky
    ground = cv2.dilate((~inside).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    n, labels = cv2.connectedComponents(thin, connectivity=8)
    if n <= 1:
        return np.zeros((ph, pw), np.float32)
    grounded = np.unique(labels[(thin > 0) & ground])
    thin = np.isin(labels, grounded[grounded > 0]).astype(np.uint8)
    thin = cv2.dilate(thin, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return resize_mask(thin.astype(np.float32), (pw, ph))


SUN_L = 250  # L* (OpenCV's 8-bit scale) of a sun's clipped disc
SUN_GLARE = 2.0  # the still disc around a sun: this many sun radii, plus 3 % of the shorter side
SUN_AREA = (0.001, 0.02)  # a sun's clipped blob, share of the frame (a lit cloud is larger)


def sun_disc(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """The sun and its glare, which stay where they are: float32 (H, W), 1 = still. A sun is a clipped,
    compact and roughly round blob (0.1-15 % of the frame, filling 40 % of its bounding box or more; a
    cloud's clipped highlight is smaller or a streak); an overcast sky that is white all over is not one.
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
    top = max(2, lab.shape[0] // 12)
    sky_light = float(np.percentile(light[:top], 25))
    dark = light < min(70.0, 0.5 * sky_light)
    green = (chroma > 10) & (hue > 100) & (hue < 200)
    brown = (chroma > 12) & (hue > 30) & (hue <= 100) & (light < 0.6 * sky_light)
    return dark | green | brown


def _nearest_distance(lab: np.ndarray, samples: np.ndarray, k: int = 4) -> np.ndarray:
    """Per pixel, the CIELAB distance to the nearest of ``k`` k-means centres of ``samples``."""
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(
        samples.astype(np.float32), min(k, len(samples)), None, crit, 2, cv2.KMEANS_PP_CENTERS
    )
    return np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None], axis=-1), axis=-1)


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
    if ((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(image, gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    sky = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    # still: what is not sky and is connected to the bottom edge; islands floating in the sky are sky
    still = (~sky | thin).astype(np.uint8)
    _, labels = cv2.connectedComponents(still, connectivity=8)
    grounded = np.unique(labels[-1][still[-1] > 0])
    sky = (~np.isin(labels, grounded[grounded > 0])).astype(np.uint8)
    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    sky = cv2.morphologyEx(sky, cv2.MORPH_OPEN, small)
    sky = _keep_sky_regions(sky, large=1.01)
    return cv2.erode(sky, small)


__all__ = [
    "GROUND_ROWS",
    "NIGHT_L",
    "day_sky",
    "ground_like",
    "is_night",
    "night_sky",
    "sky_mask",
    "starless",
    "sun_disc",
    "thin_dark",
]
