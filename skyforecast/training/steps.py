"""One training step of each stage: the discriminator's update, then the generator's (adversarial, content,
flicker and, in Stage II, ranking losses), under autocast and the gradient scaler, and the generator's
weight average after it. A mixin of ``Trainer`` (``trainer``), kept apart from the session's start and the
files a run writes so that the losses' arithmetic reads in one place.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from ..model.networks import _batch_statistics
from .distributed import unwrap
from .losses import adversarial_loss, content_loss, frame_difference_loss, ranking_loss_layers


def _set_requires_grad(m: nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


class WeightAverage:
    """An exponential moving average of the trained generator's weights (``--ema DECAY``), restarted at
    each stage's start from the generator as it is then. The averaged weights are what previews, validation
    and the exported model use; a finished Stage I hands its average on as the Base-Net Stage II trains on."""

    def __init__(self, decay: float):
        self.decay = decay
        self.state: dict[str, torch.Tensor] = {}

    def reset(self, model: nn.Module) -> None:
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach(), 1.0 - self.decay)
            else:
                self.state[k].copy_(v)


def _d_scores(o_real, o_fake) -> dict[str, torch.Tensor]:
    """The discriminator's mean probabilities of "real" on real and generated clips, as logged."""
    return {
        "d_real": torch.sigmoid(o_real.logit.detach().float()).mean(),
        "d_fake": torch.sigmoid(o_fake.logit.detach().float()).mean(),
    }


class TrainingSteps:
    """``Trainer``'s training steps (``train_step_stage1``, ``train_step_stage2``) and the updates they make.
    The networks, optimisers, scaler and weight average are ``Trainer``'s (built by ``startup``)."""

    # -- the steps
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _base_output(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen Base-Net (Stage II): eval mode, no grad; batch statistics if the weights need them."""
        g1 = unwrap(self.g1)
        with torch.no_grad(), _batch_statistics(g1, self.batch_stats), self._autocast():
            return g1(x).float()

    def _backward_step(self, loss: torch.Tensor, name: str) -> None:
        opt = self.opt[name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def train_step_stage1(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g1, d1 = self.g1, self.d1
        warm = self.step < self.warmup  # discriminator-only step: the generator is held
        x = real[:, :, :1].expand_as(real)  # the first frame duplicated 32 times
        with self._autocast(), torch.set_grad_enabled(not warm):
            y1 = g1(x)
        # D1: real clips vs Base-Net clips
        _set_requires_grad(d1, True)
        with self._autocast():
            o_real, o_fake = d1(real), d1(y1.detach())
        loss_d = adversarial_loss(o_real.logit, True) + adversarial_loss(o_fake.logit, False)
        self._backward_step(loss_d, "d1")
        if warm:
            return self._warmup_stats(loss_d, y1, real, o_real, o_fake)
        # G1: fool the (updated) D1 and match the real clip pixel by pixel
        _set_requires_grad(d1, False)
        with self._autocast():
            o_gen = unwrap(d1)(y1)  # D1's gradients are not needed: bypass DDP's all-reduce
        adv = adversarial_loss(o_gen.logit, True)
        l1 = content_loss(y1, real)
        flicker = frame_difference_loss(y1, real, order=2)
        loss_g = adv + self.cfg.lambda_con * l1
        if self.cfg.lambda_flicker:
            loss_g = loss_g + self.cfg.lambda_flicker * flicker
        self._g_update(loss_g, "g1")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            **_d_scores(o_real, o_fake),
        }

    def train_step_stage2(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g2, d2, lam = self.g2, self.d2, self.cfg.lambda_rank
        warm = self.step < self.warmup  # discriminator-only step: the generator is held
        x = real[:, :, :1].expand_as(real)
        y1 = self._base_output(x)
        with self._autocast(), torch.set_grad_enabled(not warm):
            y2 = g2(y1)
        # D2: tell real from refined, and *maximise* the ranking loss (adversarial ranking)
        _set_requires_grad(d2, True)
        with self._autocast():
            o_real, o_fake, o_base = d2(real), d2(y2.detach()), d2(y1)
        loss_d_adv = adversarial_loss(o_real.logit, True) + adversarial_loss(o_fake.logit, False)
        if self.cfg.d_rank == "negate":  # the literal reading: D2 minimises -L_rank (unbounded)
            rank_d = -ranking_loss_layers(o_fake, o_real, o_base)
        else:  # bounded: D2 minimises -log(1 - p), same direction, saturates like a GAN's BCE
            rank_d = ranking_loss_layers(o_fake, o_real, o_base, reverse=True)
        loss_d = loss_d_adv + lam * rank_d
        self._backward_step(loss_d, "d2")
        if warm:
            return {**self._warmup_stats(loss_d, y2, real, o_real, o_fake), "rank_d": rank_d.detach()}
        # G2: fool D2, move toward the real clip's motion and away from Stage I's, keep content
        _set_requires_grad(d2, False)
        d2m = unwrap(d2)
        with self._autocast():
            o_gen = d2m(y2)
            with torch.no_grad():
                f_real, f_base = d2m(real), d2m(y1)
        rank_g = ranking_loss_layers(o_gen, f_real, f_base)
        adv = adversarial_loss(o_gen.logit, True)
        l1 = content_loss(y2, real)
        flicker = frame_difference_loss(y2, real, order=2)
        loss_g = adv + lam * rank_g + self.lambda_con2 * l1
        if self.cfg.lambda_flicker:
            loss_g = loss_g + self.cfg.lambda_flicker * flicker
        self._g_update(loss_g, "g2")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            "rank": rank_g.detach(),
            "rank_d": rank_d.detach(),
            **_d_scores(o_real, o_fake),
        }

    def _warmup_stats(self, loss_d, fake, real, o_real, o_fake) -> dict[str, torch.Tensor]:
        """What a discriminator-only step logs: D's loss and scores, and the held generator's L1."""
        self.scaler.update()
        return {
            "loss_d": loss_d.detach(),
            "l1": content_loss(fake.detach(), real).detach(),
            **_d_scores(o_real, o_fake),
        }

    def _g_update(self, loss: torch.Tensor, name: str) -> None:
        """The generator's optimiser step, then its weight average."""
        self._backward_step(loss, name)
        if self.ema is not None:
            self.ema.update(unwrap(getattr(self, name)))
