"""Image-space post-processing: make a 128x128 MD-GAN prediction into a video at the photo's own resolution.

The model's pixels are too coarse to post, but its *motion* is usable: dense optical flow between the first
predicted frame and each later one is upsampled to the photo's size and used to warp the original photo, and
the prediction's slow brightness and colour change rides along as a low-frequency gain. A mask keeps the
foreground (houses, mountains, the timestamp burnt into a photo) exactly the photo's own pixels, so nothing
that should stand still can wobble.

Conventions: videos are (T, H, W, 3) uint8; flows are *backward* flows to frame 0 in pixels of the 128x128
(squashed) model square, ``frame_t(x) ~= frame_0(x + flow_t(x))``, so one ``cv2.remap`` per frame renders
them; masks are float32 in [0, 1], 1 = sky (may move), 0 = still. No torch here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image

from ..io.constants import MAX_SIDE, ArgumentError
from ..io.media import InputError, Photo, load_photo

# The largest frame written for ``--resolution native`` (4K UHD worth of pixels, all panels of ``--compare``
# together): bigger requests are scaled down, with a note. Frames are rendered and encoded one at a time, so
# the number of frames does not count: memory is bounded by this and by the encoder.
MAX_FRAME_PIXELS = 3840 * 2160
FLOW_METHODS = ("dis", "farneback")


# ---- output size ----------------------------------------------------------------------------------


def parse_resolution(text: str | None) -> str | int:
    """``model`` | ``native`` | a frame height such as ``1080``; raises ValueError with a clear message."""
    value = (text or "model").strip().lower()
    if value in ("model", "native"):
        return value
    if value.endswith("p"):
        value = value[:-1]
    try:
        height = int(value)
    except ValueError:
        raise ArgumentError(
            "resolution", f"must be model, native or a height like 1080, got {text!r}"
        ) from None
    if not 16 <= height <= 8192:
        raise ArgumentError("resolution", f"height must be 16..8192, got {height}")
    return height


def frame_size(
    photo_size: tuple[int, int], resolution: str | int, panels: int = 1
) -> tuple[tuple[int, int], str | None]:
    """(width, height) of one rendered panel for ``native`` or a height, and a note when it had to be capped.

    The cap keeps one written frame (``panels`` side by side) at most ``MAX_FRAME_PIXELS``: the encoder's
    memory and the renderer's per-frame buffers grow with it (about 300 MB of buffers and 0.8 GB of x264
    at 3000x2000); and at most ``MAX_SIDE`` pixels a side: x264 refuses frames over 16384 px wide, OpenCV's
    warping over 32767, and players and hardware decoders stop at 8192 or less (a 20000x500 panorama)."""
    w, h = photo_size
    if resolution == "native":
        tw, th = float(w), float(h)
    else:
        th = float(resolution)
        tw = th * w / h
    limit = MAX_FRAME_PIXELS / max(1, panels)
    by_pixels = (limit / (tw * th)) ** 0.5
    by_side = min(MAX_SIDE / (tw * panels), MAX_SIDE / th)
    if min(by_pixels, by_side) >= 1:
        return _even_size(tw, th), None
    scale = min(by_pixels, by_side)
    capped = (max(2, int(tw * scale) // 2 * 2), max(2, int(th * scale) // 2 * 2))  # floor: stay under
    what = f"{w}x{h} photo" + ("" if resolution == "native" else f" at {_even_size(tw, th)[1]}p")
    per = f"{' x ' + str(panels) + ' panels' if panels > 1 else ''}"
    if by_side < by_pixels:
        why = f"at most {MAX_SIDE} px a side{per}, the most encoders and players take"
        if th * scale < 2:
            why += "; frames are at least 2 px high, so its aspect ratio is not kept"
    else:
        why = f"limit {limit / 1e6:.1f} MP per frame{per}, to bound memory"
    return capped, f"{what} rendered at {capped[0]}x{capped[1]} ({why})"


def _even_size(w: float, h: float) -> tuple[int, int]:
    """H.264 yuv420p needs even sides."""
    return max(2, int(round(w / 2)) * 2), max(2, int(round(h / 2)) * 2)


def load_photo_at(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Decode a photo for rendering at ``size`` = (width, height): JPEGs are decoded at a reduced scale when
    that is still large enough, so a 100 MP photo never sits in memory at full size."""
    return photo_at(load_photo(path, min_side=min(size)).image, size)


def photo_at(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An RGB image as an (H, W, 3) uint8 array at ``size`` = (width, height)."""
    if image.size != tuple(size):
        image = image.resize(tuple(size), Image.LANCZOS, reducing_gap=3.0)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


# ---- flow ------------------------------------------------------------------------------------------


def _flow_engine(method: str):
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

        def calc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return dis.calc(a, b, None)

        return calc
    if method == "farneback":

        def calc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)

        return calc
    raise ValueError(f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")


def _grid(h: int, w: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


def _warp(image: np.ndarray, flow: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return cv2.remap(image, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def estimate_flows(
    video: np.ndarray, method: str = "dis", key_every: int = 32, smooth: float = 1.5
) -> np.ndarray:
    """Backward flow from every frame to frame 0: (T, H, W, 2) float32, ``flows[0] == 0``.

    Frames are matched directly against frame 0 (no drift) for the first ``key_every`` frames; a longer
    chained video switches to a later key frame every ``key_every`` frames and composes the flows, because
    clouds that far apart no longer look alike. ``smooth`` (a Gaussian sigma in model pixels) removes the
    speckle that flow on a blurry GAN video has, which would otherwise shimmer when magnified to the photo's
    size."""
    t, h, w, _ = video.shape
    calc = _flow_engine(method)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video]
    grid = _grid(h, w)
    flows = np.zeros((t, h, w, 2), np.float32)
    key, key_flow = 0, flows[0]
    for i in range(1, t):
        if i - key >= key_every:
            key, key_flow = i - 1, flows[i - 1]
        g = calc(grey[i], grey[key])
        if smooth > 0:
            g = cv2.GaussianBlur(g, (0, 0), smooth)
        flows[i] = g if key == 0 else g + _warp(key_flow, g, grid)
    return flows


def frame_gain(
    first: np.ndarray,
    frame: np.ndarray,
    flow: np.ndarray,
    grid: np.ndarray,
    sigma: float = 6.0,
    limits=(0.5, 2.0),
) -> np.ndarray:
    """Per-pixel colour gain (H, W, 3) float32 of one frame that motion does not explain: the low-passed
    frame divided by the low-passed, flow-warped first frame (passed as float32). This carries sunsets,
    passing shade and the light's colour over to the full-resolution video without the model's blur."""
    eps = 8.0  # keeps the ratio tame in near-black regions
    moved = cv2.GaussianBlur(_warp(first, flow, grid), (0, 0), sigma)
    now = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), sigma)
    return np.clip((now + eps) / (moved + eps), *limits)


# ---- masks -----------------------------------------------------------------------------------------


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
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(image, gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
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


# ---- motion transfer -------------------------------------------------------------------------------


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


class MotionTransfer:
    """``photo`` (H, W, 3) uint8 animated at its own size with the motion of ``video`` (T, h, w, 3) uint8, one
    frame at a time: ``render[i]`` is frame ``i`` (a new array), ``len(render)`` the frame count.

    ``alpha`` (H, W) in [0, 1] (see ``soft_alpha``) confines motion and gain to the sky: flows are faded out
    towards the mask edge (nothing is dragged across the horizon) and outside it every frame is the photo.
    Frame 0 is the photo itself.

    Memory: flows and gains stay at the model's size until a frame is asked for; the upsampled flow and gain
    (20 bytes per pixel) go into two buffers allocated once, and the warp, gain and blend run in strips of
    rows. A video of any length costs about 24 bytes per pixel of the photo plus the frame being written,
    never all its frames. Not thread-safe: one instance per thread."""

    STRIP = 128  # rows per strip: small buffers, still enough rows for OpenCV's threads

    def __init__(
        self,
        photo: np.ndarray,
        video: np.ndarray,
        alpha: np.ndarray | None = None,
        method: str = "dis",
        flows: np.ndarray | None = None,
    ):
        t, mh, mw, _ = video.shape
        ph, pw, _ = photo.shape
        self.video, self.photo = video, photo
        self.flows = estimate_flows(video, method=method) if flows is None else flows
        self._small = (
            None if alpha is None else cv2.resize(alpha, (mw, mh), interpolation=cv2.INTER_AREA)[..., None]
        )
        self._scale = np.array([pw / mw, ph / mh], np.float32)
        self._first = video[0].astype(np.float32)
        self._model_grid = _grid(mh, mw)
        self.source = photo if alpha is None else sky_only(photo, alpha > 0)
        # only the box that may move is computed; the rest of every frame is the photo
        self.box = (0, ph, 0, pw) if alpha is None else bounding_box(alpha > 0)
        self._alpha = alpha
        self._flow = self._gain = None

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, i: int) -> np.ndarray:
        t = len(self.video)
        if not -t <= i < t:
            raise IndexError(f"frame {i} of {t}")
        i %= t
        y0, y1, x0, x1 = self.box
        ph, pw, _ = self.photo.shape
        if i == 0 or y1 <= y0:
            return self.photo.copy()
        if self._flow is None:
            self._flow = np.empty((ph, pw, 2), np.float32)
            self._gain = np.empty((ph, pw, 3), np.float32)
        flow_small = self.flows[i]
        gain_small = frame_gain(self._first, self.video[i], flow_small, self._model_grid)
        if self._small is not None:
            flow_small = flow_small * self._small
            gain_small = 1.0 + (gain_small - 1.0) * self._small
        flow_small = flow_small * self._scale  # to photo pixels, at model size
        flow = cv2.resize(flow_small, (pw, ph), dst=self._flow, interpolation=cv2.INTER_LINEAR)
        gain = cv2.resize(gain_small, (pw, ph), dst=self._gain, interpolation=cv2.INTER_LINEAR)
        out = self.photo.copy()
        xs = np.arange(x0, x1, dtype=np.float32)
        for r0 in range(y0, y1, self.STRIP):
            r1 = min(y1, r0 + self.STRIP)
            where = flow[r0:r1, x0:x1]  # backward flow -> absolute source positions, in place
            where[..., 0] += xs
            where[..., 1] += np.arange(r0, r1, dtype=np.float32)[:, None]
            m1, m2 = cv2.convertMaps(where, None, cv2.CV_16SC2)
            warped = cv2.remap(self.source, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            warped = cv2.multiply(warped, gain[r0:r1, x0:x1], dtype=cv2.CV_8U)
            if self._alpha is not None:
                a = self._alpha[r0:r1, x0:x1]
                warped = cv2.blendLinear(warped, self.photo[r0:r1, x0:x1], a, 1.0 - a)
            out[r0:r1, x0:x1] = warped
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]


def transfer(
    photo: np.ndarray,
    video: np.ndarray,
    alpha: np.ndarray | None = None,
    method: str = "dis",
    flows: np.ndarray | None = None,
) -> np.ndarray:
    """All frames of ``MotionTransfer(photo, video, alpha, method, flows)`` as one (T, H, W, 3) uint8 array.
    Holds the whole video: for big frames iterate ``MotionTransfer`` and write each frame as it comes."""
    return np.stack(list(MotionTransfer(photo, video, alpha, method, flows)))
