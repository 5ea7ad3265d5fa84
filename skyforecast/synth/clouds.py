"""Cloud decks: what a deck is (:class:`CloudLayer`), the kinds a scene draws (cumulus, altocumulus,
cirrus, overcast, scud) and which decks each scene family gets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .noise import NoiseField, _mix_key
from .palettes import _jitter


@dataclass(frozen=True)
class CloudLayer:
    """A cloud deck: a noise field, how it is thresholded into cloud, and how the cloud is lit."""

    field: NoiseField
    coverage: float  # fraction of the deck that is cloud
    softness: float  # width of the cloud edge, in noise standard deviations
    opacity: float
    lit: tuple[float, float, float]  # colour of the sunlit side
    shade: tuple[float, float, float]  # colour of the thick/shadowed parts
    relief: float  # >0: lit from above (bright tops), <0: lit from below (sunset undersides)
    darken: float  # how much thickness darkens the cloud
    cells: NoiseField | None = None  # optional fine cell pattern mixed in (mackerel sky)
    cells_mix: float = 0.0
    detail: float = 0.3  # strength of small-scale light/shadow bumps inside the cloud


def _field(
    rng: np.random.Generator,
    key: int,
    freq: tuple[float, float],
    wind_speed: float,
    octaves: int = 6,
    gain: float = 0.5,
    evolve: float = 0.02,
    turbulence: int = 99,
) -> NoiseField:
    ang = rng.uniform(0, 2 * math.pi)
    return NoiseField(
        key=key,
        freq=freq,
        octaves=octaves,
        gain=gain,
        wind=(wind_speed * math.cos(ang), wind_speed * math.sin(ang)),
        evolve=evolve,
        lacunarity=float(rng.uniform(1.9, 2.15)),
        turbulence=turbulence,
    )


def _cloud_colours(rng: np.random.Generator, family: str) -> tuple[tuple, tuple, float]:
    """(lit colour, shadow colour, relief sign) for clouds of the given family."""
    if family == "dusk":
        lit = _jitter(rng, (1.0, 0.62, 0.42), 0.08)
        shade = _jitter(rng, (0.26, 0.22, 0.3), 0.15)
        return lit, shade, -1.0
    if family in ("night", "aurora"):
        lit = _jitter(rng, (0.12, 0.11, 0.12), 0.3)
        return lit, tuple(v * 0.4 for v in lit), 0.3
    if family == "overcast":
        g = rng.uniform(0.75, 0.95)
        lit = _jitter(rng, (g, g, g * 1.02), 0.02)
        s = rng.uniform(0.4, 0.6)
        return lit, _jitter(rng, (s, s * 1.02, s * 1.08), 0.03), 1.0
    lit = _jitter(rng, (0.97, 0.97, 0.98), 0.02)
    s = rng.uniform(0.45, 0.7)
    return lit, _jitter(rng, (s * 0.9, s * 0.95, s * 1.05), 0.04), 1.0


# (lit colour, shadow colour, relief sign) of one deck, as _cloud_colours draws them
_Colours = tuple[tuple, tuple, float]


def _deck_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours, r: dict) -> CloudLayer:
    """A turbulent deck: cumulus heaps and overcast share the recipe and differ in the ranges ``r`` draws
    from (in this order: frequency, stretch, speed, roughness, cover, softness, relief, shading, detail)."""
    lit, shade, relief_sign = colours
    u = rng.uniform
    f = u(*r["freq"])
    fld = _field(
        rng, key, (f, f * u(*r["stretch"])), motion * u(*r["speed"]), 7, u(*r["rough"]), turbulence=r["turb"]
    )
    return CloudLayer(
        fld,
        u(*r["cover"]),
        u(*r["soft"]),
        r["opacity"],
        lit,
        shade,
        relief_sign * u(*r["relief"]),
        u(0.5, 1.0),
        detail=u(*r["detail"]),
    )


_CUMULUS = dict(
    freq=(0.9, 2.4), stretch=(0.8, 1.3), speed=(0.5, 1.0), rough=(0.58, 0.68), turb=2,
    cover=(0.25, 0.6), soft=(0.1, 0.3), opacity=0.97, relief=(1.5, 3.0), detail=(1.0, 2.0),
)  # fmt: skip
_OVERCAST = dict(
    freq=(0.6, 1.6), stretch=(0.8, 1.5), speed=(0.5, 1.2), rough=(0.5, 0.62), turb=3,
    cover=(0.8, 0.99), soft=(0.5, 1.2), opacity=1.0, relief=(0.8, 2.0), detail=(0.6, 1.4),
)  # fmt: skip


def _cumulus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Puffy heaps: turbulent octaves from the third on give the cauliflower tops."""
    return _deck_layer(rng, key, motion, colours, _CUMULUS)


def _altocumulus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Patches of small rounded cells (mackerel sky, stratocumulus)."""
    lit, shade, relief_sign = colours
    u = rng.uniform
    f = u(0.5, 1.2)
    cf = f * u(4.0, 9.0)
    fld = _field(rng, key, (f, f), motion * u(0.3, 0.6), 3, 0.5)
    cells = NoiseField(
        _mix_key(key, 99),
        (cf, cf * u(0.6, 1.6)),
        5,
        u(0.5, 0.62),
        fld.wind,
        fld.evolve * 1.5,
        float(u(1.9, 2.15)),
        turbulence=0,
    )
    return CloudLayer(
        fld,
        u(0.35, 0.75),
        u(0.12, 0.3),
        u(0.85, 0.97),
        lit,
        shade,
        relief_sign * u(0.5, 1.5),
        u(0.4, 0.9),
        cells=cells,
        cells_mix=u(0.8, 1.4),
        detail=u(0.8, 1.6),
    )


def _cirrus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Translucent patches of fine fibres: an isotropic patch field times streaks."""
    lit, _, relief_sign = colours
    u = rng.uniform
    f = u(0.4, 1.0)
    aniso = u(5.0, 14.0)
    cf = f * u(2.0, 4.0)
    freq = (cf, cf * aniso) if u() < 0.85 else (cf * aniso, cf)
    fld = _field(rng, key, (f, f), motion * u(0.5, 1.0), 3, 0.5)
    fibres = NoiseField(
        _mix_key(key, 77), freq, 6, u(0.55, 0.68), fld.wind, fld.evolve * 1.3, float(u(1.9, 2.15))
    )
    return CloudLayer(
        fld,
        u(0.15, 0.4),
        u(0.5, 0.9),
        u(0.3, 0.6),
        lit,
        lit,
        0.3 * relief_sign,
        0.1,
        cells=fibres,
        cells_mix=u(0.8, 1.4),
        detail=0.4,
    )


def _overcast_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """A deck covering (nearly) the whole sky, with soft edges where it breaks."""
    return _deck_layer(rng, key, motion, colours, _OVERCAST)


def _scud_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Low ragged dark cloud under an overcast deck, faster; its own grey, not the family's colours."""
    u = rng.uniform
    f = u(1.5, 3.0)
    fld = _field(rng, key, (f, f), motion * u(1.2, 2.0), 7, 0.58, turbulence=2)
    g = u(0.35, 0.55)
    return CloudLayer(
        fld,
        u(0.2, 0.45),
        u(0.2, 0.4),
        0.9,
        (g * 1.2, g * 1.2, g * 1.25),
        (g * 0.7, g * 0.72, g * 0.78),
        0.8,
        0.5,
        detail=0.4,
    )


_LAYER_KINDS: dict[str, Callable[[np.random.Generator, int, float, _Colours], CloudLayer]] = {
    "cumulus": _cumulus_layer,
    "altocumulus": _altocumulus_layer,
    "cirrus": _cirrus_layer,
    "overcast": _overcast_layer,
    "scud": _scud_layer,
}


def _make_layer(rng: np.random.Generator, kind: str, family: str, key: int, motion: float) -> CloudLayer:
    """One cloud deck of the given kind. ``motion`` sets the wind (deck units per frame) before scaling.

    The family's colours are drawn first for every kind (scud included), so the random stream, and with it
    every scene of a seed, stays the same whichever kind is drawn.
    """
    colours = _cloud_colours(rng, family)
    make = _LAYER_KINDS.get(kind)
    if make is None:
        raise ValueError(f"unknown cloud kind {kind!r}")
    return make(rng, key, motion, colours)


def _draw_decks(rng: np.random.Generator, family: str, seed: int, motion: float) -> list[CloudLayer]:
    """The cloud decks of the family, far to near (a high cirrus veil, when there is one, comes first)."""
    keys = iter(_mix_key(seed, 1000 + i) for i in range(16))

    def deck(kind: str, speed: float = motion) -> CloudLayer:
        return _make_layer(rng, kind, family, next(keys), speed)

    layers: list[CloudLayer] = []
    if family == "cumulus":
        if rng.uniform() < 0.4:
            layers.append(deck("cirrus"))
        layers.append(deck("cumulus"))
    elif family in ("altocumulus", "cirrus"):
        layers.append(deck(family))
        if rng.uniform() < 0.3:
            layers.append(deck("cumulus"))
    elif family == "overcast":
        layers.append(deck("overcast"))
        if rng.uniform() < 0.5:
            layers.append(deck("scud"))
    elif family == "dusk":
        kinds = ["cumulus", "altocumulus", "cirrus", "overcast"]
        k = kinds[int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1]))]
        layers.append(deck(k))
        if k == "overcast":
            layers[-1] = replace(layers[-1], coverage=float(rng.uniform(0.55, 0.8)))
        if rng.uniform() < 0.35:
            layers.insert(0, deck("cirrus"))
    elif rng.uniform() < (0.45 if family == "night" else 0.2):  # night / aurora: a few clouds, slower
        kind = ["cumulus", "altocumulus", "cirrus"][int(rng.integers(3))]
        layers.append(deck(kind, motion * 0.7))
    return layers


def _with_evolve(layers: list[CloudLayer], evolve: float) -> list[CloudLayer]:
    """The decks with how fast their shapes change relative to their drift (varies a lot in real clips)."""
    return [
        replace(
            ly,
            field=replace(ly.field, evolve=evolve),
            cells=replace(ly.cells, evolve=evolve * 1.4) if ly.cells else None,
        )
        for ly in layers
    ]


def _scaled_layer(layer: CloudLayer, k: float) -> CloudLayer:
    def fld(f: NoiseField) -> NoiseField:
        return replace(f, wind=(f.wind[0] * k, f.wind[1] * k), evolve=f.evolve * k)

    return replace(layer, field=fld(layer.field), cells=fld(layer.cells) if layer.cells else None)
