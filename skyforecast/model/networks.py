"""The MD-GAN networks: the 3D U-Net generator (Base-Net / Refine-Net), the video discriminator, and the
two-stage model object.

Layer settings follow ``MDGAN-SPEC.md`` (Xiong et al., CVPR 2018). Tensors are laid out N, C, T, H, W
with values in [-1, 1]; a clip is 32 frames of 128x128.

Networks only: saving, loading and the Hub live in ``weights``, which imports this module, never the
other way round. Importing it costs torch and nothing else (no huggingface_hub).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from ..io.constants import FRAMES  # noqa: F401  (re-exported: the clip length these networks take)
from .architecture import (  # noqa: F401  (re-exported: the layer table and the weights' shapes)
    BN_EPS,
    BN_KEYS,
    GENERATOR_BLOCKS,
    OUTER_SKIPS,
    Block,
    model_config,
    state_shapes,
)

if TYPE_CHECKING:
    import os
    from pathlib import Path

# ---- convolutions that train fast on CPUs --------------------------------------------------------
# PyTorch's CPU backward of Conv3d/ConvTranspose3d (oneDNN) runs 15-30x slower than the forward at these
# small channel counts, which made CPU training impractical. A 3D convolution is exactly a sum over its
# temporal taps of 2D convolutions applied to (strided) frames, and the 2D backward is fast, so while
# gradients are being recorded on a CPU we compute it that way. Same parameters, same results (to float
# rounding); inference keeps the native 3D kernels.


def conv3d_by_frames(x: torch.Tensor, w: torch.Tensor, stride, padding) -> torch.Tensor:
    """``F.conv3d(x, w, stride=stride, padding=padding)`` (no bias, groups=1) as 2D convolutions."""
    n, c, t, h, wd = x.shape
    kt = w.shape[2]
    st, sh, sw = stride
    pt, ph, pw = padding
    to = (t + 2 * pt - kt) // st + 1
    xp = F.pad(x, (0, 0, 0, 0, pt, pt)) if pt else x
    out = None
    for dt in range(kt):
        frames = xp[:, :, dt : dt + st * (to - 1) + 1 : st].transpose(1, 2).reshape(n * to, c, h, wd)
        y = F.conv2d(frames, w[:, :, dt], stride=(sh, sw), padding=(ph, pw))
        out = y if out is None else out + y
    return out.reshape(n, to, *out.shape[1:]).transpose(1, 2).contiguous()


def conv_transpose3d_by_frames(x: torch.Tensor, w: torch.Tensor, stride, padding) -> torch.Tensor:
    """``F.conv_transpose3d`` (no bias, groups=1, no output padding) as 2D transposed convolutions, each
    temporal tap's frames placed at their strided output times."""
    n, c, t, h, wd = x.shape
    kt = w.shape[2]
    st, sh, sw = stride
    pt, ph, pw = padding
    full = (t - 1) * st + kt
    frames = x.transpose(1, 2).reshape(n * t, c, h, wd)
    out = None
    for dt in range(kt):
        y = F.conv_transpose2d(frames, w[:, :, dt], stride=(sh, sw), padding=(ph, pw))
        y = y.reshape(n, t, *y.shape[1:])
        if st == 1:
            placed = F.pad(y, (0, 0, 0, 0, 0, 0, dt, full - t - dt))
        else:
            index = torch.arange(t, device=x.device) * st + dt
            placed = y.new_zeros(n, full, *y.shape[2:]).index_add(1, index, y)
        out = placed if out is None else out + placed
    return out[:, pt : full - pt].transpose(1, 2).contiguous()


def _framewise(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and torch.is_grad_enabled() and x.dtype == torch.float32


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that trains through the fast 2D decomposition on CPU (see above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None and self.groups == 1 and self.dilation == (1, 1, 1) and _framewise(x):
            return conv3d_by_frames(x, self.weight, self.stride, self.padding)
        return super().forward(x)


class ConvTranspose3d(nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` that trains through the fast 2D decomposition on CPU (see above)."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        plain = self.groups == 1 and self.dilation == (1, 1, 1) and self.output_padding == (0, 0, 0)
        if output_size is None and self.bias is None and plain and _framewise(x):
            return conv_transpose3d_by_frames(x, self.weight, self.stride, self.padding)
        return super().forward(x, output_size)


def _down(cin: int, cout: int) -> nn.Sequential:
    """Encoder block: strided 3D convolution halving T, H and W, then BatchNorm and LeakyReLU."""
    return nn.Sequential(
        Conv3d(cin, cout, 4, 2, 1, bias=False),
        nn.BatchNorm3d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


_ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "tanh": nn.Tanh,
}


def build_block(block: Block, ngf: int) -> nn.Module:
    """The torch module of one ``GENERATOR_BLOCKS`` entry: conv [+ BatchNorm] [+ activation]."""
    cin, cout = block.channels(ngf)
    conv_type = ConvTranspose3d if block.transposed else Conv3d
    conv = conv_type(cin, cout, block.kernel, block.stride, block.padding, bias=False)
    if not block.sequential:
        return conv
    layers = [conv] + ([nn.BatchNorm3d(cout, eps=BN_EPS)] if block.batchnorm else [])
    if block.act != "none":
        layers.append(_ACTIVATIONS[block.act]())
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """The 3D U-Net shared by Base-Net (G1) and Refine-Net (G2), one module per ``GENERATOR_BLOCKS`` entry.

    Skips are identity additions made after a decoder block's activation. Base-Net keeps all five;
    Refine-Net drops the two outermost (conv1->deconv5 and conv2->deconv4 outputs), because the paper
    found that those skips copy the static input through and so suppress motion.
    """

    def __init__(self, ngf: int = 32, outer_skips: bool = True):
        super().__init__()
        self.outer_skips = outer_skips
        for block in GENERATOR_BLOCKS:  # in table order, so a seeded init draws the same weights
            setattr(self, block.name, build_block(block, ngf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.conv1(x)
        e2 = self.conv2(e1)
        e3 = self.conv3(e2)
        e4 = self.conv4(e3)
        e5 = self.conv5(e4)
        d = self.conv6(e5)
        d = self.deconv1(d) + e5
        d = self.deconv2(d) + e4
        d = self.deconv3(d) + e3
        d = self.deconv4(d)
        if self.outer_skips:
            d = d + e2
        d = self.deconv5(d)
        if self.outer_skips:
            d = d + e1
        return self.deconv6(d)


def widened_state(src: Generator, ngf: int, noise: float = 0.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict for a ``Generator`` of width ``ngf`` that computes what ``src`` computes (Net2WiderNet,
    Chen et al. 2016): every channel is repeated ``ngf / src`` times, and each weight that reads repeated
    channels is divided by that factor, so the copies sum back to one. Exact in eval and train mode (a
    repeated channel has the same batch statistics).

    It lets a wider Refine-Net start as a copy of a trained, narrower Base-Net or Refine-Net instead of
    from random weights. Repeated channels get equal gradients and would stay equal: ``noise`` (relative
    to each weight's standard deviation) breaks that symmetry at a small cost in exactness."""
    c = src.conv1.weight.shape[0]
    if ngf % c:
        raise ValueError(f"width {ngf} is not a multiple of {c}")
    k = ngf // c
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, mod in src.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(mod, (nn.Conv3d, nn.ConvTranspose3d)):
            w = mod.weight.detach()
            cin_dim = 0 if isinstance(mod, nn.ConvTranspose3d) else 1
            reps = [1] * w.dim()
            # colour channels (conv1's input, deconv6's output) are not repeated
            in_rep = 1 if name == "conv1" else k
            out_rep = 1 if name.startswith("deconv6") else k
            reps[cin_dim] = in_rep
            reps[1 - cin_dim] = out_rep
            w = w.repeat(*reps) / in_rep
            if noise:
                w = w + noise * w.std() * torch.randn(w.shape, generator=gen, dtype=w.dtype)
            out[prefix + "weight"] = w
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):  # also SyncBatchNorm
            for key, t in mod.state_dict().items():
                out[prefix + key] = t.detach().clone() if t.dim() == 0 else t.detach().repeat(k)
    return out


@dataclass
class DiscriminatorOutput:
    """What the discriminator sees in a video: a real/fake logit and the two activations whose Gram
    matrices describe motion (after conv1 and after conv3)."""

    logit: torch.Tensor
    conv1: torch.Tensor
    conv3: torch.Tensor


class Discriminator(nn.Module):
    """The video discriminator shared by D1 and D2: the generator's encoder ending in one sigmoid per video.

    ``forward`` returns the pre-sigmoid logit (for numerically stable BCE) plus the conv1/conv3 activations.
    """

    def __init__(self, ndf: int = 32):
        super().__init__()
        c = ndf
        self.conv1 = nn.Sequential(Conv3d(3, c, (3, 4, 4), (1, 2, 2), 1, bias=False), nn.LeakyReLU(0.2))
        self.conv2 = _down(c, 2 * c)
        self.conv3 = _down(2 * c, 4 * c)
        self.conv4 = _down(4 * c, 8 * c)
        self.conv5 = _down(8 * c, 16 * c)
        self.conv6 = Conv3d(16 * c, 1, (2, 4, 4), 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        h1 = self.conv1(x)
        h3 = self.conv3(self.conv2(h1))
        logit = self.conv6(self.conv5(self.conv4(h3))).flatten(1).mean(1)
        return DiscriminatorOutput(logit=logit, conv1=h1, conv3=h3)


class MDGAN(nn.Module):
    """Base-Net and Refine-Net with their config: the unit that is saved, loaded and pushed to the Hub
    (by ``skyforecast.model.weights``).

    ``batch_stats=True`` makes BatchNorm normalise with the statistics of the batch being predicted, as
    the authors' test script did (their released weights need it); our own models use running averages.

    ``refine_ngf`` gives Refine-Net its own width (default: ``ngf``, as in the paper). Refine-Net has no
    outer skips, so all of its 128 px detail passes through its 16x16 features, ``4 * refine_ngf``
    channels wide: it is the stage that runs out of width first. A wider Refine-Net on a narrow Base-Net
    spends a size budget where the content is lost, and can be trained on a Base-Net already trained.
    """

    def __init__(self, ngf: int = 32, batch_stats: bool = False, refine_ngf: int | None = None):
        super().__init__()
        self.ngf = int(ngf)
        self.batch_stats = bool(batch_stats)
        self.refine_ngf = int(refine_ngf) if refine_ngf else self.ngf
        self.base = Generator(self.ngf, outer_skips=OUTER_SKIPS["base"])
        self.refine = Generator(self.refine_ngf, outer_skips=OUTER_SKIPS["refine"])

    @property
    def config(self) -> dict:
        """What ``config.json`` holds: ``refine_ngf`` only when it differs from ``ngf`` (older folders)."""
        return model_config(self.ngf, self.batch_stats, self.refine_ngf)

    def forward(self, x: torch.Tensor, stage: int = 2) -> torch.Tensor:
        """X (N,3,32,128,128) in [-1,1] -> Y1 if ``stage == 1`` else Y2 = G2(G1(X))."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        with _batch_statistics(self, self.batch_stats):
            y = self.base(x)
            return y if stage == 1 else self.refine(y)

    # ---- Hub-style spellings kept for callers not yet switched to ``weights`` ---------------------
    # The work is done in ``weights`` (imported only when called, so importing this module stays free
    # of it and of huggingface_hub). New code calls ``weights.load_model``/``save_model``/``push_model``.
    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike) -> MDGAN:
        """``weights.load_model(spec)``: a model folder or Hub repo id, loaded strictly, in eval mode."""
        from .weights import load_model

        return load_model(spec)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """``weights.save_model(self, save_directory)``."""
        from .weights import save_model

        return save_model(self, save_directory)

    def save_half(self, save_directory: str | os.PathLike) -> Path:
        """``weights.save_model(self, save_directory, half=True)``."""
        from .weights import save_model

        return save_model(self, save_directory, half=True)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        """``weights.push_model(self, repo_id, ...)``; returns the commit URL."""
        from .weights import push_model

        return push_model(self, repo_id, **kwargs)


def __getattr__(name: str):
    """``from .models import WeightsError``, the old spelling, for callers not yet switched to
    ``skyforecast.model.weights`` (resolved on use, so importing this module does not import ``weights``)."""
    if name == "WeightsError":
        from .weights import WeightsError

        return WeightsError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _batch_statistics:
    """Context manager that temporarily puts every BatchNorm into batch-statistics mode (without
    touching the running averages), as the authors' released test script effectively did."""

    def __init__(self, model: nn.Module, enabled: bool):
        self.enabled = enabled and not model.training
        self.model = model
        self.saved: list[tuple[nn.modules.batchnorm._BatchNorm, bool, bool]] = []

    def __enter__(self):
        if self.enabled:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    self.saved.append((m, m.track_running_stats, m.training))
                    m.track_running_stats = False
                    m.train()
        return self

    def __exit__(self, *exc):
        for m, track, training in self.saved:
            m.track_running_stats = track
            m.train(training)
        self.saved.clear()
        return False
