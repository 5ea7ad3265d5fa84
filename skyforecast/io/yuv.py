"""RGB frames to BT.709 yuv420p in TV range, the pixels an MP4 is encoded from, made in our process.

Piping RGB (3 bytes a pixel) makes ffmpeg convert every frame itself; its converter (swscale) spends about a
quarter of what x264 does on a 1080p render (0.3 CPU-s of 1.2 for 32 frames), and the pipe carries twice
the bytes. OpenCV does the same conversion here in a third of that CPU time, and the pipe carries
1.5 bytes a pixel.

The colours are those ffmpeg makes from rgb24 (``media.BT709_CONVERSION``): the same matrix and range, and
offsets nudged by a few hundredths of a level so that the mean of each plane lands within 0.03 of ffmpeg's
fixed-point rounding on rendered frames (measured at 1080p; pixels differ by at most one level). Chroma is
the mean of each 2x2 block (centre-sited, as JPEG and MPEG-1 site it); ffmpeg averages pixel pairs across
and filters down with a bicubic kernel: the two part only where colour changes sharply from row to row (by
at most one level on 1080p sky renders, up to three at roof edges in a photo shrunk to 320 px).

No torch here; frames are (H, W, 3) uint8 with even sides."""

from __future__ import annotations

import cv2
import numpy as np

KR, KB = 0.2126, 0.0722  # BT.709 luma weights of red and blue
BAND = 64  # rows converted at a time: the buffers stay small whatever the frame size


def _matrix() -> np.ndarray:
    """3x4 float32: rows Y, Cb, Cr of TV range (Y 16-235, chroma 16-240) from full-range RGB, offsets last.
    The offsets carry +0.08 (Y) and -0.13 (chroma) levels: OpenCV's 8-bit ``transform`` rounds its
    coefficients to fixed point a little low, ffmpeg's converter a little high; the nudge makes the two
    agree on average (module docstring)."""
    kg = 1.0 - KR - KB
    rows = np.array(
        [
            [KR, kg, KB],
            [-KR / (2 * (1 - KB)), -kg / (2 * (1 - KB)), 0.5],
            [0.5, -kg / (2 * (1 - KR)), -KB / (2 * (1 - KR))],
        ]
    )
    scale = np.array([219.0, 224.0, 224.0])[:, None] / 255.0
    offsets = np.array([[16.08], [127.87], [127.87]])
    return np.hstack([rows * scale, offsets]).astype(np.float32)


MATRIX = _matrix()


class I420:
    """Converts (height, width, 3) uint8 RGB frames to one planar yuv420p buffer (Y, then Cb, then Cr;
    ``height * 3 // 2`` rows of ``width`` bytes), what ffmpeg reads as ``-pix_fmt yuv420p``.

    One converter per video: it reuses its buffers for every frame, so the array returned by a call is
    overwritten by the next (write it out first). Work goes in bands of ``BAND`` rows, which keeps the
    temporary YCbCr 4:4:4 rows in the cache and the memory small for any frame size."""

    def __init__(self, width: int, height: int):
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise ValueError(f"yuv420p needs even sides, got {width}x{height}")
        self.width, self.height = width, height
        self.out = np.empty((height * 3 // 2, width), np.uint8)
        flat = self.out.reshape(-1)
        quarter = width * height // 4
        self._y = self.out[:height]
        self._cb = flat[width * height : width * height + quarter].reshape(height // 2, width // 2)
        self._cr = flat[width * height + quarter :].reshape(height // 2, width // 2)
        band = min(BAND, height)
        self._full = np.empty((band, width, 3), np.uint8)
        self._half = np.empty((band // 2, width // 2, 3), np.uint8)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            expected = (self.height, self.width, 3)
            raise ValueError(f"frame of shape {rgb.shape} {rgb.dtype}, expected {expected} uint8")
        step = self._full.shape[0]
        for top in range(0, self.height, step):
            bottom = min(top + step, self.height)
            rows = bottom - top
            full, half = self._full[:rows], self._half[: rows // 2]
            cv2.transform(rgb[top:bottom], MATRIX, dst=full)
            cv2.extractChannel(full, 0, dst=self._y[top:bottom])
            cv2.resize(full, (self.width // 2, rows // 2), dst=half, interpolation=cv2.INTER_AREA)
            cv2.extractChannel(half, 1, dst=self._cb[top // 2 : bottom // 2])
            cv2.extractChannel(half, 2, dst=self._cr[top // 2 : bottom // 2])
        return self.out


def to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """One frame's planar yuv420p (``I420``), in a new array."""
    h, w = rgb.shape[:2]
    return I420(w, h)(rgb).copy()


__all__ = ["BAND", "I420", "MATRIX", "to_yuv420p"]
