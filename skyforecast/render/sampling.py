"""Where each pixel of a frame's sky box samples its source: the renderer's coarse displacement grid made
into the per-pixel map that ``cv2.remap`` reads.

The map is x + offset + D(x), D bilinearly upsampled from the grid. Upsampling D and then adding the pixel
grid reads and writes the whole box's map once more per frame (1920x1080, 32 frames: 0.05 s of a 0.55 s
render). Bilinear interpolation reproduces a linear function exactly, so the pixel grid is added on the
coarse grid instead (each node's position in the frame, as ``cv2.resize`` places it), before upsampling.
Only the frame's outer few pixels need more: ``cv2.resize`` holds the edge nodes' values beyond them, so
there the difference between the pixel and its nearest node is added back, column by column and row by
row. The maps match the unfolded ones to float32 rounding (a few ten-thousandths of a pixel, far below
``cv2.remap``'s 1/32 pixel steps)."""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # rows y0:y1, columns x0:x1


def _edge_runs(pixels: np.ndarray, nodes: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(start, stop, correction) for each run of ``pixels`` (the box's positions along one axis of the
    frame; start and stop count from the box's first) that lies outside the first and last ``nodes``:
    where upsampling holds an edge node's value."""
    fix = (pixels - np.clip(pixels, nodes[0], nodes[-1])).astype(np.float32)
    runs = []
    outside = np.flatnonzero(fix != 0)
    if len(outside):
        breaks = np.flatnonzero(np.diff(outside) > 1)
        for part in np.split(outside, breaks + 1):
            runs.append((int(part[0]), int(part[-1]) + 1, fix[part[0] : part[-1] + 1]))
    return runs


def nodes(count: int, size: int) -> np.ndarray:
    """float64 positions, in the frame's pixels along one axis of ``size`` pixels, of the ``count`` nodes of
    a grid that ``cv2.resize`` enlarges to it: output pixel x reads node (x + 0.5) * count / size - 0.5."""
    return (np.arange(count) + 0.5) * (size / count) - 0.5


class SampleMap:
    """``sample(disp, scale)``: the (y1 - y0, x1 - x0, 2) float32 map x + offset + disp * scale of ``box``
    in a frame of ``size`` (width, height), ``disp`` (gh, gw, 2) the grid displacement in grid units and
    ``scale`` its (x, y) factor to frame pixels. The map is a view of ``buffer`` (or of a buffer of its
    own), overwritten by the next call."""

    def __init__(
        self,
        grid: tuple[int, int],
        size: tuple[int, int],
        box: Box,
        offset: tuple[float, float] = (0.0, 0.0),
        buffer: np.ndarray | None = None,
    ):
        gw, gh = grid
        w, h = size
        y0, y1, x0, x1 = box
        self.size, self.box = (w, h), box
        nx, ny = nodes(gw, w), nodes(gh, h)  # where cv2.resize puts the grid's nodes in the frame
        gx, gy = np.meshgrid(nx + offset[0], ny + offset[1])
        self._nodes = np.dstack([gx, gy]).astype(np.float32)
        self._xfix = _edge_runs(np.arange(x0, x1, dtype=np.float64), nx)
        self._yfix = _edge_runs(np.arange(y0, y1, dtype=np.float64), ny)
        self._buffer = np.empty((h, w, 2), np.float32) if buffer is None else buffer

    def sample(self, disp: np.ndarray, scale: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.box
        small = disp * scale
        small += self._nodes
        cv2.resize(small, self.size, dst=self._buffer, interpolation=cv2.INTER_LINEAR)
        m = self._buffer[y0:y1, x0:x1]
        for a, b, fix in self._xfix:
            m[:, a:b, 0] += fix
        for a, b, fix in self._yfix:
            m[a:b, :, 1] += fix[:, None]
        return m


__all__ = ["SampleMap", "nodes"]
