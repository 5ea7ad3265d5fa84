"""MD-GAN inference on numpy alone, so that a one-photo ``predict`` never imports torch.

Why it exists: importing torch costs 1.0-1.7 s on a laptop-class CPU, more than the rest of a one-photo run
(see docs/performance.md). The default model is narrow (``ngf=8``): its two generators need about 0.2 s of
numpy matrix products per clip. So for one photo on the CPU this engine has its video before torch
would have finished importing. For folders torch's prepacked oneDNN kernels (``fast``) are several times
faster per clip, and torch's import hides the first photos' sky masks: from two photos on, torch is as
fast or faster; ``engines.pick_engine`` chooses.

It computes what ``fast.FastMDGAN`` computes, the same way: BatchNorm folded into the convolution before
it, and Base-Net's encoder on 3 frames (the input is one photo repeated in time). Per clip, activations
are channels-first (C, T, H, W), so every layer is a few matrix products on operands BLAS reads in place:

- convolution: the spatial windows of every input frame are gathered once (one strided copy per spatial
  tap, into (C * kh * kw, T, Ho * Wo)); each temporal tap multiplies its (Cout, C * kh * kw) weights with a
  strided view of the frames it reads, so no window is copied once per temporal tap (for the first layer
  that is 3x less copying);
- transposed convolution: (taps * Cout, Cin) @ (Cin, T * H * W) gives every tap's contribution. With
  output position o = s * i + k and k = s * q + r, the taps that share q add as one shifted block into an
  output kept phase-major, (Cout, st, sh, sw, T', H', W'); one copy at the end interleaves the phases.

Outputs agree with the torch engine within float rounding (up to 4e-6; ``tests/test_numpy_engine.py``).
Models normalised with batch statistics cannot be folded and need the torch engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..io.constants import FRAMES, SIZE
from ..io.media import model_squares
from .architecture import (
    BN_EPS,
    BN_KEYS,
    GENERATOR_BLOCKS,
    OUTER_SKIPS,
    Block,
    decode,
    model_config,
    state_shapes,
)
from .weights import ModelFiles, WeightsError, locate, open_tensors

__all__ = ["NumpyGenerator", "NumpyMDGAN", "NumpyPipeline"]


@dataclass
class _Layer:
    """One (transposed) convolution with BatchNorm folded in, its weight laid out for matrix products:
    (kt, Cout, Cin * kh * kw) for a convolution, (qt * qh * qw * Cout * st * sh * sw, Cin) for a transposed
    one (see the module docstring)."""

    block: Block
    matrix: np.ndarray
    bias: np.ndarray  # (Cout, 1, 1, 1)
    cout: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self._transposed(x) if self.block.transposed else self._conv(x)
        return _activate(y, self.block.act)

    def _conv(self, x: np.ndarray) -> np.ndarray:
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = self.block.kernel, self.block.stride, self.block.padding
        c, t, h, w = x.shape
        if pt or ph or pw:
            padded = np.zeros((c, t + 2 * pt, h + 2 * ph, w + 2 * pw), np.float32)
            padded[:, pt : pt + t, ph : ph + h, pw : pw + w] = x
            x = padded
        tp, hp, wp = x.shape[1:]
        to, ho, wo = (tp - kt) // st + 1, (hp - kh) // sh + 1, (wp - kw) // sw + 1
        # the spatial windows of every input frame, once; each temporal tap then reads its frames as a view
        cols = np.empty((c, kh, kw, tp, ho, wo), np.float32)
        for b in range(kh):
            for d in range(kw):
                cols[:, b, d] = x[:, :, b : b + sh * ho : sh, d : d + sw * wo : sw]
        cols = cols.reshape(c * kh * kw, tp, ho * wo)
        y = None
        for a in range(kt):  # (Cout, K) @ (To, K, Ho * Wo): one matrix product per output frame, no copy
            part = np.matmul(self.matrix[a], cols[:, a : a + st * to : st].transpose(1, 0, 2))
            y = part if y is None else np.add(y, part, out=y)
        y = np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(self.cout, to, ho, wo)
        y += self.bias
        return y

    def _transposed(self, x: np.ndarray) -> np.ndarray:
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = self.block.kernel, self.block.stride, self.block.padding
        qt, qh, qw = kt // st, kh // sh, kw // sw
        cin, t, h, w = x.shape
        x2d = x.reshape(cin, -1)
        groups = self.matrix.reshape(qt, qh, qw, -1, cin)
        full = np.zeros((self.cout, st, sh, sw, t + qt - 1, h + qh - 1, w + qw - 1), np.float32)
        # one group of taps at a time: a buffer a twelfth of all taps' size stays in the cache
        taps = np.empty((groups.shape[3], x2d.shape[1]), np.float32)
        for a in range(qt):
            for b in range(qh):
                for d in range(qw):
                    np.matmul(groups[a, b, d], x2d, out=taps)
                    full[..., a : a + t, b : b + h, d : d + w] += taps.reshape(self.cout, st, sh, sw, t, h, w)
        # (Cout, st, sh, sw, T', H', W') -> (Cout, T' st, H' sh, W' sw), cropped by the padding
        size = [n * s for n, s in zip(full.shape[4:], (st, sh, sw), strict=True)]
        y = full.transpose(0, 4, 1, 5, 2, 6, 3).reshape(self.cout, *size)
        y = np.ascontiguousarray(y[:, pt : size[0] - pt, ph : size[1] - ph, pw : size[2] - pw])
        y += self.bias
        return y


def _activate(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        np.maximum(y, 0.0, out=y)
    elif act == "leaky_relu":
        np.maximum(y, np.float32(0.2) * y, out=y)
    elif act == "tanh":
        np.tanh(y, out=y)
    return y


def _layer(get: Callable[[str], np.ndarray], prefix: str, block: Block) -> _Layer:
    """Read one block's stored tensors (any float dtype) and fold its BatchNorm into an fp32 layer; the
    per-channel factors in fp64, as ``fast._fold_tensors`` does."""
    weight = get(prefix + block.prefix + "weight").astype(np.float32)
    cout = weight.shape[1] if block.transposed else weight.shape[0]
    shift = np.zeros(cout)
    if block.batchnorm:
        gamma, beta, mean, var = (get(f"{prefix}{block.name}.1.{k}").astype(np.float64) for k in BN_KEYS[:4])
        scale = gamma / np.sqrt(var + BN_EPS)
        shift = beta - mean * scale
        weight *= scale.astype(np.float32).reshape((1, -1, 1, 1, 1) if block.transposed else (-1, 1, 1, 1, 1))
    if block.transposed:
        (kt, kh, kw), (st, sh, sw) = block.kernel, block.stride
        if kt % st or kh % sh or kw % sw:  # every MD-GAN layer's taps group by their place in the stride
            raise ValueError(f"{block.name}: kernel {block.kernel} is no multiple of stride {block.stride}")
        cin = weight.shape[0]
        grouped = weight.reshape(cin, cout, kt // st, st, kh // sh, sh, kw // sw, sw)
        matrix = grouped.transpose(2, 4, 6, 1, 3, 5, 7, 0).reshape(-1, cin)
    else:  # one (Cout, Cin * kh * kw) matrix per temporal tap
        matrix = weight.transpose(2, 0, 1, 3, 4).reshape(block.kernel[0], cout, -1)
    bias = shift.astype(np.float32).reshape(-1, 1, 1, 1)
    return _Layer(block, np.ascontiguousarray(matrix), bias, cout)


class NumpyGenerator:
    """One generator (Base-Net or Refine-Net) with BatchNorm folded; one clip (C, T, H, W) at a time."""

    def __init__(self, layers: Sequence[_Layer], outer_skips: bool):
        if [layer.block for layer in layers] != list(GENERATOR_BLOCKS):
            raise ValueError("layers must follow GENERATOR_BLOCKS")
        self.enc, self.dec = list(layers[:6]), list(layers[6:])
        self.outer_skips = outer_skips

    def forward(self, x: np.ndarray) -> np.ndarray:
        e1 = self.enc[0](x)
        e2 = self.enc[1](e1)
        e3 = self.enc[2](e2)
        e4 = self.enc[3](e3)
        return self._decode(e1, e2, e3, e4, _add)

    __call__ = forward

    def forward_static(self, photo: np.ndarray, frames: int) -> np.ndarray:
        """A photo (3, H, W) -> the output for it repeated ``frames`` times, the encoder's levels 1-4 on
        3 frames [first, middle, last] (``fast.FastGenerator.forward_static`` explains why that is exact)."""
        if frames < 24 or frames % 16:
            return self.forward(_repeat(photo, frames))
        c1 = self.enc[0](_repeat(photo, 3))
        c2 = self.enc[1](_expand(c1, 6))  # kernel 4, stride 2, pad 1 on [a, m, m, m, m, b]: [a', m', b']
        c3 = self.enc[2](_expand(c2, 6))
        c4 = self.enc[3](_expand(c3, 6))
        return self._decode(c1, c2, c3, _expand(c4, frames // 8), _add_compact)

    def _decode(self, e1, e2, e3, e4, add3) -> np.ndarray:
        return decode(self.enc + self.dec, (e1, e2, e3, e4), self.outer_skips, _add, add3)


def _repeat(photo: np.ndarray, frames: int) -> np.ndarray:
    """(C, H, W) -> (C, frames, H, W): the static video."""
    return np.ascontiguousarray(np.broadcast_to(photo[:, None], (photo.shape[0], frames, *photo.shape[1:])))


def _expand(c: np.ndarray, length: int) -> np.ndarray:
    """[a, m, b] in time -> [a, m x (length - 2), b]."""
    out = np.empty((c.shape[0], length, *c.shape[2:]), c.dtype)
    out[:, :1], out[:, 1:-1], out[:, -1:] = c[:, :1], c[:, 1:2], c[:, 2:]
    return out


def _add(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    d += e
    return d


def _add_compact(d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """d (C, T, H, W) += the full-length sequence [c0, c1 x (T - 2), c2] without building it."""
    d[:, :1] += c[:, :1]
    d[:, 1:-1] += c[:, 1:2]
    d[:, -1:] += c[:, 2:3]
    return d


class NumpyMDGAN:
    """Base-Net and Refine-Net for inference on numpy. Call it with photos in [-1, 1], (N, 3, H, W)
    float32; it returns (N, 3, T, H, W), as ``FastMDGAN`` does."""

    def __init__(self, base: NumpyGenerator, refine: NumpyGenerator, frames: int = FRAMES):
        self.base, self.refine, self.frames = base, refine, frames

    @classmethod
    def from_files(cls, files: ModelFiles, frames: int = FRAMES) -> NumpyMDGAN:
        """Load a model folder (``weights.locate``) tensor by tensor into the folded layers, with the same
        checks as the torch engines (names, shapes, finite values), without importing torch."""
        if files.batch_stats:
            raise WeightsError(
                f"{files.label} normalises with batch statistics (batch_stats=True): the numpy engine "
                "cannot fold it; use the torch engine"
            )
        generators = {}
        with open_tensors(files, state_shapes(files.ngf, files.refine_ngf), framework="numpy") as get:
            for name, outer_skips in OUTER_SKIPS.items():
                layers = [_layer(get, f"{name}.", block) for block in GENERATOR_BLOCKS]
                generators[name] = NumpyGenerator(layers, outer_skips)
        return cls(generators["base"], generators["refine"], frames)

    def __call__(self, photos: np.ndarray, stage: int = 2) -> np.ndarray:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        out = []
        for photo in np.asarray(photos, np.float32):
            y = self.base.forward_static(photo, self.frames)
            out.append(y if stage == 1 else self.refine(y))
        return np.stack(out)


class NumpyPipeline:
    """``SkyPipeline``'s prediction (``predict_squares``, calling it on photos) on the numpy engine: what
    ``predict`` uses for one photo on the CPU (``engines.pick_engine``)."""

    device = "cpu (numpy)"  # what a rank's summary line says it ran on
    engine = "numpy"

    def __init__(self, model: NumpyMDGAN, files: ModelFiles):
        self.model = model
        self.ngf, self.batch_stats, self.refine_ngf = files.ngf, files.batch_stats, files.refine_ngf

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike | None = None) -> NumpyPipeline:
        """Load weights by the project's one rule (``skyforecast.model.weights``)."""
        files = locate(weights)
        return cls(NumpyMDGAN.from_files(files), files)

    @property
    def config(self) -> dict:
        return model_config(self.ngf, self.batch_stats, self.refine_ngf)

    def predict_squares(self, squares: np.ndarray, stage: int = 2, batch_size: int = 8) -> np.ndarray:
        """(N,128,128,3) uint8 squares -> (N,32,128,128,3) uint8 videos (one clip at a time: the matrix
        products of one clip already use every core)."""
        if squares.ndim != 4 or squares.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"expected (N,{SIZE},{SIZE},3) uint8 squares, got {squares.shape}")
        videos = np.empty((len(squares), self.model.frames, SIZE, SIZE, 3), np.uint8)
        for i, square in enumerate(squares):
            photo = square.transpose(2, 0, 1).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
            y = self.model(photo[None], stage=stage)[0]  # (3, T, H, W) in [-1, 1]
            videos[i] = _to_uint8(y).transpose(1, 2, 3, 0)
        return videos

    def __call__(self, photos, stage: int = 2, batch_size: int = 8) -> list[np.ndarray]:
        """Predict one video per photo (paths, PIL images, HxWx3 uint8 arrays or loaded ``Photo``s)."""
        return list(self.predict_squares(model_squares(photos), stage=stage, batch_size=batch_size))


def _to_uint8(y: np.ndarray) -> np.ndarray:
    """[-1, 1] -> uint8, rounding half to even as ``pipeline.to_uint8_video`` does."""
    y = np.clip(y, -1.0, 1.0)
    y += np.float32(1.0)
    y *= np.float32(127.5)
    return np.rint(y, out=y).astype(np.uint8)
