"""What may move in a photo: the sky, found from the photo alone (no learned weights).

``motion.sky_prior`` is strict: it wants a smooth, evenly textured band of sky at the top and refuses a photo
whose top rows are busy. A cloudy sky is busy, so a photo that is mostly clouds (``examples/sky.jpg``, most
real time-lapses) got an empty prior, and with ``--mask auto`` nothing moved. ``sky_mask`` keeps the strict
prior where it finds sky and otherwise falls back to a colour cut that accepts texture in the sky: GrabCut
seeded with the top rows as sky and the bottom rows as ground. Both keep only what touches the top edge,
and both err on the still side: a strip of sky that stands still costs little, a roof that wobbles is a
failure. Timestamps, roofs, trees stay out: the bottom rows are forced still and thin, high-contrast
structures (branches, wires, the strokes of burnt-in digits) are marked still before the cut."""

from __future__ import annotations

import cv2
import numpy as np

from .motion import grabcut_sky, resize_mask, sky_prior, working_image

# Below this share of the frame the strict prior is taken to have missed the sky (it found a sliver at most).
MIN_PRIOR = 0.05
# The bottom share of the frame that is always still in the fallback cut: a photo with no ground at all is
# rare, and a burnt-in timestamp or the horizon's trees sit here.
GROUND_ROWS = 0.12
# A top this dark (L* of OpenCV's 8-bit Lab, 0..255) is a night sky: ``night_sky`` finds it (its stars would
# look like thin foreground strokes to ``cloudy_sky``), and its stars wheel (``steady``).
NIGHT_L = 40


def sky_mask(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """Binary float32 (H, W) mask of the photo's sky, 1 = may move. See the module docstring."""
    ph, pw = photo.shape[:2]
    if is_night(photo):  # the strict prior can take a sliver of dark sky and stop at the first stars
        return resize_mask(night_sky(photo, work).astype(np.float32), (pw, ph))
    prior = sky_prior(photo)
    if prior.mean() >= MIN_PRIOR:
        mask = resize_mask(prior.astype(np.float32), (pw, ph))
        return mask * (1.0 - thin_dark(photo, mask))
    cut = cloudy_sky(photo, work)
    return resize_mask(cut.astype(np.float32), (pw, ph))


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
    touch the still part of the photo. Only for skies the strict prior found: in a
    cloudy sky a narrow gap of blue between white clouds looks the same, so ``sky_mask`` does not call it
    for the cloudy fallback."""
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


def cloudy_sky(photo: np.ndarray, work: int = 256) -> np.ndarray:
    """The fallback cut for skies with texture: binary uint8 at the working size (longer side ``work``).

    GrabCut decides by colour models and by where strong edges run: the top rows are sure sky, the bottom
    ``GROUND_ROWS`` sure still, thin high-contrast strokes (finer than any cloud edge at this size) still.
    Night skies (a very dark top) go to ``night_sky`` instead."""
    image, lab = working_image(photo, work)
    h, w = image.shape[:2]
    top = max(2, h // 12)
    grey = lab[..., 0]
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    fine = np.sqrt(gx * gx + gy * gy)
    # a stroke: much stronger than the top rows' edges and thin (it vanishes in a 5 px median)
    smooth = cv2.medianBlur(image, 5)
    residual = np.abs(image.astype(np.float32) - smooth.astype(np.float32)).max(axis=2)
    thin = (fine > max(8.0, 4.0 * float(np.percentile(fine[:top], 90)))) & (residual > 25)
    thin = cv2.dilate(thin.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    gc = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
    gc[int((1 - GROUND_ROWS) * h) :] = cv2.GC_BGD
    gc[h // 2 :][gc[h // 2 :] == cv2.GC_PR_FGD] = cv2.GC_PR_BGD  # the lower half starts as probable ground
    gc[thin] = cv2.GC_BGD
    gc[:top][~thin[:top]] = cv2.GC_FGD
    return grabcut_sky(image, gc)


__all__ = [
    "GROUND_ROWS",
    "MIN_PRIOR",
    "NIGHT_L",
    "cloudy_sky",
    "is_night",
    "night_sky",
    "sky_mask",
    "starless",
    "thin_dark",
]
