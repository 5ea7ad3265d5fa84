"""Sky colours: the palette of one moment and how day, dusk/dawn and night palettes are drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Palette:
    """Sky colours at one moment; dusk scenes interpolate between two of them over time."""

    zenith: tuple[float, float, float]
    mid: tuple[float, float, float]
    horizon: tuple[float, float, float]
    glow: tuple[float, float, float]
    glow_strength: float
    fg_light: float  # how bright the foreground is lit (day 1, dusk ~0.2, night ~0.05)


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float) -> tuple:
    c = np.clip(np.asarray(rgb) * np.exp(rng.normal(0.0, amount, 3)) * np.exp(rng.normal(0.0, amount)), 0, 1)
    return tuple(float(v) for v in c)


def _day_palette(rng: np.random.Generator, overcast: bool = False) -> Palette:
    if overcast:
        g = rng.uniform(0.62, 0.9)
        return Palette(
            _jitter(rng, (g * 0.88, g * 0.9, g * 0.95), 0.04),
            _jitter(rng, (g * 0.95, g * 0.96, g), 0.03),
            _jitter(rng, (g, g, g * 0.98), 0.03),
            (1.0, 0.98, 0.95),
            rng.uniform(0.0, 0.08),
            rng.uniform(0.5, 0.8),
        )
    deep = rng.uniform(0.0, 1.0)
    zen = (0.08 + 0.14 * (1 - deep), 0.22 + 0.2 * (1 - deep), 0.55 + 0.3 * (1 - deep) * 0.5 + 0.15 * deep)
    pale = rng.uniform(0.1, 0.55)  # real skies are often hazy and much less saturated than a clean blue

    def wash(c: tuple) -> tuple:
        g = sum(c) / 3.0
        return tuple(v * (1 - pale) + (g + 0.1) * pale for v in c)

    return Palette(
        _jitter(rng, wash(zen), 0.08),
        _jitter(rng, wash((0.35, 0.55, 0.85)), 0.08),
        _jitter(rng, wash((0.72, 0.82, 0.93)), 0.05),
        _jitter(rng, (1.0, 0.97, 0.9), 0.03),
        rng.uniform(0.1, 0.5),
        rng.uniform(0.7, 1.0),
    )


def _dusk_palettes(rng: np.random.Generator) -> tuple[Palette, Palette]:
    """An earlier and a later sunset palette (swapped for dawn)."""
    warm = rng.uniform(0.0, 1.0)  # 0: pink/purple sunset, 1: golden
    hor = (1.0, 0.55 + 0.25 * warm, 0.25 + 0.15 * (1 - warm))
    early = Palette(
        _jitter(rng, (0.25, 0.38, 0.68), 0.1),
        _jitter(rng, (0.75, 0.62, 0.62 - 0.2 * warm), 0.08),
        _jitter(rng, hor, 0.05),
        _jitter(rng, (1.0, 0.8, 0.5), 0.05),
        rng.uniform(0.4, 0.9),
        rng.uniform(0.25, 0.45),
    )
    late = Palette(
        _jitter(rng, (0.08, 0.1, 0.28), 0.12),
        _jitter(rng, (0.42, 0.25, 0.4), 0.1),
        _jitter(rng, (0.95, 0.42 + 0.15 * warm, 0.2), 0.06),
        _jitter(rng, (1.0, 0.5, 0.25), 0.05),
        rng.uniform(0.25, 0.6),
        rng.uniform(0.05, 0.15),
    )
    return early, late


def _night_palette(rng: np.random.Generator) -> Palette:
    b = rng.uniform(1.0, 2.6)  # long exposures make night skies anything from black to deep blue
    city = rng.uniform(0.0, 1.0) < 0.4
    hor = (0.22, 0.16, 0.12) if city else (0.1, 0.13, 0.24)
    return Palette(
        _jitter(rng, (0.012 * b, 0.02 * b, 0.06 * b), 0.15),
        _jitter(rng, (0.03 * b, 0.045 * b, 0.11 * b), 0.15),
        _jitter(rng, tuple(v * b for v in hor), 0.15),
        (0.3, 0.3, 0.35),
        rng.uniform(0.0, 0.1),
        rng.uniform(0.02, 0.06),
    )
