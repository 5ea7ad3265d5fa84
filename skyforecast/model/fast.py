"""Inference-only speedups for MD-GAN that keep the outputs of the trained networks (within 1e-3).

Why each trick is here (measured with ``python bench/run.py``):

* **BatchNorm folded into the convolution before it.** In eval mode BatchNorm is a per-channel affine map,
  so it can be merged into the weights and a bias of the preceding ``Conv3d`` (scale output channels, dim 0)
  or ``ConvTranspose3d`` (weight is (in, out, k...): scale dim 1). BN directly follows every convolution in
  the generator and the skip additions come after the activation, so the fold is exact. Models using batch
  statistics (``batch_stats=True``) cannot be folded and are run unchanged.
* **Prepacked oneDNN weights with the activation fused** (CPU). Plain ``F.conv3d`` re-lays the weights
  out into oneDNN's blocked format on *every* call; for the deep layers (8M weights, a few thousand output
  voxels) that reorder costs 10x the arithmetic. Packing once (first call) and fusing LeakyReLU/ReLU/tanh
  into the convolution removes it.
* **Temporal shortcut for the static input** (Base-Net only). The input video is one photo repeated 32
  times. Every encoder convolution pads T by 1, so its output is constant in time except the first and last
  frames -- and that stays true through conv4. We therefore compute each encoder level on 3 frames
  ``[first, middle, last]`` instead of 32/16/8/4; the skip connections add the middle frame to the whole
  middle range. This is algebraically exact and saves about 6 of the 37 GFLOP per clip at ngf=32.
* **channels_last_3d** memory layout, which oneDNN and cuDNN prefer for 3D convolutions.
* **The last layer as a plain convolution** (CPU): oneDNN is slow on a transposed convolution with 3
  output channels; the same layer as a stride-1 convolution with 12 outputs + depth-to-space is faster.
* **No weight packing for a single call** (CPU). Packing (oneDNN's reorder of a weight into its blocked
  layout) costs about as much as one call of the layer; for the four deep layers (34 MB of weights each at
  ngf=32, at most 32 output voxels per clip) it costs 5-50x the arithmetic. Their first call per input size
  therefore runs as one matrix product on the weights as loaded, and packing waits for a second call: a
  one-photo run never packs them, a folder packs them once its second batch comes.
* **Loaded straight into the folded form**: ``FastMDGAN.from_files`` reads each stored (fp16) tensor and
  folds it into an fp32 weight in one step; the eager network is not built at all.
* On CUDA: autocast (bf16 where supported, else fp16), ``cudnn.benchmark``; see ``SkyPipeline`` for pinned
  memory and non-blocking copies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..io.constants import FRAMES
from .architecture import BN_EPS, BN_KEYS, GENERATOR_BLOCKS, OUTER_SKIPS, Block, decode, state_shapes

if TYPE_CHECKING:
    from .networks import MDGAN, Generator
    from .weights import ModelFiles

CL = torch.channels_last_3d
# A layer with at most this many rows in its matrix product per clip (output voxels of a convolution, input
# voxels of a transposed one) is bound by reading its weights: see ``_Conv.gemm_call``.
GEMM_ROWS = 32


class FastPathError(ValueError):
    """A model the fast path cannot transform faithfully (e.g. one that needs batch statistics)."""


@functools.cache
def onednn_available() -> bool:
    """True when the prepacked oneDNN convolution ops exist and agree with ``F.conv3d`` on this build.

    These ops (``torch.ops.mkldnn._convolution_pointwise`` and friends) are what ``torch.compile`` emits
    for CPU convolutions; they are not a documented public API, so we probe them once and fall back to
    ``F.conv3d`` if anything is off."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, 4, 8, 8, generator=g).contiguous(memory_format=CL)
        w = torch.randn(4, 3, 3, 3, 3, generator=g)
        b = torch.randn(4, generator=g)
        layer = _Conv(False, w, b, [1, 1, 1], [1, 1, 1], "leaky_relu")
        ok = torch.allclose(layer.packed_call(x), F.leaky_relu(F.conv3d(x, w, b, 1, 1), 0.2), atol=1e-4)
        wt = torch.randn(3, 4, 4, 4, 4, generator=g)
        layer = _Conv(True, wt, b, [2, 2, 2], [1, 1, 1], "relu")
        ok = ok and torch.allclose(layer.packed_call(x), F.conv_transpose3d(x, wt, b, 2, 1).relu(), atol=1e-4)
        return bool(ok)
    except Exception:  # any missing op / unsupported layout means: use the plain path
        return False


@dataclass
class _Conv:
    """One (transposed) 3D convolution with BN already folded in and its activation, ready for inference."""

    transposed: bool
    weight: torch.Tensor
    bias: torch.Tensor
    stride: list[int]
    padding: list[int]
    act: str  # none | relu | leaky_relu | tanh
    packed: dict[tuple, torch.Tensor] = field(default_factory=dict)  # prepacked oneDNN weight by input size
    subpixel: _Conv | None = None  # the same layer as a plain convolution + depth-to-space, when faster
    unpacked_calls: set[tuple] = field(default_factory=set)  # input sizes already run by ``gemm_call``

    def plain_call(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weight, self.bias
        if self.transposed:
            y = F.conv_transpose3d(x, w, b, self.stride, self.padding)
        else:
            y = F.conv3d(x, w, b, self.stride, self.padding)
        return _activate(y, self.act)

    def gemm_rows(self, size: tuple[int, ...]) -> int:
        """Rows per clip of this layer's matrix product for an input of ``size`` (T, H, W)."""
        if self.transposed:
            return size[0] * size[1] * size[2]
        k = self.weight.shape[2:]
        out = [
            (n + 2 * p - kk) // s + 1 for n, p, kk, s in zip(size, self.padding, k, self.stride, strict=True)
        ]
        return out[0] * out[1] * out[2]

    def gemm_call(self, x: torch.Tensor) -> torch.Tensor:
        """The layer as one matrix product on the weight as stored (no packing), for weight-bound layers.

        Convolution: the input's windows (im2col, channels_last order) times the weight viewed as
        (out, in * kernel). Transposed convolution: each input voxel times the weight viewed as
        (in, out * kernel) gives every kernel tap's contribution, which is added at its output position
        (col2im), the taps grouped by their position within the stride so that it takes few additions."""
        n = x.shape[0]
        w = self.weight
        if not self.transposed:
            cout = w.shape[0]
            k = w.shape[2:]
            xt = x.permute(0, 2, 3, 4, 1)  # (N, T, H, W, C): contiguous for a channels_last_3d input
            pt, ph, pw = self.padding
            if pt or ph or pw:
                xt = F.pad(xt, (0, 0, pw, pw, ph, ph, pt, pt))
            for dim, (kk, s) in enumerate(zip(k, self.stride, strict=True), start=1):
                xt = xt.unfold(dim, kk, s)  # -> (N, To, Ho, Wo, C, kt, kh, kw)
            to, ho, wo = xt.shape[1:4]
            cols = xt.reshape(n * to * ho * wo, -1)
            y = torch.addmm(self.bias, cols, w.view(cout, -1).t()).view(n, to, ho, wo, cout)
            return _activate(y.permute(0, 4, 1, 2, 3), self.act)
        cin, cout, kt, kh, kw = w.shape
        t, h, wd = x.shape[2:]
        st, sh, sw = self.stride
        if kt % st or kh % sh or kw % sw:  # taps do not group by stride position: not a case in MD-GAN
            return self.plain_call(x)
        qt, qh, qw = kt // st, kh // sh, kw // sw
        cols = x.permute(0, 2, 3, 4, 1).reshape(n * t * h * wd, cin)
        taps = torch.mm(cols, w.view(cin, -1)).view(n, t, h, wd, cout, qt, st, qh, sh, qw, sw)
        # output position o = s * i + k with k = s * q + r, i.e. o = s * (i + q) + r: view the (uncropped)
        # output as (N, T + qt - 1, st, H + qh - 1, sh, W + qw - 1, sw, C); each q adds one block
        full = x.new_zeros(n, t + qt - 1, st, h + qh - 1, sh, wd + qw - 1, sw, cout)
        for a in range(qt):
            for b in range(qh):
                for c in range(qw):
                    block = taps[:, :, :, :, :, a, :, b, :, c, :].permute(0, 1, 5, 2, 6, 3, 7, 4)
                    full[:, a : a + t, :, b : b + h, :, c : c + wd].add_(block)
        full = full.view(n, st * (t + qt - 1), sh * (h + qh - 1), sw * (wd + qw - 1), cout)
        pt, ph, pw = self.padding
        y = full[:, pt : full.shape[1] - pt, ph : full.shape[2] - ph, pw : full.shape[3] - pw].add_(self.bias)
        return _activate(y.permute(0, 4, 1, 2, 3), self.act)

    def packed_call(self, x: torch.Tensor) -> torch.Tensor:
        ops = torch.ops.mkldnn
        shape = list(x.shape)
        key = tuple(shape[2:])  # measured: a weight packed for batch 1 runs batch 8 just as fast
        w = self.packed.get(key)
        if w is None and key not in self.unpacked_calls and self.gemm_rows(key) <= GEMM_ROWS:
            self.unpacked_calls.add(key)  # first call for this size: skip packing (see module docstring)
            return self.gemm_call(x)
        if w is None:  # packed once per input size (T, H, W), reused for every later call
            if self.transposed:
                w = ops._reorder_convolution_transpose_weight(
                    self.weight, self.padding, [0, 0, 0], self.stride, [1, 1, 1], 1, shape
                )
            else:
                w = ops._reorder_convolution_weight(
                    self.weight, self.padding, self.stride, [1, 1, 1], 1, shape
                )
            self.packed[key] = w
        scalars = [0.2] if self.act == "leaky_relu" else []
        if self.transposed:
            return ops._convolution_transpose_pointwise(
                x, w, self.bias, self.padding, [0, 0, 0], self.stride, [1, 1, 1], 1, self.act, scalars, ""
            )
        return ops._convolution_pointwise(
            x, w, self.bias, self.padding, self.stride, [1, 1, 1], 1, self.act, scalars, ""
        )


def _activate(y: torch.Tensor, act: str) -> torch.Tensor:
    if act == "relu":
        return y.relu_()
    if act == "leaky_relu":
        return F.leaky_relu_(y, 0.2)
    if act == "tanh":
        return y.tanh_()
    return y


def _fold(conv: nn.Module, bn: nn.BatchNorm3d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution."""
    stats = None
    if bn is not None:
        stats = (bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var, bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else None
    return _fold_tensors(conv.weight.detach(), bias, stats, isinstance(conv, nn.ConvTranspose3d))


def _fold_tensors(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: tuple | None, transposed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_fold`` on tensors: ``bn`` is (weight, bias, running_mean, running_var, eps) or None. The
    per-channel factors are computed in fp64; the weight is scaled in fp32 (one rounding, relative 6e-8),
    which keeps loading fast and small."""
    cout = weight.shape[1] if transposed else weight.shape[0]
    b = bias.double() if bias is not None else torch.zeros(cout, dtype=torch.float64)
    if bn is None:
        return weight.float().contiguous(), b.float()
    gamma, beta, mean, var, eps = bn
    scale = gamma.double() / torch.sqrt(var.double() + eps)
    shift = beta.double() - mean.double() * scale
    shape = (1, cout, 1, 1, 1) if transposed else (cout, 1, 1, 1, 1)
    factor = scale.float().view(shape)
    if weight.dtype == torch.float32:
        w = weight * factor  # a new tensor: the module's own weight stays as it is
    else:  # stored fp16/bf16: widen (a fresh copy) and scale it in place; 2x faster than a mixed-dtype mul
        w = weight.float().mul_(factor)
    return w.contiguous(), (b * scale + shift).float()


def _layer(module: nn.Module, blk: Block) -> _Conv:
    """Turn one generator block, built from ``blk`` (conv [+ BN] [+ activation]), into one ``_Conv``."""
    conv = module[0] if blk.sequential else module
    w, b = _fold(conv, module[1] if blk.batchnorm else None)
    return _Conv(blk.transposed, w, b, list(blk.stride), list(blk.padding), blk.act)


def _layer_from_state(get: Callable[[str], torch.Tensor], prefix: str, blk: Block) -> _Conv:
    stats = None
    if blk.batchnorm:
        gamma, beta, mean, var = (get(f"{prefix}{blk.name}.1.{k}") for k in BN_KEYS[:4])
        stats = (gamma, beta, mean, var, BN_EPS)
    w, b = _fold_tensors(get(prefix + blk.prefix + "weight"), None, stats, blk.transposed)
    return _Conv(blk.transposed, w, b, list(blk.stride), list(blk.padding), blk.act)


class FastGenerator:
    """A ``Generator`` with BN folded, for inference only. ``forward`` takes any video; ``forward_static``
    takes a batch of photos (N,3,H,W) and returns the same as ``forward`` on the photo repeated in time."""

    def __init__(self, g: Generator, onednn: bool, channels_last: bool, subpixel: bool = True):
        if any(isinstance(m, nn.BatchNorm3d) and not m.track_running_stats for m in g.modules()):
            raise FastPathError("BatchNorm without running statistics cannot be folded")
        layers = [_layer(getattr(g, blk.name), blk) for blk in GENERATOR_BLOCKS]
        self._setup(layers[:6], layers[6:], g.outer_skips, onednn, channels_last, subpixel)

    @classmethod
    def from_layers(
        cls,
        layers: list[_Conv],
        outer_skips: bool,
        onednn: bool,
        channels_last: bool,
        subpixel: bool = True,
    ) -> FastGenerator:
        """From the 12 folded layers in ``GENERATOR_BLOCKS`` order (encoder, then decoder)."""
        self = cls.__new__(cls)
        self._setup(layers[:6], layers[6:], outer_skips, onednn, channels_last, subpixel)
        return self

    def _setup(self, enc, dec, outer_skips: bool, onednn: bool, channels_last: bool, subpixel: bool) -> None:
        self.outer_skips = outer_skips
        self.enc = enc
        self.dec = dec
        self.onednn = onednn
        self.channels_last = channels_last
        if onednn and subpixel:
            last = self.dec[-1]
            if last.transposed and last.stride == [1, 2, 2] and list(last.weight.shape[2:]) == [3, 4, 4]:
                last.subpixel = _subpixel_conv(last)

    def to(self, device: torch.device) -> FastGenerator:
        if all(layer.weight.device == torch.device(device) for layer in self.enc + self.dec):
            return self  # already there: keep the packed weights and the sub-pixel form
        for layer in self.enc + self.dec:
            layer.weight = layer.weight.to(device)
            layer.bias = layer.bias.to(device)
            layer.packed.clear()
            if layer.subpixel is not None:
                layer.subpixel = _subpixel_conv(layer)
        return self

    def _run(self, layer: _Conv, x: torch.Tensor) -> torch.Tensor:
        if self.onednn and x.device.type == "cpu" and x.dtype == torch.float32:
            if layer.subpixel is not None:
                return _depth_to_space(layer.subpixel.packed_call(x))
            return layer.packed_call(x)
        return layer.plain_call(x)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=CL) if self.channels_last else x.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._layout(x)
        e1 = self._run(self.enc[0], x)
        e2 = self._run(self.enc[1], e1)
        e3 = self._run(self.enc[2], e2)
        e4 = self._run(self.enc[3], e3)
        return self._decode(e1, e2, e3, e4, _add)

    __call__ = forward

    def forward_static(self, img: torch.Tensor, frames: int) -> torch.Tensor:
        """Photos (N,3,H,W) -> the generator's output for each photo repeated ``frames`` times.

        Encoder levels 1-4 are computed on 3 frames [first, middle, last] (see the module docstring);
        ``_add_compact`` adds such a level to a full-length decoder activation."""
        if frames < 24 or frames % 16:
            return self.forward(img.unsqueeze(2).expand(-1, -1, frames, -1, -1))
        # conv1 (kernel 3 in T, padding 1) on 3 identical frames gives exactly [first, middle, last]
        c1 = self._run(self.enc[0], self._layout(img.unsqueeze(2).expand(-1, -1, 3, -1, -1)))
        c2 = self._run(self.enc[1], self._widen(c1))  # kernel 4, stride 2, pad 1 on [a,m,m,m,m,b]
        c3 = self._run(self.enc[2], self._widen(c2))
        c4 = self._run(self.enc[3], self._widen(c3))
        e4 = self._expand(c4, frames // 8)
        return self._decode(c1, c2, c3, e4, _add_compact)

    def _widen(self, c: torch.Tensor) -> torch.Tensor:
        """[a, m, b] -> [a, m, m, m, m, b]: the shortest sequence on which a (4, stride 2, pad 1) convolution
        yields first, middle and last output frames of the full-length sequence."""
        return self._expand(c, 6)

    def _expand(self, c: torch.Tensor, length: int) -> torch.Tensor:
        """[a, m, b] -> [a, m x (length - 2), b], written into one buffer (2x faster than ``torch.cat`` of
        channels_last slices)."""
        n, ch, _, h, w = c.shape
        fmt = CL if self.channels_last else torch.contiguous_format
        out = torch.empty((n, ch, length, h, w), dtype=c.dtype, device=c.device, memory_format=fmt)
        out[:, :, :1].copy_(c[:, :, :1])
        out[:, :, 1:-1].copy_(c[:, :, 1:2].expand(-1, -1, length - 2, -1, -1))
        out[:, :, -1:].copy_(c[:, :, 2:])
        return out

    def _decode(self, e1, e2, e3, e4, add3) -> torch.Tensor:
        layers = [functools.partial(self._run, layer) for layer in self.enc + self.dec]
        return decode(layers, (e1, e2, e3, e4), self.outer_skips, _add, add3)


def _subpixel_conv(layer: _Conv) -> _Conv:
    """The last layer (transposed conv, kernel (3,4,4), stride (1,2,2), padding 1, 3 output channels) as a
    plain convolution with kernel 3 and 4x the output channels, one per (row, column) parity of the output.

    oneDNN runs the transposed form with 3 output channels at a fraction of its usual speed; the plain form
    does 2.25x the multiply-adds (zeros in the kernel) and is still faster. With o = 2 i - 1 + k, output row
    2j takes input rows j (k=1) and j-1 (k=3); row 2j+1 takes j+1 (k=0) and j (k=2). In time (stride 1) it
    is the kernel flipped."""
    w = layer.weight  # (cin, cout, 3, 4, 4)
    cin, cout = w.shape[:2]
    taps = ({0: 3, 1: 1}, {1: 2, 2: 0})  # parity -> {plain-conv tap: transposed-conv tap}
    out = w.new_zeros(2, 2, cout, cin, 3, 3, 3)
    for rh in (0, 1):
        for rw in (0, 1):
            for jh, kh in taps[rh].items():
                for jw, kw in taps[rw].items():
                    out[rh, rw, :, :, :, jh, jw] = w[:, :, :, kh, kw].flip(2).permute(1, 0, 2)
    weight = out.reshape(4 * cout, cin, 3, 3, 3).contiguous()
    return _Conv(False, weight, layer.bias.repeat(4), [1, 1, 1], [1, 1, 1], layer.act)


def _depth_to_space(y: torch.Tensor) -> torch.Tensor:
    """(N, 4C, T, H, W) with channels ordered (row parity, column parity, C) -> (N, C, T, 2H, 2W), laid out
    channels_last_3d (what the uint8 conversion reads fastest)."""
    n, c4, t, h, w = y.shape
    c = c4 // 4
    out = torch.empty((n, c, t, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=CL)
    # out as (N, T, H, 2, W, 2, C) <- y as (N, T, H, row parity, W, column parity, C)
    out.permute(0, 2, 3, 4, 1).view(n, t, h, 2, w, 2, c).copy_(
        y.view(n, 2, 2, c, t, h, w).permute(0, 4, 5, 1, 6, 2, 3)
    )
    return out


def _add(d: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return d.add_(e)


def _add_compact(d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """d (N,C,T,H,W) += the full-length sequence [c0, c1 x (T-2), c2] without building it."""
    d[:, :, :1] += c[:, :, :1]
    d[:, :, 1:-1] += c[:, :, 1:2]
    d[:, :, -1:] += c[:, :, 2:3]
    return d


class FastMDGAN:
    """The two-stage model prepared for fast inference. Call it with photos in [-1, 1], (N,3,H,W).

    ``precision``: ``fp32`` (default on CPU; matches the reference within 1e-3), ``bf16``/``fp16`` (autocast;
    default ``auto`` picks bf16 or fp16 on CUDA). ``temporal_shortcut``, ``channels_last``, ``onednn`` and
    ``subpixel`` switch the individual optimisations (all on where they apply), so each can be measured alone.
    """

    def __init__(
        self,
        model: MDGAN,
        device: str | torch.device = "cpu",
        *,
        precision: str = "auto",
        channels_last: bool = True,
        onednn: bool | None = None,
        temporal_shortcut: bool = True,
        subpixel: bool = True,
        frames: int = FRAMES,
    ):
        if model.batch_stats:
            raise FastPathError("this model normalises with batch statistics (batch_stats=True); not folded")
        self._configure(model.ngf, device, precision, onednn, temporal_shortcut, frames)
        self.refine_ngf = model.refine_ngf if model.refine_ngf != model.ngf else None
        self.base = FastGenerator(model.base, self.onednn, channels_last, subpixel).to(self.device)
        self.refine = FastGenerator(model.refine, self.onednn, channels_last, subpixel).to(self.device)

    @classmethod
    def from_files(
        cls,
        files: ModelFiles,
        device: str | torch.device = "cpu",
        *,
        precision: str = "auto",
        channels_last: bool = True,
        onednn: bool | None = None,
        temporal_shortcut: bool = True,
        subpixel: bool = True,
        frames: int = FRAMES,
    ) -> FastMDGAN:
        """Load a model folder (``weights.locate``) straight into the folded layers, tensor by tensor.

        The eager network is never built: no random initialisation, no fp32 copy of the stored weights,
        and huggingface_hub is not imported. Names and shapes are checked against ``models.state_shapes``
        before any tensor is read, as strictly as ``weights.load_state``."""
        if files.batch_stats:
            raise FastPathError("this model normalises with batch statistics (batch_stats=True); not folded")
        from .weights import open_tensors

        self = cls.__new__(cls)
        self._configure(files.ngf, device, precision, onednn, temporal_shortcut, frames)
        self.refine_ngf = files.refine_ngf
        with open_tensors(files, state_shapes(files.ngf, files.refine_ngf)) as get:
            for name, outer_skips in OUTER_SKIPS.items():
                layers = [_layer_from_state(get, f"{name}.", blk) for blk in GENERATOR_BLOCKS]
                g = FastGenerator.from_layers(layers, outer_skips, self.onednn, channels_last, subpixel)
                setattr(self, name, g.to(self.device))
        return self

    def _configure(self, ngf, device, precision, onednn, temporal_shortcut, frames) -> None:
        self.device = torch.device(device)
        self.ngf = ngf
        self.batch_stats = False
        self.frames = frames
        self.precision = resolve_precision(precision, self.device)
        if onednn is None:
            onednn = self.device.type == "cpu" and onednn_available()
        self.onednn = bool(onednn) and self.device.type == "cpu" and self.precision == "fp32"
        self.temporal_shortcut = temporal_shortcut
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self._compiled = None

    def compile(self, **kwargs) -> FastMDGAN:
        """Wrap the forward pass in ``torch.compile``; inductor then lowers the plain convolutions itself.

        Measured on a 2-core AMD EPYC CPU (``bench/run.py --compile``): about 2 minutes to compile and slower
        than the prepacked oneDNN path afterwards, so it is off by default. It is meant for long GPU runs,
        where it was not measured (no GPU was available)."""
        self.base.onednn = self.refine.onednn = False
        self._compiled = torch.compile(self._forward, dynamic=False, **kwargs)
        return self

    def __call__(self, img: torch.Tensor, stage: int = 2) -> torch.Tensor:
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        fn = self._compiled or self._forward
        with torch.inference_mode(), _autocast(self.device, self.precision):
            return fn(img, stage)

    def _forward(self, img: torch.Tensor, stage: int) -> torch.Tensor:
        if self.temporal_shortcut:
            y = self.base.forward_static(img, self.frames)
        else:
            y = self.base.forward(img.unsqueeze(2).expand(-1, -1, self.frames, -1, -1))
        return y if stage == 1 else self.refine.forward(y)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA GPUs that support it, fp16 on other GPUs, fp32 elsewhere."""
    precision = (precision or "auto").lower()
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    return precision


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX); without them bf16 on
    CPU is emulated and slower than fp32."""
    try:
        flags = open("/proc/cpuinfo", encoding="ascii", errors="ignore").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
