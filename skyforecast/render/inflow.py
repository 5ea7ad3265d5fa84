"""The sky a moving photo reads from beyond its own edges and in later cycles: what flows in across a side
is blocks of the photo's own sky that continue it (``render.sides``; never a mirror image or a stretched
edge), matched in colour to the edge it crosses, or, where the photo's two sides are different skies, sky
quilted from patches of the photo's own (``render.quilt``); a long video's later cycles read the photo's
sky rolled sideways, made periodic so that its sides join without a seam. ``render.steady`` samples these;
no torch here."""

from __future__ import annotations

import cv2
import numpy as np

from .levels import PROFILE_LIMIT, level_offset, moved_by, relevel
from .quilt import cut_weights, side_sky
from .sides import JOIN_FADE, harmonic_join, matched_blocks

ROLL_FEATHER = 0.02  # share of the shorter side over which a rolled sky's edges fade into the fill
# the share of the width within which a rolled sky's sides join (``periodic``): a cloud the photo's side
# cuts off has a straight vertical edge, which a narrow join (3 %) carried across the frame as a line
ROLL_SEAM = 0.1
TREND_BLUR = 0.08  # share of the width: the blur that leaves the brightness trend (no cloud shapes)
# a long video's rolled trend goes this far from the level it has with its clouds (``rolled``): far enough
# for a deep blue patch of a sunset's sky to meet the pale sky around the sun
TREND_LIMIT = 4.0


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


def rolled(
    source: np.ndarray,
    shift: float,
    width: int,
    pad: int = 0,
    levels: tuple[np.ndarray, np.ndarray] | None = None,
    trend: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``width`` columns of ``source`` (a ``periodic`` sky, repeated) rolled ``shift`` columns to the right,
    and ``pad`` more columns each side. The pads continue the periodic sky itself: the sky that flows in
    across a side then has no seam (a copy of the frame's other side joined it with a mirrored strip, a
    vertical stripe that crossed the frame). ``levels``: (land, came), the photo's ``brightness`` and the
    periodic sky's; the rolled sky is then moved from the level where it came from to the photo's where
    it lands (``relevel``; the edge columns of ``land`` repeated over the pads).

    ``trend``: (the periodic sky's brightness trend, from ``periodic(split=True)``; per row, how much
    farther than the clouds it rolls): the rolled sky is moved from its own trend to the trend rolled that
    much farther. The trend then goes with the clouds of its own row, which the field moves faster higher
    up; clouds rolled row by row would shear a little more every cycle."""
    cols = np.arange(-pad, width + pad)
    at = (cols - int(round(shift))) % source.shape[1]
    if levels is None and trend is None:
        return source[:, at]
    if trend is not None:  # the levels' offset at an eighth of the size, enlarged
        low, farther = trend
        h, wo = source.shape[0], len(cols)
        sh, sw = max(2, -(-h // 8)), max(2, -(-wo // 8))
        ys = np.clip(np.rint((np.arange(sh) + 0.5) * h / sh - 0.5).astype(np.int64), 0, h - 1)
        xs = np.rint((np.arange(sw) + 0.5) * wo / sw - 0.5).astype(np.int64)
        small = at[xs][None, :]  # the periodic sky's columns at the small grid's points
        came = np.maximum(low[ys[:, None], small], 1.0)
        land = low[ys[:, None], (small - np.rint(farther[ys]).astype(np.int64)[:, None]) % low.shape[1]]
        offset = cv2.resize(level_offset(came, land, TREND_LIMIT), (wo, h), interpolation=cv2.INTER_LINEAR)
        came = cv2.resize(came, (wo, h), interpolation=cv2.INTER_LINEAR)
        moved = moved_by(source[:, at].astype(np.float32), offset, came)
        return np.clip(moved + 0.5, 0, 255).astype(np.uint8)
    land, came = levels
    if pad:
        land = cv2.copyMakeBorder(land, 0, 0, pad, pad, cv2.BORDER_REPLICATE)
    moved = relevel(source[:, at].astype(np.float32), came[:, at], land, PROFILE_LIMIT)
    return np.clip(moved + 0.5, 0, 255).astype(np.uint8)


def periodic_width(width: int) -> int:
    """The width of the ``periodic`` sky of a photo ``width`` pixels wide: a roll by it changes nothing."""
    return width - min(width // 4, max(2, int(round(ROLL_SEAM * width))))


def periodic(source: np.ndarray, split: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A sky that continues from its right edge into its left one, as a rolled copy needs: ``source`` with
    its first ``ROLL_SEAM`` of the width joined to the columns after its right edge's (which are left out,
    so the result is that much narrower). The clouds join along a cut through the clear sky between them
    (``quilt.cut_weights``): each side's clouds whole up to it, none overlaid or mirrored (a cross-fade laid
    two skies over each other and kept the straight edge of a cloud cut off by the photo's side; a
    mirrored dark cloud made a symmetric pillar). The brightness (a blur of ``TREND_BLUR`` of the width,
    no cloud shapes) goes from one side's to the other's across the whole join: cut with the clouds, a
    photo darker on one side showed the step as a vertical line. ``split``: (the periodic sky, its
    brightness trend as float32), for ``rolled`` to roll the trend apart from the clouds."""
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
    high[:, :band] = right + (left - right) * cut_weights(right, left)
    ramp = ((np.arange(band, dtype=np.float32) + 0.5) / band)[None, :, None]
    low[:, :band] = low[:, keep:] * (1 - ramp) + low[:, :band] * ramp
    sky = np.clip(low[:, :keep] + high[:, :keep] + 0.5, 0, 255).astype(np.uint8)
    return (sky, np.maximum(low[:, :keep], 1.0)) if split else sky


def wrapped(
    source: np.ndarray,
    pad: int,
    vpad: int = 0,
    even: bool = False,
    sky: np.ndarray | None = None,
    sides: tuple[bool, bool] = (True, True),
) -> np.ndarray:
    """``source`` continued ``pad`` pixels to the left and right by the sky at its other side, and ``vpad``
    rows above and below by its own top (bottom) rows shifted half a width sideways: translated copies, so
    clouds keep their shapes (a mirrored edge made a symmetric "butterfly" cloud, a stretched one streaks),
    and a shifted one does not line up with the clouds it continues. Each join is smoothed by the step
    across it spread into the new sky (``sides.harmonic_join``). ``even``: the sides instead continue the
    edge with blocks of the photo's sky matched to its colours, or are quilted where the two sides are
    different skies (``_continue_side``); ``sky`` (the photo's sky mask) says where those may come from, and
    ``sides`` (left, right) which sides the sky flows in across (the others keep the other side's copy,
    scaled to the edge's colours)."""
    h, w = source.shape[:2]
    if vpad > 0:
        vpad = min(vpad, h)
        fade = max(1, int(round(JOIN_FADE * h)))
        # rows as columns: the join works along axis 1; each pad is joined at the row that follows it in
        # its own shifted copy (the photo's next row, shifted as far), shifted by about half a width, as
        # far as the step across the join is least
        shift = _join_shift(source[0], source[min(vpad, h - 1)])
        top = _shifted(source[:vpad], shift)
        after = np.roll(source[min(vpad, h - 1)], shift, axis=0).astype(np.float32)
        harmonic_join(top.swapaxes(0, 1), source[0] - after, True, fade, edge=source[0])
        shift = _join_shift(source[h - 1], source[max(0, h - vpad - 1)])
        bottom = _shifted(source[h - vpad :], shift)
        before = np.roll(source[max(0, h - vpad - 1)], shift, axis=0).astype(np.float32)
        harmonic_join(bottom.swapaxes(0, 1), source[h - 1] - before, False, fade, edge=source[h - 1])
        source = np.concatenate([top, source, bottom])
    if pad <= 0:
        return source
    out = cv2.copyMakeBorder(source, 0, 0, pad, pad, cv2.BORDER_WRAP)
    if not even:
        for left in (True, False):
            _join_copy(out, source, pad, left)
        return out
    if sky is not None and vpad > 0:
        sky = cv2.copyMakeBorder(sky.astype(np.uint8), vpad, vpad, 0, 0, cv2.BORDER_REPLICATE) > 0
    blocks = matched_blocks(source, pad, sky, sides)
    for left in (True, False):  # a side no sky flows in across keeps the other side's copy, scaled: its
        # light still reaches the frame's edge (the sky's light is a wide blur of the wrapped sky)
        _continue_side(out, source, pad, left, sky, blocks[left])
    return out


EDGE_STRIP = 0.1  # share of the width whose colours the sky flowing in across a side is matched to
EDGE_LIMIT = 1.5  # ... by a factor within this (corners of a photo can be 30-40 % darker than its middle)
# a side whose other side's sky, moved within EDGE_LIMIT, misses the edge's colour by more than MISS levels
# in over QUILT_ROWS of the edge's sky rows is quilted instead; blocks chosen for their colour
# (``sides.matched_block``) in over BLOCK_ROWS: those say the far half has no sky of that colour (a sunset's
# deep blue top right: 0.21 of its rows; 0.00 on photos whose sides are one sky)
MISS = 20.0
QUILT_ROWS = 1 / 3
BLOCK_ROWS = 0.1
SKY_MARGIN = 0.05  # share of the height quilted beyond the rows the sky spans


def _continue_side(
    out: np.ndarray,
    source: np.ndarray,
    pad: int,
    left: bool,
    sky: np.ndarray | None,
    block: np.ndarray | None,
) -> None:
    """``out``'s pad on one side (``out`` is ``source`` wrapped ``pad`` columns each side) made into the
    sky that flows in across that side: ``block``, blocks of the photo's sky that continue the edge
    (``sides.matched_block``; None: the other side's sky), scaled row by row to the edge's colours
    (``_level``) and joined to it by ``sides.harmonic_join``: whole clouds, in coherent shapes. Where the
    blocks are a different sky (a sunset's deep blue side and its pale glow: they need more than
    ``EDGE_LIMIT`` in over ``BLOCK_ROWS`` of the rows, the other side's copy in over ``QUILT_ROWS``; scaled
    further, grey clouds turned pink), the pad is quilted from patches of the photo's sky that have the
    edge's colours (``quilt.side_sky``)."""
    h, w = source.shape[:2]
    strip = max(2, int(round(EDGE_STRIP * w)))
    cols = slice(0, pad) if left else slice(pad + w, None)
    edge = source[:, :strip] if left else source[:, w - strip :]
    limit = BLOCK_ROWS if block is not None else QUILT_ROWS
    if block is None:  # the other side's sky, as the pad has it, its end column as the one before it
        copy = out[:, cols]
        block = np.concatenate([copy, copy[:, -1:]] if left else [copy[:, :1], copy], axis=1)
    body = block[:, :-1] if left else block[:, 1:]
    step = max(1, min(h, w) // 270)  # the statistics at about 270 rows: a 1080p photo's cost a quarter
    ratio, level = _level(edge, body[:, pad - min(pad, strip) :] if left else body[:, :strip], step)
    # the rows where the edge is sky decide (without a sky mask the whole photo moves, ground and all)
    rows = None if sky is None else (sky[:, :strip] if left else sky[:, w - strip :]).mean(axis=1) > 0.5
    # rows whose blocks, moved as far as ``EDGE_LIMIT`` lets them, still miss the edge's colour by MISS levels
    miss = level * np.abs(ratio - np.clip(ratio, 1 / EDGE_LIMIT, EDGE_LIMIT))
    far = miss[:, 0].max(axis=1) > MISS
    quilt = None
    if rows is not None and rows.any() and far[rows].mean() > limit:
        # only the rows the sky spans (and a margin) can be seen: below them the still ground covers it
        have = np.flatnonzero(sky.any(axis=1))
        margin = int(round(SKY_MARGIN * h))
        band = slice(max(0, have[0] - margin), min(h, have[-1] + 1 + margin))
        # None: too narrow for patches
        quilt = side_sky(source[band], pad, left, sky[band], height=h, lead=True)
    if quilt is not None:
        quilt, own = quilt
        out[band, cols] = quilt
        # the quilt starts as the edge's own columns, which have the edge's colours already: only the
        # patches are measured and moved to them (a ramp from the edge moved those columns by the patches'
        # ratio, and where the patches were brighter than the edge it drew a dark band that flowed in as a
        # dark cloud: village-dusk.jpg's right side at 1080p)
        near = max(1, int(round(EDGE_RAMP * w)))  # rows outside the band keep the other side's copy
        ramp = np.minimum((np.arange(pad, dtype=np.float32) + 0.5) / near, 1.0)
        fade = np.repeat((ramp[::-1] if left else ramp)[None, :], h, axis=0)
        fade[band] = 1.0 - own
        outward = fade[band, ::-1] if left else fade[band]  # columns counted from the edge outwards
        past = np.flatnonzero(outward.mean(axis=0) > 1.0 - OWN_LEFT)
        first = max(0, min(int(past[0]) if len(past) else 0, pad - strip))
        quilted = out[:, cols]
        part = (
            quilted[:, max(0, pad - first - strip) : pad - first]
            if left
            else quilted[:, first : first + strip]
        )
        ratio, level = _level(edge, part, step)
        _move(out[:, cols], level, ratio, fade[..., None])
        _join_copy(out, source, pad, left)
        return
    _move(block, level, ratio, None)
    body, before = (block[:, :-1], block[:, -1]) if left else (block[:, 1:], block[:, 0])
    edge_col = source[:, 0] if left else source[:, w - 1]
    fade = max(1, int(round(JOIN_FADE * w)))
    harmonic_join(body, edge_col.astype(np.float32) - before, left, fade)
    out[:, cols] = body


def _join_copy(out: np.ndarray, source: np.ndarray, pad: int, left: bool) -> None:
    """The sky in ``out``'s pad on one side (a copy, a quilt) joined to the edge it continues: the
    step between the edge's column and the copy's column next to it spread into the copy (in place), no
    farther than the rows are high (a band of a few rows, a top pad's, spread it into a streak)."""
    h, w = source.shape[:2]
    fade = max(1, min(h, int(round(JOIN_FADE * w))))
    copy = out[:, :pad] if left else out[:, pad + w :]
    edge = (source[:, 0] if left else source[:, w - 1]).astype(np.float32)
    harmonic_join(copy, edge - (copy[:, -1] if left else copy[:, 0]), left, fade)


EDGE_RAMP = 0.02  # share of the width over which a quilted side's colour match fades in from the edge
OWN_LEFT = 0.05  # a quilt's colours are measured from the first columns with less of the edge's own than this


def _level(edge: np.ndarray, side: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(ratio, level), each (H, 1, 3): per row and channel, the factor that takes ``side``'s colour to
    ``edge``'s (medians of the strips; one side may be redder), and ``side``'s level. The ratios are a
    running median over a fifth of the height, then lightly blurred: a row whose strip holds a cloud on
    one side only gives an outlier, which a blur alone spread into the clear rows around it. The medians
    are taken at a ``step``-th of the size."""
    h = edge.shape[0]
    rows_small = max(1, h // step)

    def medians(part: np.ndarray) -> np.ndarray:
        small = cv2.resize(part, (max(1, part.shape[1] // step), rows_small), interpolation=cv2.INTER_AREA)
        return np.median(small.astype(np.float32), axis=1)

    want, have = medians(edge), np.maximum(medians(side), 1.0)
    ratio = _running_median(want / have, max(1, int(0.2 * rows_small)) | 1)
    ratio = cv2.GaussianBlur(ratio[:, None, :], (0, 0), sigmaX=0.1, sigmaY=max(1.0, 0.05 * rows_small))
    ratio = cv2.resize(ratio, (1, h), interpolation=cv2.INTER_LINEAR).reshape(h, 1, -1)
    level = cv2.resize(have[:, None, :], (1, h), interpolation=cv2.INTER_LINEAR).reshape(h, 1, -1)
    return ratio, level


def _move(side: np.ndarray, level: np.ndarray, ratio: np.ndarray, fade: np.ndarray | None) -> None:
    """``side`` (a pad, uint8, in place) moved from ``level`` to ``level * ratio`` (``relevel``, within
    ``EDGE_LIMIT``), by ``fade`` of the way per column (all the way without)."""
    for r in range(0, side.shape[0], 64):  # in strips of rows: a wide side in float would hold frames' worth
        rows = slice(r, r + 64)
        part = side[rows].astype(np.float32)
        came = np.maximum(level[rows], 1.0)
        offset = level_offset(came, came * ratio[rows], EDGE_LIMIT)
        # darkened by a gain: an offset took a blue sky's darkening (mostly blue) off white clouds as well,
        # and clouds flowing in across a photo's darker side came in cream (examples/sky.jpg's right side)
        moved = np.where(offset < 0, part * ((came + offset) / came), moved_by(part, offset, came))
        if fade is not None:
            moved = part + (moved - part) * (fade if fade.shape[0] == 1 else fade[rows])
        side[rows] = np.clip(moved + 0.5, 0, 255).astype(np.uint8)


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    """The median of each row's ``window`` rows around it (``values``: (rows, channels)), the ends
    repeated."""
    half = window // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window, axis=0), axis=-1)


JOIN_SHIFTS = (0.3, 0.7)  # shares of the width a top or bottom pad's rows are shifted by, at least and most


def _join_shift(edge: np.ndarray, after: np.ndarray) -> int:
    """How far (columns, to the right, wrapping) a top or bottom pad's rows are shifted: the shift within
    ``JOIN_SHIFTS`` of the width that takes ``after`` (the photo's row that follows the pad in its shifted
    copy) closest to ``edge`` (the photo's row the pad joins), both averaged down to about 128 columns.
    Half a width whatever the rows held joined a white cloud to blue sky at the top of examples/sky.jpg,
    and the step spread into the pad made navy and cream blots that flowed in in a loop."""
    w = len(edge)
    if w < 8:
        return w // 2
    n = min(w, 128)  # compared at about 128 columns, each the mean of its share of the row
    a, b = (
        cv2.resize(r.astype(np.float32)[None], (n, 1), interpolation=cv2.INTER_AREA)[0] for r in (edge, after)
    )
    shifts = np.arange(int(np.ceil(JOIN_SHIFTS[0] * n)), int(JOIN_SHIFTS[1] * n) + 1)
    error = [np.abs(a - np.roll(b, k, axis=0)).mean() for k in shifts]
    return int(round(shifts[int(np.argmin(error))] * w / n)) % w


def _shifted(rows: np.ndarray, shift: int) -> np.ndarray:
    """``rows`` moved ``shift`` pixels sideways, wrapping around (the wrap's seam softened as ``wrapped``
    softens its sides)."""
    w = rows.shape[1]
    if shift <= 0 or w < 4:
        return rows.copy()
    out = wrapped(rows, shift)  # out[:, i] is rows[(i - shift) % w] for every column i
    # the second copy needs 2 * shift >= w (an odd width's half is one short): else the first
    return np.ascontiguousarray(out[:, w : 2 * w] if 2 * shift >= w else out[:, :w])


ROW_STRETCH = 4  # the sky source's fill spreads this many times farther along a row than across rows
FILL_GAIN = 4.0  # pull-push: a coarse pixel is fully known once a quarter of its area is


def pull_push(image: np.ndarray, known: np.ndarray, stretch: float = 1.0) -> np.ndarray:
    """``image`` (h, w, c) float32 with the pixels where ``known`` (h, w float32 in [0, 1]) is 0 filled by
    pull-push (Gortler et al., The Lumigraph, 1996): averaged down a Gaussian pyramid by what is known,
    then each level's gaps taken from the level below, enlarged. A hole gets a smooth blend of all the
    sky around it, near sky weighing most, with no edge inside it; ``stretch`` > 1 spreads it that many
    times farther along rows than across them (sky colour follows the height above the horizon)."""
    h, w = known.shape
    size = (w, max(1, int(round(h * stretch))))
    num = cv2.resize(image * known[..., None], size, interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(known, size, interpolation=cv2.INTER_LINEAR)
    levels = [(num, den)]
    while min(den.shape) > 2:
        num, den = cv2.pyrDown(num), cv2.pyrDown(den)
        value = num / np.maximum(den, 1e-9)[..., None]
        den = np.minimum(1.0, FILL_GAIN * den)
        num = value * den[..., None]
        levels.append((num, den))
    num, den = levels[-1]
    mean = (image * known[..., None]).sum(axis=(0, 1)) / max(float(known.sum()), 1e-9)
    value = np.where(den[..., None] > 1e-6, num / np.maximum(den, 1e-6)[..., None], mean).astype(np.float32)
    for num, den in reversed(levels[:-1]):
        up = cv2.pyrUp(value, dstsize=(den.shape[1], den.shape[0]))
        weight = np.clip(den, 0.0, 1.0)[..., None]
        value = num / np.maximum(den, 1e-6)[..., None] * weight + up * (1.0 - weight)
    return cv2.resize(value, (w, h), interpolation=cv2.INTER_AREA)


def sky_source(photo: np.ndarray, sky: np.ndarray, work: int = 160, feather: float = 0.0) -> np.ndarray:
    """The photo with everything outside ``sky`` painted over with sky colours, as the source to warp from:
    a stream line that starts under the still foreground (behind a mountain, a roof) then fetches a smooth
    continuation of the nearby sky instead of a smear of roof. The fill is a pull-push (``pull_push``) at a
    small size (shorter side ``work``) from sky pixels a little inside the mask (the mask's edge pixels can
    carry the foreground's colour), spread ``ROW_STRETCH`` times farther along rows than across them: sky
    colour changes little along a row (the same height above the horizon) and much from row to row, so the
    hole gets the colours of its own rows, not vertical streaks. The fill has no edges of its own: a
    normalised convolution at four widths, each filling what the one before left, drew the dark sky of a
    corner into the still part behind a pylon as an oval with an edge, which moved out into the glow as a
    dark cloud (village-dusk.jpg at 1080p, frame 31). The sky keeps the photo's pixels; with ``feather``
    they fade into the fill over that share of the shorter side, inside the sky's edge."""
    ph, pw = photo.shape[:2]
    if sky.all() or not sky.any():
        return photo
    scale = min(1.0, work / min(ph, pw))
    size = (max(8, int(round(pw * scale))), max(8, int(round(ph * scale))))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    inside = cv2.resize(sky.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    eroded = cv2.erode(inside, np.ones((5, 5), np.uint8))
    m = (eroded if eroded.any() else inside).astype(np.float32)
    fill = np.where(m[..., None] > 0, small, pull_push(small, m, ROW_STRETCH))
    fill = cv2.GaussianBlur(fill, (0, 0), 1.5)
    big = cv2.resize(np.clip(fill + 0.5, 0, 255).astype(np.uint8), (pw, ph), interpolation=cv2.INTER_LINEAR)
    if feather <= 0:
        cv2.copyTo(photo, (sky > 0).astype(np.uint8), big)  # the sky keeps the photo's own pixels
        return big
    # the photo's sky fades into the fill over ``feather`` of the shorter side, inside the sky's edge
    reach = max(1.0, feather * min(ph, pw))
    inner = cv2.erode(sky.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, int(reach)))
    weight = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), reach)[..., None]
    return np.clip(photo * weight + big * (1.0 - weight) + 0.5, 0, 255).astype(np.uint8)


BEHIND_ROWS = 135  # the search for where sky behind a still part comes from runs at about this height
BEHIND_STRIP = 0.02  # share of the width: the sky around a part that the candidates' sky must continue
BEHIND_VALID = 0.9  # share of a part (and of its strip) that must land in the photo's sky
BEHIND_LEAST = 32  # pixels at the search's size: smaller parts (a pylon's struts) keep the fill
# share of the height over which that sky fades in from the photo's sky's edge (from the fill, which has
# the edge's colours): at 0.01 the clouds of a mountain's slope came out in slabs cut along the slope
BEHIND_FEATHER = 0.03


def behind_still(source: np.ndarray, sky: np.ndarray, reach: np.ndarray, towards: int) -> np.ndarray:
    """``source`` (a ``sky_source``) with the sky that comes out from behind still parts made of the
    photo's own clouds. Drifting sideways, the sky shows what its still parts (hills, roofs, pylons) hide,
    within ``reach`` pixels of their sides (per row: how far the sky travels there in the video; lower rows
    move slower), on the side the sky drifts away from (``towards`` -1: it drifts left, so their left
    sides; 1: their right sides; 0: both, as a loop's two phases need). The smooth fill alone came out as
    a pale haze in shapes of its own (a plume beside a mountain, examples/sky.jpg at 1080p). Each region
    that shows is given the photo's sky from one translation along its rows (clouds keep their shapes),
    the one whose sky around the region's edge best continues the sky there, wrapping around the photo's
    sides; moved to the level of the place it lands (the fill's, near the sky's edge), faded in over
    ``BEHIND_FEATHER`` from the sky's edge. Where no translation lands in sky the fill stays."""
    sky = np.asarray(sky, dtype=bool)
    reach = np.broadcast_to(np.asarray(reach, np.float32), sky.shape[:1])
    if towards == 0:
        return behind_still(behind_still(source, sky, reach, -1), sky, reach, 1)
    h, w = sky.shape
    if reach.max() < 1 or sky.all() or not sky.any():
        return source
    scale = min(1.0, BEHIND_ROWS / h)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    # at the small size the sky drifts left: the right sides of a flipped photo are its left sides
    sky_s = cv2.resize(sky.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    small = cv2.resize(source, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    if towards > 0:
        sky_s, small = np.ascontiguousarray(sky_s[:, ::-1]), np.ascontiguousarray(small[:, ::-1])
    rows_s = np.minimum(((np.arange(size[1]) + 0.5) / scale).astype(np.int64), h - 1)
    shown_s = _shown(sky_s, reach[rows_s] * scale)
    count, parts = cv2.connectedComponents(shown_s.view(np.uint8), connectivity=8)
    if count < 2:
        return source
    # every pixel's nearest shown pixel's part: the sky around a part is compared, and at full size every
    # shown pixel takes the translation of its part at the small size
    dist, nearest = cv2.distanceTransformWithLabels(
        (~shown_s).view(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    part_of = parts[shown_s][nearest - 1]
    detail = small - cv2.GaussianBlur(small, (0, 0), 1.5)
    strip = sky_s & (dist <= max(1.0, BEHIND_STRIP * size[0]))
    shifts = np.zeros(count, np.int64)
    sizes = np.bincount(parts.ravel(), minlength=count)
    for part in np.flatnonzero(sizes[1:] >= BEHIND_LEAST) + 1:  # a small part's fill is the sky around it
        shifts[part] = _best_shift(small, detail, sky_s, parts == part, strip & (part_of == part))
    if not shifts.any():
        return source
    moved, shift = np.where(shown_s, shifts[parts], 0), shifts[part_of]
    if towards > 0:
        small, moved, shift = small[:, ::-1], moved[:, ::-1], shift[:, ::-1]
    return _transplant(source, sky, reach, moved, shift, scale, np.ascontiguousarray(small), -towards)


def _shown(sky: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Where the still parts show what is behind them as the sky drifts left: not sky, and within
    ``reach`` (per row) of sky on the left along the row."""
    cols = np.arange(sky.shape[1], dtype=np.int32)[None, :]
    last = np.maximum.accumulate(np.where(sky, cols, np.int32(-(2**30))), axis=1)
    return ~sky & (cols - last <= np.asarray(reach, np.float32).reshape(-1, 1))


def _best_shift(
    small: np.ndarray, detail: np.ndarray, sky: np.ndarray, part: np.ndarray, strip: np.ndarray
) -> int:
    """The translation to the right (in ``small``'s columns, wrapping) from which the pixels of ``part``
    take their sky: nearly all of them and of the ``strip`` of sky around them land in sky, and the
    strip's translated sky is most like its own (``detail``, its fine structure, and colour); 0 when none
    lands."""
    h, w = sky.shape
    ys, xs = np.nonzero(part)
    by, bx = np.nonzero(strip)
    if len(ys) < 4 or len(by) < 4:
        return 0
    every = max(1, len(ys) // 500), max(1, len(by) // 500)  # a sample is enough to tell
    ys, xs, by, bx = ys[:: every[0]], xs[:: every[0]], by[:: every[1]], bx[:: every[1]]
    shifts = np.arange(1, w)[:, None]
    lands = sky[ys[None, :], (xs[None, :] + shifts) % w].mean(axis=1) >= BEHIND_VALID
    there = (bx[None, :] + shifts[lands]) % w
    ok = sky[by[None, :], there]
    fine = ok.mean(axis=1) >= BEHIND_VALID
    if not fine.any():
        return 0
    there, ok = there[fine], ok[fine]
    here, away = (by, bx), (by[None, :], there)
    error = np.abs(detail[away] - detail[here][None]).sum(axis=2)
    error += 0.3 * np.abs(small[away] - small[here][None]).sum(axis=2)
    error = (error * ok).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    return int(shifts[lands][fine][int(np.argmin(error)), 0])


def _transplant(
    source: np.ndarray,
    sky: np.ndarray,
    reach: np.ndarray,
    moved_s: np.ndarray,
    shift_s: np.ndarray,
    scale: float,
    small: np.ndarray,
    sign: int,
) -> np.ndarray:
    """``source`` with each shown pixel (``_shown`` at full size) taken from the sky ``shift_s`` (per pixel
    at the small size, in its columns) to its right (``sign`` 1; -1: to its left, the sky drifting right),
    moved by the difference of the two places' levels (a blur of half ``TREND_BLUR`` of the width) and
    faded in from the sky's edge. The masks are made at full size in the box around ``moved_s`` (the shown
    pixels at the small size whose part has a translation), with the sky within ``reach`` on the side it
    drifts from and a margin for the fade; the pixels are moved one by one (a few hundred thousand at most
    at 1080p)."""
    h, w = sky.shape
    rows, cols = np.nonzero(moved_s > 0)
    margin = int(BEHIND_FEATHER * h) + 4
    y0, y1 = max(0, int(rows.min() / scale) - margin), min(h, int((rows.max() + 1) / scale) + margin + 1)
    far = float(reach[y0:y1].max())
    before, after = (far, 0.0) if sign > 0 else (0.0, far)
    x0 = max(0, int(cols.min() / scale - before) - margin)
    x1 = min(w, int((cols.max() + 1) / scale + after) + margin + 1)
    box = sky[y0:y1, x0:x1]
    near = reach[y0:y1] + 2
    shown = _shown(box, near) if sign > 0 else _shown(box[:, ::-1], near)[:, ::-1]
    ys, xs = np.nonzero(shown)
    ys, xs = ys + y0, xs + x0
    sh, sw = small.shape[:2]
    row = np.minimum((ys * scale).astype(np.int64), sh - 1)  # the small size's pixel each one lies in
    shift = shift_s[row, np.minimum((xs * scale).astype(np.int64), sw - 1)]
    keep = shift > 0
    ys, xs, row, shift = ys[keep], xs[keep], row[keep], shift[keep]
    here = ys * w + xs  # flat indices: one gather each
    there = ys * w + (xs + sign * np.rint(shift / scale).astype(np.int64)) % w
    lands = sky.ravel()[there]
    ys, xs, row, here, there = ys[lands], xs[lands], row[lands], here[lands], there[lands]
    if not len(ys):
        return source
    taken = np.zeros(box.shape, np.float32)
    taken[ys - y0, xs - x0] = 1.0
    # faded in from the sky's edge, and softly at the taken region's own edges
    ramp = cv2.distanceTransform((~box).view(np.uint8), cv2.DIST_L2, 3) / max(1.0, BEHIND_FEATHER * h)
    weight = (cv2.GaussianBlur(taken, (0, 0), 2.0) * np.minimum(ramp, 1.0))[ys - y0, xs - x0][:, None]
    # the levels are smooth: their nearest point at the small size will do
    low = cv2.GaussianBlur(small, (0, 0), max(1.0, 0.5 * TREND_BLUR * sw)).reshape(-1, 3)
    offset = low[row * sw + np.minimum((xs * scale).astype(np.int64), sw - 1)]
    offset -= low[row * sw + np.minimum(((there % w) * scale).astype(np.int64), sw - 1)]
    flat = source.reshape(-1, 3)
    now = flat[here].astype(np.float32)
    moved = flat[there] + offset
    out = source.copy()
    out.reshape(-1, 3)[here] = np.clip(now + (moved - now) * weight + 0.5, 0, 255).astype(np.uint8)
    return out
