"""The pixel metrics a prediction is scored with (PSNR, SSIM, frame change) and the baseline that never
moves. Apart from the per-clip scores and the evaluation loop because they need only numpy (and OpenCV for
SSIM's filter) and are what tests and notebooks call on two arrays; ``skyforecast.evaluation.scoring``'s
docstring defines each one."""

from __future__ import annotations

import math

import numpy as np

from ..io.constants import FRAMES

PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _unit(video: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float64 [0, 1]; float input is taken as already in [0, 1]."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video.astype(np.float64) / 255.0
    return video.astype(np.float64, copy=False)


def _check_pair(pred: np.ndarray, real: np.ndarray) -> None:
    if pred.shape != real.shape or pred.ndim != 4 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (T,H,W,3) videos of one shape, got {pred.shape} and {real.shape}")


def psnr_frames(pred: np.ndarray, real: np.ndarray, cap: float = PSNR_CAP) -> np.ndarray:
    """Per-frame PSNR in dB of two (T,H,W,3) videos (uint8, or float in [0, 1]), capped at ``cap``."""
    _check_pair(pred, real)
    mse = ((_unit(pred) - _unit(real)) ** 2).reshape(len(pred), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(1.0 / mse), cap)


def _psnr_pooled(pred: np.ndarray, real: np.ndarray, cap: float = PSNR_CAP) -> float:
    mse = float(((_unit(pred) - _unit(real)) ** 2).mean())
    return cap if mse == 0 else min(10.0 * math.log10(1.0 / mse), cap)


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filtering of (T,H,W,C) over H and W (no padding, as in Wang et al.'s
    reference code: border windows would mix in invented pixels). OpenCV does the filtering because it
    is ~50x faster than numpy shifts; the border mode is irrelevant since the border is cropped away."""
    import cv2

    r = len(w) // 2
    out = np.empty((x.shape[0], x.shape[1] - 2 * r, x.shape[2] - 2 * r, x.shape[3]), np.float64)
    for t in range(len(x)):
        f = cv2.sepFilter2D(x[t], cv2.CV_64F, w, w, borderType=cv2.BORDER_REFLECT)
        out[t] = (f if f.ndim == 3 else f[..., None])[r:-r, r:-r]
    return out


def ssim_frames(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of two (T,H,W,3) videos (uint8, or float in [0, 1]), averaged over RGB channels."""
    _check_pair(pred, real)
    if min(pred.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    x, y = _unit(pred), _unit(real)
    w = _gaussian_window()
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mx, my = _filter_valid(x, w), _filter_valid(y, w)
    vx = _filter_valid(x * x, w) - mx * mx
    vy = _filter_valid(y * y, w) - my * my
    cxy = _filter_valid(x * y, w) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ssim_map.mean(axis=(1, 2, 3))


def frame_change(video: np.ndarray) -> float:
    """Mean absolute difference of consecutive frames of a (T,H,W,3) video, in [0, 1] units (what the
    motion ratio compares; not a flow length, unlike ``skyforecast.render.skymask.flow_travel``)."""
    v = _unit(video)
    if len(v) < 2:
        return 0.0
    return float(np.abs(np.diff(v, axis=0)).mean())


def inner_frame_change(video: np.ndarray) -> float:
    """``frame_change`` without the first and the last frame step (0->1 and T-2->T-1): the change inside
    the clip, free of the jumps that temporal padding puts at a generated clip's two ends."""
    v = _unit(video)
    return frame_change(v[1:-1]) if len(v) >= 4 else frame_change(v)


def copy_baseline(real: np.ndarray, frames: int = FRAMES) -> np.ndarray:
    """The video that never moves: the clip's first frame repeated ``frames`` times."""
    return np.repeat(np.asarray(real)[:1], frames, axis=0)
