"""The per-frame motion transfer: a 128x128 MD-GAN prediction's own motion on the photo at its resolution.

This is what ``--resolution model`` compares against and ``evaluate`` scores as "Stage II flow on photo";
the default output moves the sky with the steady field instead (``render.steady``).

The model's pixels are too coarse to post, but its *motion* is usable: dense optical flow between the first
predicted frame and each later one is upsampled to the photo's size and used to warp the original photo, and
the prediction's slow brightness and colour change rides along as a low-frequency gain. A mask keeps the
foreground (houses, mountains, the timestamp burnt into a photo) exactly the photo's own pixels, so nothing
that should stand still can wobble.

Conventions: videos are (T, H, W, 3) uint8; flows are *backward* flows to frame 0 in pixels of the 128x128
(squashed) model square, ``frame_t(x) ~= frame_0(x + flow_t(x))``, so one ``cv2.remap`` per frame renders
them; masks are float32 in [0, 1], 1 = sky (may move), 0 = still. No torch here."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from .flow import _grid, _warp, estimate_flows
from .skymask import bounding_box, sky_only


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
