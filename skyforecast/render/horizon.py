"""The horizon of a sea, a lake or open land: a straight, level edge below which nothing is sky.

Colour alone cannot place it. A sea reflects the sky above it, so the glow and the grey clouds just above a
sea horizon have the sea's colours, and a sky cut by colour (``skymask.day_sky``'s GrabCut) stops well above
it, leaving the lower clouds as still as the water. The horizon is the one place where the two meet along a
straight line: a long edge, level to within a couple of degrees, with the lighter side up (the sky is
lighter than the water or the land under it, at sunset too).

Lines like that are also drawn by the ground and the clouds: the far edge of a field seen between two houses,
a shadow across a wall, the flat base of a cloud. A horizon reaches a side of the frame (an edge between two
houses stops at both) and lies below the upper 40 % of the frame; a level edge in the clouds has sky below
it as well as above it, which ``day_sky`` checks; and above a horizon only what is coloured like the sky
becomes sky, so a shadow's line across a wall changes nothing above it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TILT = 2.0  # degrees: how far from level a horizon may run (a camera held by hand)
MIN_SPAN = 0.3  # share of the width the level edge runs without a break
ROWS = (0.4, 0.95)  # where a horizon may lie, shares of the height from the top (a sunset's land strip: 0.93)
STRENGTH = 4.0  # L* step across the edge (OpenCV's 8-bit scale, per pixel of the working size)


@dataclass(frozen=True)
class Horizon:
    """A straight edge: ``row`` at the frame's middle column, ``slope`` in rows per column, and the columns
    ``start`` to ``end`` (exclusive) it runs along without a break."""

    row: int
    slope: float
    start: int
    end: int

    def rows(self, width: int) -> np.ndarray:
        """The row the edge is at in every column of the frame (float, the line carried on past its ends)."""
        return self.row + self.slope * (np.arange(width) - width / 2)

    def above(self, shape: tuple[int, int], margin: float = 1.0) -> np.ndarray:
        """Pixels more than ``margin`` rows above the edge, in the columns it runs along: bool (H, W)."""
        return self._side(shape, True, margin)

    def below(self, shape: tuple[int, int], margin: float = 1.0) -> np.ndarray:
        """Pixels more than ``margin`` rows below the edge, in the columns it runs along: bool (H, W)."""
        return self._side(shape, False, margin)

    def _side(self, shape: tuple[int, int], up: bool, margin: float) -> np.ndarray:
        h, w = shape
        cols = np.zeros(w, bool)
        cols[self.start : self.end] = True
        rows, line = np.arange(h)[:, None], self.rows(w)[None]
        return ((rows < line - margin) if up else (rows > line + margin)) & cols[None]

    def band(self, shape: tuple[int, int], above: bool, depth: float = 0.06) -> np.ndarray:
        """The band along the edge, ``depth`` of the height deep, above or below it: bool (H, W)."""
        deep = 1.0 + depth * shape[0]
        if above:
            return self.above(shape) & ~self.above(shape, margin=deep)
        return self.below(shape) & ~self.below(shape, margin=deep)


def level_edges(light: np.ndarray) -> list[Horizon]:
    """Every long level edge with the lighter side up in a lightness image (float32, working size), longest
    first: per tilt, the rows where the lightness falls by ``STRENGTH`` along ``MIN_SPAN`` of the width
    (gaps of 3 % bridged)."""
    h, w = light.shape
    smooth = cv2.GaussianBlur(light, (0, 0), 1.0)
    fall = np.zeros_like(smooth)
    fall[1:-1] = (smooth[:-2] - smooth[2:]) / 2  # positive where it is lighter above
    fall = cv2.blur(fall, (5, 1))
    cols = np.arange(w)
    gap = np.ones((1, max(3, int(0.03 * w)) | 1), np.uint8)
    found = []
    for degrees in np.arange(-TILT, TILT + 1e-6, 0.5):
        slope = float(np.tan(np.radians(degrees)))
        shift = np.round(slope * (cols - w / 2)).astype(int)
        sheared = fall[np.clip(np.arange(h)[:, None] + shift[None], 0, h - 1), cols[None]]
        edge = cv2.morphologyEx((sheared > STRENGTH).astype(np.uint8), cv2.MORPH_CLOSE, gap)
        for row in range(int(ROWS[0] * h), int(ROWS[1] * h)):
            if edge[row].sum() < MIN_SPAN * w:
                continue
            steps = np.diff(np.concatenate([[0], edge[row].astype(np.int8), [0]]))
            starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
            i = int(np.argmax(ends - starts))
            if ends[i] - starts[i] >= MIN_SPAN * w:
                found.append(Horizon(row, slope, int(starts[i]), int(ends[i])))
    return sorted(found, key=lambda e: (e.start - e.end, e.row))


def horizon_candidates(lab: np.ndarray, groundy: np.ndarray) -> list[Horizon]:
    """The level edges (``level_edges``, longest first) that may be the photo's horizon: those reaching a
    side of the frame, with no more than 40 % ground-like pixels (``groundy``) in the band just above them
    (6 % of the height). The caller checks the other side: a horizon has no sky below it."""
    h, w = lab.shape[:2]
    found = []
    for edge in level_edges(lab[..., 0]):
        if edge.start > 2 and edge.end < w - 2:
            continue  # stops at both ends: drawn between two things standing on the ground
        band = edge.band((h, w), above=True)
        if band.any() and groundy[band].mean() <= 0.4:
            found.append(edge)
    return found
