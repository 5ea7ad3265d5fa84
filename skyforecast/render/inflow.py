"""The sky a moving photo reads from beyond its own edges and in later cycles: what flows in across a side
is a translated copy of the sky (never a mirror image or a stretched edge), matched in colour to the edge it
crosses; a long video's later cycles read the photo's sky rolled sideways, made periodic so that its sides
join without a seam. ``render.steady`` samples these; no torch here."""

from __future__ import annotations

import cv2
import numpy as np

SEAM = 0.03  # share of the width (height) over which a continued copy is blended into the edge it continues
ROLL_FEATHER = 0.02  # share of the shorter side over which a rolled sky's edges fade into the fill
# the share of the width within which a rolled sky's sides join (``periodic``): a cloud the photo's side
# cuts off has a straight vertical edge, which a narrow join (3 %) carried across the frame as a line
ROLL_SEAM = 0.1
TREND_BLUR = 0.08  # share of the width: the blur that leaves the brightness trend (no cloud shapes)
PROFILE_LIMIT = 1.25  # a rolled sky's level is moved by at most this factor
# ... and brightened at most this share of the way to white: a copy from the darker side of a photo landing
# next to its brighter side (towards the sun) kept a band of darker blue at half the way (15 levels in
# clear sky across the join on examples/sky.jpg, 3 at three quarters)
TOWARDS_WHITE = 0.75


def brightness(source: np.ndarray, wrap: bool = False) -> np.ndarray:
    """(H, W, 3) float32: the sky's brightness and colour at a scale of ``TREND_BLUR`` of the width, with
    no cloud shapes. A photo's sides and corners are often darker (vignetting) or one side brighter (the
    sun's); a rolled sky is moved from this level where it came from to this level where it lands
    (``rolled``), so that a dark edge of the photo does not cross the frame as a stripe. ``wrap``: the right
    edge continues into the left one (a ``periodic`` sky), so the blur goes around."""
    h, w = source.shape[:2]
    sw, sh = max(8, w // 8), max(8, h // 8)  # a blur this wide costs little at an eighth of the size
    small = cv2.resize(source, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    sigma = max(1.0, TREND_BLUR * sw)
    pad = min(sw, int(3 * sigma) + 1) if wrap else 0
    small = np.concatenate([small[:, sw - pad :], small, small[:, :pad]], axis=1) if pad else small
    small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)[:, pad : pad + sw]
    return np.maximum(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 1.0)


def rolled(source: np.ndarray, shift: int, land: np.ndarray, came: np.ndarray, pad: int = 0) -> np.ndarray:
    """A frame's width of ``source`` (a ``periodic`` sky, repeated) rolled ``shift`` columns to the right,
    and ``pad`` more columns each side, moved from the periodic sky's ``brightness`` where it came from
    (``came``) to the photo's where it lands (``land``, its edge columns repeated over the pads) by
    ``relevel``. The pads continue the periodic sky itself: the sky that flows in across a side then has
    no seam (a copy of the frame's other side joined it with a mirrored strip, a vertical stripe that
    crossed the frame)."""
    cols = (np.arange(-pad, land.shape[1] + pad) - shift) % source.shape[1]
    if pad:
        land = cv2.copyMakeBorder(land, 0, 0, pad, pad, cv2.BORDER_REPLICATE)
    moved = relevel(source[:, cols].astype(np.float32), came[:, cols], land)
    return np.clip(moved + 0.5, 0, 255).astype(np.uint8)


def relevel(x: np.ndarray, came: np.ndarray, land: np.ndarray, limit: float = PROFILE_LIMIT) -> np.ndarray:
    """``x`` (float, 0..255) moved from the level ``came`` to the level ``land`` (both broadcast to it) by
    an offset, within a factor ``limit`` of ``came``: an offset keeps the clouds' contrast (a gain scaled it,
    and two overlaid phases looked flatter), and it fades out towards white when brightening and towards
    black when darkening, so a lit cloud is not clipped into a flat white shape. Where the limit stops a
    channel short, every channel goes the same share of its way, so the colour keeps its hue."""
    came = np.maximum(came, 1.0)
    offset = land - came
    high = np.minimum(came * limit, came + (255.0 - came) * TOWARDS_WHITE)
    allowed = np.clip(land, came / limit, high) - came
    # every channel goes the same share of its way (brightening: short of white, so nothing below white
    # reaches it): clipped one by one, a deep blue copy moved towards a pale edge came out teal
    share = np.divide(allowed, offset, out=np.ones_like(offset), where=np.abs(offset) > 1e-6)
    offset = offset * np.clip(share, 0.0, 1.0).min(axis=-1, keepdims=True)
    room = np.where(offset > 0, (255.0 - x) / np.maximum(255.0 - came, 1.0), x / came)
    return x + offset * np.clip(room, 0.0, 1.0)


def periodic_width(width: int) -> int:
    """The width of the ``periodic`` sky of a photo ``width`` pixels wide: a roll by it changes nothing."""
    return width - min(width // 4, max(2, int(round(ROLL_SEAM * width))))


def periodic(source: np.ndarray) -> np.ndarray:
    """A sky that continues from its right edge into its left one, as a rolled copy needs: ``source`` with
    its first ``ROLL_SEAM`` of the width joined to the columns after its right edge's (which are left out,
    so the result is that much narrower). The clouds join along a cut through the clear sky between them
    (``_cut_weights``): each side's clouds whole up to it, none overlaid or mirrored (a cross-fade laid two
    skies over each other and kept the straight edge of a cloud cut off by the photo's side; a mirrored
    dark cloud made a symmetric pillar). The brightness (a blur of ``TREND_BLUR`` of the width, no cloud
    shapes) goes from one side's to the other's across the whole join: cut with the clouds, a photo darker
    on one side showed the step as a vertical line."""
    h, w = source.shape[:2]
    src = source.astype(np.float32)
    sw, sh = max(8, w // 8), max(8, h // 8)  # a blur this wide costs little at an eighth of the size
    small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(1.0, TREND_BLUR * sw), borderType=cv2.BORDER_REFLECT)
    low = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    high = src - low
    keep = periodic_width(w)
    band = w - keep
    right, left = high[:, keep:], high[:, :band]  # the clouds beyond the join and the photo's own
    high[:, :band] = right + (left - right) * _cut_weights(right, left)
    ramp = ((np.arange(band, dtype=np.float32) + 0.5) / band)[None, :, None]
    low[:, :band] = low[:, keep:] * (1 - ramp) + low[:, :band] * ramp
    return np.clip(low[:, :keep] + high[:, :keep] + 0.5, 0, 255).astype(np.uint8)


CUT_FEATHER = 0.3  # share of the join's width over which the two skies blend either side of the cut


def _cut_weights(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W, 1) float32 weights of ``after`` where two skies of the same shape join (``before`` continues
    the sky on the left, ``after`` the one on the right): 0 left of a cut and 1 right of it, blended over
    ``CUT_FEATHER`` of the width. The cut runs from top to bottom where the two differ least (a
    minimum-error boundary cut, Efros and Freeman 2001), moving a pixel sideways per row at most: it
    passes between clouds, through the clear sky they share. A cross-fade over the whole join cut a cloud
    that the photo's side cuts off as a straight vertical edge, and laid the two skies over each other."""
    h, w = before.shape[:2]
    feather = max(2, int(round(CUT_FEATHER * w)))
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


def wrapped(source: np.ndarray, pad: int, vpad: int = 0, even: bool = False) -> np.ndarray:
    """``source`` continued ``pad`` pixels to the left and right by the sky at its other side, and ``vpad``
    rows above and below by its own top (bottom) rows shifted half a width sideways: translated copies, so
    clouds keep their shapes (a mirrored edge made a symmetric "butterfly" cloud, a stretched one streaks),
    and a shifted one does not line up with the clouds it continues. Each seam is softened: over ``SEAM``
    of the size next to an edge the copy fades in from the edge's own mirror image. ``even``: each copy's
    colour is scaled to the sky's next to the edge it continues (``_even``: a photo darker on one side let a
    pale stripe of the other side's sky flow in)."""
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
    if even:
        _even(out, source, pad)
    band = min(pad, max(2, int(round(SEAM * w))), w // 2)
    out[:, pad - band : pad] = _fade_from_mirror(out[:, pad - band : pad], source, True)
    out[:, pad + w : pad + w + band] = _fade_from_mirror(out[:, pad + w : pad + w + band], source, False)
    return out


EDGE_STRIP = 0.1  # share of the width whose colours the sky flowing in across a side is matched to
EDGE_LIMIT = 1.5  # ... by a factor within this (corners of a photo can be 30-40 % darker than its middle)


def _even(out: np.ndarray, source: np.ndarray, pad: int) -> None:
    """``wrapped``'s side copies (``out`` is ``source`` with ``pad`` columns of them each side) scaled in
    place, row by row and channel by channel, so that their colour next to the edge they continue matches
    the edge's: the median of a ``EDGE_STRIP`` strip each side of the join, within ``EDGE_LIMIT``. The
    ratios are a running median over a fifth of the height, then lightly blurred: a row whose strip holds a
    cloud on one side only gives an outlier, which a blur alone spread into the clear rows around it."""
    h, w = source.shape[:2]
    strip = max(2, int(round(EDGE_STRIP * w)))
    step = max(1, min(h, w) // 270)  # the statistics at about 270 rows: a 1080p photo's cost a quarter
    rows_small = max(1, h // step)

    def medians(part: np.ndarray) -> np.ndarray:  # per row and channel: one side may be redder
        small = cv2.resize(part, (max(1, part.shape[1] // step), rows_small), interpolation=cv2.INTER_AREA)
        return np.median(small.astype(np.float32), axis=1)

    for edge, copy, cols in (
        (source[:, w - strip :], source[:, :strip], slice(pad + w, None)),  # right side: the left's sky
        (source[:, :strip], source[:, w - strip :], slice(0, pad)),  # left side: the right's sky
    ):
        want, have = medians(edge), np.maximum(medians(copy), 1.0)
        ratio = _running_median(want / have, max(1, int(0.2 * rows_small)) | 1)
        ratio = cv2.GaussianBlur(ratio[:, None, :], (0, 0), sigmaX=0.1, sigmaY=max(1.0, 0.05 * rows_small))
        ratio = cv2.resize(ratio, (1, h), interpolation=cv2.INTER_LINEAR).reshape(h, 1, -1)
        have = cv2.resize(have[:, None, :], (1, h), interpolation=cv2.INTER_LINEAR)
        level = have.reshape(h, 1, -1)
        for r in range(0, h, 64):  # in strips of rows: a wide copy in float would hold several frames' worth
            rows = slice(r, r + 64)
            part = relevel(
                out[rows, cols].astype(np.float32), level[rows], level[rows] * ratio[rows], EDGE_LIMIT
            )
            out[rows, cols] = np.clip(part + 0.5, 0, 255).astype(np.uint8)


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    """The median of each row's ``window`` rows around it (``values``: (rows, channels)), the ends
    repeated."""
    half = window // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window, axis=0), axis=-1)


def _shifted(rows: np.ndarray, shift: int) -> np.ndarray:
    """``rows`` moved ``shift`` pixels sideways, wrapping around (the wrap's seam softened as ``wrapped``
    softens its sides)."""
    w = rows.shape[1]
    if shift <= 0 or w < 4:
        return rows.copy()
    return np.ascontiguousarray(wrapped(rows, shift)[:, w : 2 * w])


def sky_source(photo: np.ndarray, sky: np.ndarray, work: int = 160, feather: float = 0.0) -> np.ndarray:
    """The photo with everything outside ``sky`` painted over with sky colours, as the source to warp from:
    a stream line that starts under the still foreground (behind a mountain, a roof) then fetches a smooth
    continuation of the nearby sky instead of a smear of roof. The fill is a normalised convolution at a
    small size (shorter side ``work``) from sky pixels a little inside the mask (the mask's edge pixels can
    carry the foreground's colour), with kernels 4x wider than tall: sky colour changes little along a row
    (the same height above the horizon) and much from row to row, so the hole gets the colours of its own
    rows, not vertical streaks. The sky keeps the photo's pixels; with ``feather`` they fade into the fill
    over that share of the shorter side, inside the sky's edge."""
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
    if feather <= 0:
        return np.where(sky[..., None], photo, big)
    # the photo's sky fades into the fill over ``feather`` of the shorter side, inside the sky's edge
    reach = max(1.0, feather * min(ph, pw))
    inner = cv2.erode(sky.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, int(reach)))
    weight = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), reach)[..., None]
    return np.clip(photo * weight + big * (1.0 - weight) + 0.5, 0, 255).astype(np.uint8)
