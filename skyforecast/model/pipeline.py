"""The prediction pipeline: photos in, 32-frame uint8 videos out. It hides device, dtype and batching, so
the CLI, the evaluator and users' own scripts all predict the same way.

    >>> from skyforecast.model.pipeline import SkyPipeline
    >>> pipe = SkyPipeline.from_pretrained()            # bundled default, or a folder / Hub repo id
    >>> videos = pipe(["photo.jpg"])                     # list of (32, 128, 128, 3) uint8 arrays
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..io.constants import FRAMES, SIZE
from ..io.media import model_squares
from .architecture import model_config

if TYPE_CHECKING:
    from .networks import MDGAN

PhotoLike = "str | os.PathLike | Image.Image | np.ndarray | Photo"


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; anything else is passed to torch."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available here")
    return dev


def to_model_input(squares: np.ndarray) -> torch.Tensor:
    """(N,128,128,3) uint8 -> static video X (N,3,32,128,128) in [-1,1]: the photo duplicated 32 times.
    ``expand`` shares memory across time, so the 32 copies cost nothing until the first convolution."""
    x = _from_uint8(torch.from_numpy(np.require(squares, np.uint8, ["C", "W"])))
    return x.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1)


def _from_uint8(u8: torch.Tensor) -> torch.Tensor:
    """(N,H,W,3) uint8 -> (N,3,H,W) float32 in [-1,1] (the inverse of ``to_uint8_video``'s scaling)."""
    return u8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8_video(y: torch.Tensor) -> np.ndarray:
    """(N,3,T,H,W) in [-1,1] -> (N,T,H,W,3) uint8, rounding to nearest. ``y`` is left as it was (the first
    step makes a copy: training's previews pass tensors that are still in use, some expanded views)."""
    y = y.detach().float().clamp(-1, 1).add_(1).mul_(127.5).round_()
    # converted on the device and then copied: a uint8 video is 4x smaller than a float one
    return y.to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous().cpu().numpy()


class SkyPipeline:
    """MD-GAN prediction with batching under ``torch.inference_mode``.

    ``fast=True`` (default) predicts through ``skyforecast.model.fast.FastMDGAN`` (BatchNorm folded, prepacked
    oneDNN convolutions, the static-input temporal shortcut; autocast on CUDA), which matches the plain
    model within 1e-3 in fp32; ``fast=False`` runs ``self.model`` eagerly, the reference. Models that
    need batch statistics always run the reference. ``precision``: ``auto`` (fp32 on CPU, bf16/fp16 on
    CUDA), ``fp32``, ``bf16``, ``fp16``; ``compile=True`` adds ``torch.compile`` (worth it for long runs).
    """

    def __init__(
        self,
        model: MDGAN,
        device: str | torch.device | None = "auto",
        fast: bool = True,
        precision: str = "auto",
        compile: bool = False,
    ):
        self.device = pick_device(device)
        self._model: MDGAN | None = model.eval().to(self.device)
        self._load_model: Callable[[], MDGAN] | None = None
        self.ngf, self.batch_stats = model.ngf, model.batch_stats
        self.refine_ngf = model.refine_ngf if model.refine_ngf != model.ngf else None
        self.fast = None
        if fast and not model.batch_stats:
            from .fast import FastMDGAN

            self.fast = FastMDGAN(self._model, self.device, precision=precision)
            if compile:
                self.fast.compile()

    @classmethod
    def from_pretrained(
        cls,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = "auto",
        *,
        fast: bool = True,
        precision: str = "auto",
        compile: bool = False,
    ) -> SkyPipeline:
        """Load weights by the project's one rule (``skyforecast.model.weights``); options as ``__init__``.

        With the fast path (the default) the stored tensors go straight into ``FastMDGAN``'s folded layers
        and the eager network is built only if ``.model`` is asked for: loading then takes a fraction of the
        time and memory (measured in ``bench/run.py``'s start-up breakdown)."""
        from .weights import load_folder, locate

        files = locate(weights)
        if not fast or files.batch_stats:
            model = load_folder(files.folder, describe=files.label)
            return cls(model, device=device, fast=fast, precision=precision, compile=compile)
        from .fast import FastMDGAN

        pipe = cls.__new__(cls)
        pipe.device = pick_device(device)
        pipe.fast = FastMDGAN.from_files(files, pipe.device, precision=precision)
        if compile:
            pipe.fast.compile()
        pipe.ngf, pipe.batch_stats, pipe.refine_ngf = files.ngf, files.batch_stats, files.refine_ngf
        pipe._model = None
        pipe._load_model = lambda: load_folder(files.folder, describe=files.label)
        return pipe

    @property
    def model(self) -> MDGAN:
        """The plain eager network (the reference). A pipeline loaded by ``from_pretrained`` builds it
        from the same files on first use: the fast path alone never needs it."""
        if self._model is None:
            self._model = self._load_model().eval().to(self.device)
        return self._model

    @property
    def config(self) -> dict:
        return model_config(self.ngf, self.batch_stats, self.refine_ngf)

    @torch.inference_mode()
    def predict_squares(self, squares: np.ndarray, stage: int = 2, batch_size: int = 8) -> np.ndarray:
        """(N,128,128,3) uint8 squares -> (N,32,128,128,3) uint8 videos, ``batch_size`` clips at a time."""
        if squares.ndim != 4 or squares.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"expected (N,{SIZE},{SIZE},3) uint8 squares, got {squares.shape}")
        out = []
        start, batch_size = 0, max(1, batch_size)
        while start < len(squares):
            chunk = squares[start : start + batch_size]
            try:
                out.append(self._predict_chunk(chunk, stage))
            except torch.cuda.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)  # the largest batch that fits, found by halving
                torch.cuda.empty_cache()
                continue
            start += len(chunk)
        return np.concatenate(out) if out else np.empty((0, FRAMES, SIZE, SIZE, 3), np.uint8)

    def _predict_chunk(self, squares: np.ndarray, stage: int) -> np.ndarray:
        if self.fast is None:
            x = to_model_input(squares).to(self.device)
            return to_uint8_video(self.model(x, stage=stage))
        # uint8 crosses to the GPU (4x fewer bytes than float), from pinned memory, without blocking
        u8 = torch.from_numpy(np.require(squares, np.uint8, ["C", "W"]))
        if self.device.type == "cuda":
            u8 = u8.pin_memory().to(self.device, non_blocking=True)
        return to_uint8_video(self.fast(_from_uint8(u8), stage=stage))

    def __call__(
        self, photos: Sequence[PhotoLike] | PhotoLike, stage: int = 2, batch_size: int = 8
    ) -> list[np.ndarray]:
        """Predict one video per photo (paths, PIL images, HxWx3 uint8 arrays or loaded ``Photo``s)."""
        return list(self.predict_squares(model_squares(photos), stage=stage, batch_size=batch_size))
