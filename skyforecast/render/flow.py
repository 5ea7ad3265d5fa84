"""Dense optical flow of a predicted clip (DIS or Farneback), the one flow engine every renderer and mask
uses. No torch here."""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


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
