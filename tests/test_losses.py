"""The losses against values worked out by hand (see the comments), plus the behaviour the ranking loss
exists for: it falls as Y2 moves toward the real video Y and away from the Stage I video Y1."""

from __future__ import annotations

import math

import pytest
import torch

from skyforecast.model.networks import Discriminator
from skyforecast.training.losses import (
    adversarial_loss,
    content_loss,
    frame_difference_loss,
    gram_matrix,
    ranking_loss,
    ranking_loss_layers,
)


def test_frame_difference_loss_by_hand():
    # one pixel over 3 frames: real 0 -> 1 -> 2 (steps +1, +1); fake 0 -> 3 -> 0 (steps +3, -3)
    real = torch.tensor([0.0, 1.0, 2.0]).reshape(1, 1, 3, 1, 1)
    fake = torch.tensor([0.0, 3.0, 0.0]).reshape(1, 1, 3, 1, 1)
    # |3 - 1| = 2 and |-3 - 1| = 4: mean 3
    assert frame_difference_loss(fake, real).item() == 3.0
    # a constant offset does not change any difference; the real clip scores 0 against itself
    assert frame_difference_loss(real + 0.5, real).item() == 0.0


def test_second_order_differences_by_hand():
    # real 0, 1, 2, 3 (steady: second differences 0, 0); fake 0, 2, 0, 2 (second differences -4, +4)
    real = torch.tensor([0.0, 1.0, 2.0, 3.0]).reshape(1, 1, 4, 1, 1)
    fake = torch.tensor([0.0, 2.0, 0.0, 2.0]).reshape(1, 1, 4, 1, 1)
    assert frame_difference_loss(fake, real, order=2).item() == 4.0


def test_second_order_term_punishes_flicker_but_not_steady_drift():
    """The --lambda-flicker term: a flickering copy scores far worse than a still one, and a video that
    drifts steadily (a different speed than the real one) costs no more than the still copy, so the
    term does not pull predictions toward standing still."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(32.0).reshape(1, 1, 32, 1, 1)
    real = (0.01 * t + 0.002 * torch.randn(1, 3, 32, 8, 8, generator=g)).expand(1, 3, 32, 8, 8)
    still = real[:, :, :1].expand_as(real)
    flicker = still + 0.05 * torch.randn(real.shape, generator=g)
    drift = still + 0.02 * t
    f2 = {
        name: frame_difference_loss(v, real, order=2).item()
        for name, v in [("still", still), ("flicker", flicker), ("drift", drift)]
    }
    assert f2["flicker"] > 5 * f2["still"]
    assert f2["drift"] == pytest.approx(f2["still"], rel=1e-5)


def test_gram_matrix_one_sample_by_hand():
    # C=1, T=2, H=1, W=2  ->  M = C*T = 2 rows [1, 2] and [3, 4], S = H*W = 2
    h = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 1, 2)
    # H H^T = [[1*1+2*2, 1*3+2*4], [3*1+4*2, 3*3+4*4]] = [[5, 11], [11, 25]];  / (M*S = 4)
    expected = torch.tensor([[1.25, 2.75], [2.75, 6.25]])
    assert torch.equal(gram_matrix(h), expected)


def test_gram_matrix_sums_over_the_batch():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 1, 2)
    b = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 2, 1, 2)  # H H^T = identity
    # ([[5, 11], [11, 25]] + [[1, 0], [0, 1]]) / 4
    expected = torch.tensor([[1.5, 2.75], [2.75, 6.5]])
    assert torch.equal(gram_matrix(torch.cat([a, b])), expected)


def test_gram_matrix_folds_time_into_rows_channel_major():
    # C=2, T=2, S=1: rows are (c0,t0), (c0,t1), (c1,t0), (c1,t1) -> the outer product of [1, 2, 3, 4] / 4
    h = torch.zeros(1, 2, 2, 1, 1)
    h[0, 0, 0], h[0, 0, 1], h[0, 1, 0], h[0, 1, 1] = 1.0, 2.0, 3.0, 4.0
    v = torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = gram_matrix(h)
    assert g.shape == (4, 4)
    assert torch.equal(g, torch.outer(v, v) / 4)
    # entry (c0,t0)x(c1,t1): correlation across channels *and* time steps
    assert g[0, 3].item() == 1.0


def test_gram_matrix_rejects_non_video_activations():
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        gram_matrix(torch.zeros(1, 3, 4, 4))


def test_ranking_loss_by_hand():
    g_y = torch.zeros(2, 2)
    g_y2 = torch.tensor([[0.25, 0.25], [0.25, 0.25]])  # d(Y2, Y) = 4 * 0.25 = 1
    g_y1 = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # d(Y2, Y1) = 0.75 * 3 + 0.25 = 2.5
    # -log(e^-1 / (e^-1 + e^-2.5)) = log(1 + e^(1 - 2.5))
    expected = math.log(1 + math.exp(-1.5))
    assert ranking_loss(g_y2, g_y, g_y1).item() == pytest.approx(expected, rel=1e-6)
    # the discriminator's bounded form: -log(1 - p) = log(1 + e^(2.5 - 1))
    assert ranking_loss(g_y2, g_y, g_y1, reverse=True).item() == pytest.approx(math.log(1 + math.exp(1.5)))


def test_ranking_loss_is_stable_for_large_distances():
    g_y, g_y1 = torch.zeros(8, 8), torch.full((8, 8), 1000.0)
    far_from_real = torch.full((8, 8), 900.0)  # d+ = 57600, d- = 6400: e^-d underflows to 0/0
    loss = ranking_loss(far_from_real, g_y, g_y1)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(57600 - 6400)
    assert ranking_loss(g_y, g_y, g_y1).item() == pytest.approx(0.0, abs=1e-6)


def test_ranking_loss_falls_as_y2_moves_from_y1_to_y():
    g_y, g_y1 = torch.zeros(3, 3), torch.ones(3, 3)
    losses = [ranking_loss(a * g_y + (1 - a) * g_y1, g_y, g_y1).item() for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(x > y for x, y in zip(losses, losses[1:], strict=False)), losses
    # at Y2 = Y1: log(1 + e^9); at the midpoint d+ = d-: log 2; at Y2 = Y: log(1 + e^-9)
    assert losses[0] == pytest.approx(math.log1p(math.exp(9)))
    assert losses[2] == pytest.approx(math.log(2))
    assert losses[4] == pytest.approx(math.log1p(math.exp(-9)))


def test_ranking_loss_on_discriminator_features_of_real_videos():
    """With a real (random) D2 and videos, the loss summed over conv1 and conv3 still falls as Y2 is
    blended from the Stage I video toward the real one."""
    torch.manual_seed(0)
    d2 = Discriminator(ndf=2).eval()
    t = torch.linspace(0, 1, 32).view(1, 1, 32, 1, 1)
    xs = torch.linspace(-1, 1, 128)
    real = torch.sin(6 * xs.view(1, 1, 1, 1, 128) + 8 * t).expand(1, 3, 32, 128, 128)  # moving waves
    static = real[:, :, :1].expand_as(real)  # Stage I stand-in: the first frame frozen
    with torch.no_grad():
        f_y, f_y1 = d2(real), d2(static)
        losses = []
        for a in (0.0, 0.5, 1.0):
            f_y2 = d2(a * real + (1 - a) * static)
            losses.append(ranking_loss_layers(f_y2, f_y, f_y1).item())
    assert losses[0] > losses[1] > losses[2], losses
    with torch.no_grad():  # dict features work the same as a DiscriminatorOutput
        as_dict = {k: getattr(f_y, k) for k in ("conv1", "conv3")}
        assert ranking_loss_layers(as_dict, f_y, f_y1).item() == pytest.approx(
            ranking_loss_layers(f_y, f_y, f_y1).item()
        )


def test_ranking_loss_gradient_pulls_y2_features_toward_y():
    g_y, g_y1 = torch.zeros(2, 2), torch.ones(2, 2)
    h = torch.full((1, 1, 2, 1, 2), 0.8, requires_grad=True)  # activations whose Gram is near g_y1
    loss = ranking_loss(gram_matrix(h), g_y, g_y1)
    loss.backward()
    with torch.no_grad():
        stepped = h - 0.1 * h.grad
    assert ranking_loss(gram_matrix(stepped), g_y, g_y1) < loss


def test_adversarial_loss_values():
    zero = torch.zeros(4)
    assert adversarial_loss(zero, True).item() == pytest.approx(math.log(2))
    assert adversarial_loss(zero, False).item() == pytest.approx(math.log(2))
    logit = torch.tensor([2.0])
    assert adversarial_loss(logit, True).item() == pytest.approx(-math.log(1 / (1 + math.exp(-2))))
    assert adversarial_loss(logit, False).item() == pytest.approx(-math.log(1 - 1 / (1 + math.exp(-2))))
    # a very sure discriminator: finite (log(sigmoid) of a large negative logit, no log(0))
    assert adversarial_loss(torch.tensor([-200.0]), True).item() == pytest.approx(200.0)


def test_content_loss_is_mean_absolute_difference():
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    b = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    assert content_loss(a, b).item() == pytest.approx((0.5 + 0 + 2 + 0.5) / 4)
