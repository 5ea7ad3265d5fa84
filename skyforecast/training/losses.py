"""MD-GAN's losses: the adversarial loss, the pixel content loss, the Gram matrix of a discriminator
activation and the adversarial ranking loss built on it (``MDGAN-SPEC.md``, section Losses).

Everything here is a pure function of tensors so it can be checked by hand; the training loop composes
them. The Gram/ranking computations always run in float32, even under autocast, because they sum
products over thousands of entries where fp16/bf16 would lose the small differences that matter.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

RANK_LAYERS = ("conv1", "conv3")

__all__ = [
    "RANK_LAYERS",
    "adversarial_loss",
    "content_loss",
    "frame_difference_loss",
    "gram_matrix",
    "ranking_loss",
    "ranking_loss_layers",
]


def adversarial_loss(logit: torch.Tensor, real: bool) -> torch.Tensor:
    """Standard GAN loss on a discriminator's pre-sigmoid logit: ``-log sigmoid(logit)`` for the target
    "real" and ``-log(1 - sigmoid(logit))`` for "fake", averaged over the batch.

    BCE-with-logits is the numerically stable form of the spec's sigmoid + log: it never evaluates
    ``log(0)`` when the discriminator is very sure.
    """
    logit = logit.float()
    target = torch.ones_like(logit) if real else torch.zeros_like(logit)
    return F.binary_cross_entropy_with_logits(logit, target)


def content_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Pixel L1 distance ``||Y - Y_hat||_1`` as a mean over all elements (so its scale does not depend on
    batch size or resolution; ``lambda_con`` is chosen against this mean)."""
    return (fake.float() - real.float()).abs().mean()


def frame_difference_loss(fake: torch.Tensor, real: torch.Tensor, order: int = 1) -> torch.Tensor:
    """L1 distance between the two videos' ``order``-th temporal differences (N, C, T, H, W; time is
    dim 2): order 1 compares frame-to-frame change, order 2 compares its change (acceleration). Not
    in the paper: the optional ``--lambda-flicker`` term uses order 2.

    Why order 2 against flicker: the pixel L1 barely notices zero-mean frame-to-frame noise while the
    prediction is still far from the real frames (its gradient is only the sign of the residual), so
    an under-trained generator flickers: consecutive frames differ as much as frames 8 apart. Noise
    that changes every frame has large second differences; steady drift, like clouds carried by the
    wind, has small ones. So this term removes flicker without pulling the video toward a still copy,
    which a first-order term would do wherever the real motion cannot be predicted from one photo.
    """
    fake, real = fake.float(), real.float()
    return (torch.diff(fake, n=order, dim=2) - torch.diff(real, n=order, dim=2)).abs().mean()


def gram_matrix(h: torch.Tensor) -> torch.Tensor:
    """Gram matrix of a video activation ``h`` of shape (N, C, T, H, W).

    Reshape to (N, M=C*T, S=H*W) and return ``1/(M*S) * sum_n H_n H_n^T`` (one M x M matrix for the
    batch). Folding time into the M axis makes entries correlate a channel at one time step with a
    channel at another, which is what lets the matrix describe motion rather than only texture.
    """
    if h.dim() != 5:
        raise ValueError(f"expected an activation of shape (N, C, T, H, W), got {tuple(h.shape)}")
    n, c, t, hh, ww = h.shape
    m, s = c * t, hh * ww
    flat = h.float().reshape(n, m, s)
    # sum over the batch of H_n H_n^T == (all columns side by side) @ (all columns side by side)^T
    cols = flat.permute(1, 0, 2).reshape(m, n * s)
    return (cols @ cols.t()) / (m * s)


def ranking_loss(
    g_y2: torch.Tensor, g_y: torch.Tensor, g_y1: torch.Tensor, reverse: bool = False
) -> torch.Tensor:
    """Contrastive ranking loss of one layer from its three Gram matrices:

    ``-log p`` with ``p = e^{-d(Y2,Y)} / (e^{-d(Y2,Y)} + e^{-d(Y2,Y1)})`` and ``d`` the L1 distance (sum
    of absolute differences). Algebraically this is ``softplus(d(Y2,Y) - d(Y2,Y1))``, which is how it is
    computed: the exponentials of large distances would otherwise underflow to 0/0.

    ``reverse=True`` gives ``-log(1 - p) = softplus(d(Y2,Y1) - d(Y2,Y))``: the discriminator's side of
    the adversarial ranking. Minimising it pushes the same way as maximising ``-log p`` (Y2 ranked
    nearer Y1 than Y) but is bounded below by 0, like the BCE a GAN discriminator minimises; maximising
    ``-log p`` itself grows without bound by scaling D2's features up, which diverges in long runs.
    """
    d_pos = (g_y2 - g_y).abs().sum()
    d_neg = (g_y2 - g_y1).abs().sum()
    return F.softplus(d_neg - d_pos) if reverse else F.softplus(d_pos - d_neg)


def ranking_loss_layers(
    y2: Mapping[str, torch.Tensor] | object,
    y: Mapping[str, torch.Tensor] | object,
    y1: Mapping[str, torch.Tensor] | object,
    layers: tuple[str, ...] = RANK_LAYERS,
    reverse: bool = False,
) -> torch.Tensor:
    """Sum of :func:`ranking_loss` over D2's layers (conv1 and conv3 by default).

    Each argument holds the discriminator's activations for one video batch: a mapping from layer name
    to tensor, or any object with those attributes (a ``DiscriminatorOutput``). Features may be
    detached where a term should carry no gradient (e.g. the real and Stage I videos for G2's step).
    ``reverse`` selects the bounded discriminator form (see :func:`ranking_loss`).
    """
    total = None
    for name in layers:
        grams = (gram_matrix(_get(f, name)) for f in (y2, y, y1))
        term = ranking_loss(*grams, reverse=reverse)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no layers given for the ranking loss")
    return total


def _get(features: Mapping[str, torch.Tensor] | object, name: str) -> torch.Tensor:
    if isinstance(features, Mapping):
        return features[name]
    return getattr(features, name)
