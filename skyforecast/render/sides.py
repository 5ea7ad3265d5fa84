"""The sky beyond a photo's sides, as whole blocks of its own sky, and joins without a mirror image.

When the sky drifts sideways, what flows in across a side must be invented. The other side's sky (the
frame wrapped around) starts with the photo's own edge, which cuts its clouds off straight, and its join
with the side it continues was faded in from that side's mirror image: a smear of horizontal streaks at
1080p (examples/sky.jpg's right side, coast.png's left). Here each band of rows takes one block of the
photo's sky (``matched_block``): the one whose sky just before it (towards the side) best continues the sky
at the side, in fine detail and colour, and whose first column best follows the side's last. Blocks come
from the half of the photo away from the side (the sky that has left the frame or is far from where it
comes in: a cloud shown twice would be seen twice), and bands overlap and are joined along the rows where
they differ least (``quilt.cut_weights``).

What difference is left at the join is spread into the new sky by a harmonic correction
(``harmonic_join``): the step along the side, blurred the more the farther from the side (as a membrane
fixed at the side would spread it), faded out over ``JOIN_FADE`` of the width. A narrow fade drew a
straight vertical line; a row-by-row fade over a wide band drew horizontal streaks; the harmonic one keeps
only the broad part of the step away from the side. The search runs at a small size; the blocks are
copied at full size. No torch here."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .quilt import OFFSET_LIMIT, cut_weights

SEARCH_ROWS = 100  # the blocks are chosen on the photo scaled to about this height
BAND = 0.15  # share of the height: one block per band of rows
BAND_OVERLAP = 0.35  # share of a band that overlaps the next one, where they are cut apart
CONTEXT = 0.05  # share of the width: the sky before a block compared with the sky at the side
FROM_HALF = 0.5  # blocks start at most this share of the width from the far side
VALID = 0.999  # share of a block (and its context) that must be the photo's sky: all (a wisp came along)
FIRST_COLUMN = 3.0  # weight of the block's first column against the side's last one
COLOUR = 0.3  # weight of colour against fine detail in the context's comparison
LEVEL = 1.0  # weight of the block's mean colour against that of the sky next to the side (``EDGE``)
EDGE = 0.1  # share of the width: the strip next to the side whose mean colour a block should have
AGREE = 0.3  # weight of agreement with the band above, where the two overlap
ROW_REACH = 0.1  # share of the height: a block comes from rows at most this far from where it lands
JOIN_FADE = 0.1  # share of the width (height) over which the harmonic correction fades out


def matched_blocks(
    source: np.ndarray, pad: int, sky: np.ndarray | None = None, sides: tuple[bool, bool] = (True, True)
) -> dict[bool, np.ndarray | None]:
    """{left: block} for the ``sides`` (left, right) asked for (``matched_block``; None for the others),
    the search's small images made once."""
    h, w = source.shape[:2]
    if not any(sides):
        return {True: None, False: None}
    sky = np.ones((h, w), bool) if sky is None else np.asarray(sky, bool)
    scale = min(1.0, SEARCH_ROWS / h)
    size = (round(w * scale), round(h * scale))
    if min(size) < 8:  # too narrow (or low) to search: the other side's copy
        return {True: None, False: None}
    small = _shrink(source, size).astype(np.float32)
    inside = _shrink(sky.view(np.uint8) * np.uint8(255), size) / 255.0
    return {
        left: matched_block(source, pad, left, (small, inside)) if needed else None
        for left, needed in zip((True, False), sides, strict=True)
    }


def matched_block(
    source: np.ndarray, pad: int, left: bool, search: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    """(H, pad + 1, 3) uint8: sky for the ``pad`` columns beyond ``source``'s left (``left``) or right side,
    as blocks of its own sky, with the column that comes before them in the photo on the side's end (last
    for the left side, first for the right): ``harmonic_join`` measures the step against it. ``search``:
    ``source`` at about ``SEARCH_ROWS`` rows (float32) and its share of sky there (where blocks may come
    from). Rows whose side is not sky keep the nearest band's block. None when no band finds a block (a
    photo too narrow for its pad, or without sky at its side)."""
    h, w = source.shape[:2]
    small, inside = search
    scale = small.shape[0] / h
    if left:  # the left side is the right side of the photo flipped
        small, inside = np.ascontiguousarray(small[:, ::-1]), np.ascontiguousarray(inside[:, ::-1])
    chosen = _choose(small, inside, pad, scale)
    if chosen is None:
        return None
    need = int(np.ceil(pad * scale)) + 1
    out = np.empty((h, pad + 1, 3), np.uint8)
    done, above = 0, None  # rows laid so far; the band above at the small size
    for i, (r0, r1, start, dy) in enumerate(chosen):
        # the first band reaches up to the top, the last down to the bottom, each band up to the last
        top = min(done, round(r0 / scale))
        bottom = h if i == len(chosen) - 1 else max(done + 1, min(h, round(r1 / scale)))
        # the block is the sky t columns in from the far side; ``_choose`` keeps it inside the photo
        t = int(round((small.shape[1] - start) / scale))
        first = t - pad if left else w - t - 1
        down = int(round(dy / scale))
        if 0 <= top + down and bottom + down <= h:
            block = source[top + down : bottom + down, first : first + pad + 1]
        else:
            block = source[np.clip(np.arange(top, bottom) + down, 0, h - 1), first : first + pad + 1]
        mine = small[np.clip(np.arange(small.shape[0]) + dy, 0, small.shape[0] - 1), start : start + need]
        if top < done:  # the band above overlaps: cut between them where they differ least, at the
            # search's size (its rows there), the seam enlarged
            over = slice(int(top * scale), max(int(top * scale) + 2, int(np.ceil(done * scale))))
            weight = cut_weights(above[over].swapaxes(0, 1), mine[over].swapaxes(0, 1)).swapaxes(0, 1)[..., 0]
            weight = cv2.resize(weight[:, ::-1] if left else weight, (pad + 1, done - top))[..., None]
            laid, block = out[top:done].astype(np.float32), block.astype(np.float32)
            # moved to the level of the sky it overlaps: in a clear sky, two blocks a few levels apart
            # showed their seam as a curved edge (a median: where they differ in clouds, not in level,
            # a mean moved the whole block)
            every = (slice(None, None, 4), slice(None, None, 4))
            offset = np.median((laid[every] - block[: done - top][every]).reshape(-1, 3), axis=0)
            block += np.clip(offset, -OFFSET_LIMIT, OFFSET_LIMIT)
            laid += (block[: done - top] - laid) * weight
            out[top:done] = np.clip(laid + 0.5, 0, 255).astype(np.uint8)
            block = np.clip(block + 0.5, 0, 255).astype(np.uint8)
        out[done:bottom] = block[done - top :]
        done, above = bottom, mine
    return out


@dataclass
class _Search:
    """What the search for one side's blocks reads, at its small size (the side continued is the right)."""

    small: np.ndarray  # the photo, float32
    detail: np.ndarray  # its fine detail
    sky: np.ndarray  # the integral image of its share of sky
    colour: np.ndarray  # the integral image of ``small``
    allowed: np.ndarray  # by start column: where a block may start
    context: int  # columns before a block compared with those at the side
    need: int  # a block's width
    width: int  # the columns the candidates span: the images searched are cut to them


def _choose(
    small: np.ndarray, inside: np.ndarray, pad: int, scale: float
) -> list[tuple[int, int, int, int]] | None:
    """[(first row, end row, block start column, rows down)] at the small size, for the right side of
    ``small``: per band of rows, the block that best continues the side, taken from rows up to
    ``ROW_REACH`` higher or lower; None if no band finds one."""
    sh, sw = inside.shape
    context = max(3, round(CONTEXT * sw))
    need = int(np.ceil(pad * scale)) + 1  # the block's width at this size
    starts = np.arange(context + 1, sw - need + 1)
    allowed = np.zeros(sw + 1, bool)  # by start column: inside the photo, in its far half, far enough in
    allowed[starts] = (np.rint((sw - starts) / scale) >= pad + 1) & (starts <= FROM_HALF * sw)
    if not allowed.any():
        return None
    search = _Search(
        small=small,
        detail=small - cv2.GaussianBlur(small, (0, 0), 1.5),
        sky=cv2.integral(inside.astype(np.float32)),
        colour=cv2.integral(small),
        allowed=allowed,
        context=context,
        need=need,
        width=int(np.flatnonzero(allowed).max()) + need,
    )
    side = inside[:, sw - context :].mean(axis=1) > 0.5
    band = max(6, round(BAND * sh))
    over = max(2, round(BAND_OVERLAP * band))
    reach = max(1, round(ROW_REACH * sh))
    chosen: list[tuple[int, int, int, int]] = []
    r0 = 0
    while r0 < sh:
        r1 = min(sh, r0 + band)
        if side[r0:r1].mean() > 0.5:
            laid = None if not chosen else (chosen[-1], np.arange(r0, min(r1, r0 + over)))
            best = _best(search, (r0, r1), (-min(reach, r0), min(reach, sh - r1)), laid)
            if best is not None:
                chosen.append((r0, r1, *best))
        if r1 >= sh:
            break
        r0 = r1 - over
    return chosen or None


def _rms(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Root mean squared difference per pixel of ``template`` at every place in ``image``."""
    ssd = cv2.matchTemplate(np.ascontiguousarray(image), np.ascontiguousarray(template), cv2.TM_SQDIFF)
    return np.sqrt(np.maximum(ssd, 0.0) / template[..., 0].size)


def _best(
    s: _Search, band: tuple[int, int], dys: tuple[int, int], laid: tuple | None
) -> tuple[int, int] | None:
    """(start column, rows down) of the block for the ``band`` of rows (see ``_choose``), or None; ``laid``:
    the band above's choice and the rows the two share. Every candidate is scored at once."""
    (r0, r1), (up, down) = band, dys
    sw, cw, context, need = s.small.shape[1], s.width, s.context, s.need
    lo, hi = r0 + up, r1 + down  # the rows the candidates may come from
    # (rows down, start column): the context's terms are found at its own start, start - context
    error = np.full((down - up + 1, cw + 1), np.inf, np.float32)
    span = cw - context + 1
    error[:, context : context + span] = _rms(s.detail[lo:hi, :cw], s.detail[r0:r1, sw - context :])
    error[:, context : context + span] += COLOUR * _rms(s.small[lo:hi, :cw], s.small[r0:r1, sw - context :])
    error[:, 1 : cw + 1] += FIRST_COLUMN * _rms(s.small[lo:hi, :cw], s.small[r0:r1, sw - 1 :])
    if laid is not None and len(laid[1]):  # agree with the band above where the two overlap
        (_, _, start, dy), rows = laid
        o0, o1 = rows[0] + up, rows[-1] + 1 + down
        if 0 <= o0 and o1 <= s.small.shape[0]:
            theirs = s.small[rows + dy, start : start + need]
            error[:, : cw - need + 1] += AGREE * _rms(s.small[o0:o1, :cw], theirs)
    ys = np.arange(up, down + 1)[:, None]
    xs = np.flatnonzero(s.allowed[: cw + 1])[None, :]  # only where a block may start
    y0, y1 = r0 + ys, r1 + ys
    # all of the block and of its context must be sky
    ok = (_box(s.sky, y0, y1, xs, xs + need) >= VALID) & (_box(s.sky, y0, y1, xs - context, xs) >= VALID)
    if not ok.any():
        return None
    # the block's mean colour against the side's: a sunset's deep blue, moved towards its pale side within
    # the colour match's limits, came out teal
    edge = s.small[r0:r1, sw - max(2, round(EDGE * sw)) :].reshape(-1, 3).mean(axis=0)
    level = np.sqrt(((_box(s.colour, y0, y1, xs, xs + need) - edge) ** 2).sum(axis=-1))
    total = np.where(ok, error[:, xs[0]] + LEVEL * level, np.inf)
    y, x = np.unravel_index(int(np.argmin(total)), total.shape)
    return int(xs[0, x]), int(ys[y, 0])


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` made ``size`` (w, h): blurred and halved (``cv2.pyrDown``) while it is over four times as
    large, then averaged by area (an area resize of a 1080p photo straight to a tenth took 8 ms, its
    halvings a fraction of that)."""
    while image.shape[1] >= 4 * size[0] and image.shape[0] >= 4 * size[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _box(total: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    """The mean of the image whose ``cv2.integral`` is ``total`` over the boxes [y0, y1) x [x0, x1)."""
    area = np.maximum((y1 - y0) * (x1 - x0), 1)
    value = total[y1, x1] - total[y0, x1] - total[y1, x0] + total[y0, x0]
    return value / (area[..., None] if value.ndim > np.ndim(area) else area)


def harmonic_join(
    side: np.ndarray, step: np.ndarray, towards_edge: bool, fade: int, edge: np.ndarray | None = None
) -> None:
    """``side`` (uint8 (H, n, 3), in place: the sky beyond an edge along axis 1) plus ``step`` (H, 3: what
    the edge's pixels are minus what the sky beyond would have next to them) spread away from the edge: at
    distance x the step blurred along the edge by a Gaussian of about x (as a membrane fixed at the edge
    smooths it), faded out over ``fade`` columns. ``towards_edge``: ``side``'s last column touches the
    edge, else its first. ``edge`` (H, 3, the edge's pixels): each pixel is moved no farther than its row's
    edge colour, never past it; a step between a white cloud and blue sky, spread over rows that held
    something else, made navy and cream blots (a top pad's few rows, where the step has no room to fade)."""
    h, width = side.shape[:2]
    n = min(width, max(1, fade))
    step = step.astype(np.float32).reshape(h, 1, -1)
    sigmas = [0.0]
    while sigmas[-1] < 0.8 * n:
        sigmas.append(max(0.5, 2 * sigmas[-1]))
    # (H, C, levels): the step at each blur; each column mixes the two levels around its own blur, faded
    # out (one small matrix product for all columns)
    stack = np.stack([step[:, 0]] + [_blur_along(step, s) for s in sigmas[1:]], axis=2)
    x = np.arange(1, n + 1, dtype=np.float32)
    level = np.interp(0.8 * x, sigmas, np.arange(len(sigmas), dtype=np.float32))
    z = np.clip(1 - x / n, 0, 1)
    z = z * z * (3 - 2 * z)
    low = np.minimum(level.astype(np.int64), len(sigmas) - 1)
    high = np.minimum(low + 1, len(sigmas) - 1)
    mix = np.zeros((len(sigmas), n), np.float32)
    np.add.at(mix, (low, np.arange(n)), (1 - (level - low)) * z)
    np.add.at(mix, (high, np.arange(n)), (level - low) * z)
    if towards_edge:  # the columns counted from the edge backwards
        mix = mix[:, ::-1]
    correction = np.ascontiguousarray((stack @ mix).transpose(0, 2, 1))  # (H, n, C)
    part = side[:, width - n :] if towards_edge else side[:, :n]
    if edge is None:
        part[...] = cv2.add(part, correction, dtype=cv2.CV_8U)  # rounded, within 0..255
        return
    own = part.astype(np.float32)
    bound = edge.astype(np.float32).reshape(h, 1, -1)
    moved = np.clip(own + correction, np.minimum(own, bound), np.maximum(own, bound))
    part[...] = np.clip(moved + 0.5, 0, 255).astype(np.uint8)


def _blur_along(step: np.ndarray, sigma: float) -> np.ndarray:
    """(H, C): ``step`` (H, 1, C) blurred along its rows by a Gaussian of ``sigma``; wide blurs at a reduced
    size (a kernel hundreds of rows long over a 1080-row edge took most of a join's time)."""
    h = step.shape[0]
    factor = max(1.0, sigma / 4)
    if factor <= 1 or h < 16:
        return cv2.GaussianBlur(step, (0, 0), sigmaX=0.1, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)[:, 0]
    rows = max(4, int(round(h / factor)))
    small = cv2.resize(step, (1, rows), interpolation=cv2.INTER_AREA).reshape(rows, 1, -1)
    small = cv2.GaussianBlur(
        small, (0, 0), sigmaX=0.1, sigmaY=sigma * rows / h, borderType=cv2.BORDER_REFLECT
    )
    return cv2.resize(small.reshape(rows, 1, -1), (1, h), interpolation=cv2.INTER_LINEAR).reshape(h, -1)
