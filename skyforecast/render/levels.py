"""A sky moved from one level of brightness and colour to another without losing its clouds: used where
sky from one part of a photo (or of its periodic copy) is laid where the sky has another level. No torch
here."""

from __future__ import annotations

import numpy as np

PROFILE_LIMIT = 1.25  # a rolled sky's level is moved by at most this factor
# ... and brightened at most this share of the way to white: a copy from the darker side of a photo landing
# next to its brighter side (towards the sun) kept a band of darker blue at half the way (15 levels in
# clear sky across the join on examples/sky.jpg, 3 at three quarters)
TOWARDS_WHITE = 0.75


def relevel(x: np.ndarray, came: np.ndarray, land: np.ndarray, limit: float = PROFILE_LIMIT) -> np.ndarray:
    """``x`` (float, 0..255) moved from the level ``came`` to the level ``land`` (both broadcast to it) by
    an offset, within a factor ``limit`` of ``came``: an offset keeps the clouds' contrast (a gain scaled it,
    and two overlaid phases looked flatter), and it fades out towards white when brightening and towards
    black when darkening, so a lit cloud is not clipped into a flat white shape. Where the limit stops a
    channel short, every channel goes the same share of its way, so the colour keeps its hue."""
    came = np.maximum(came, 1.0)
    return moved_by(x, level_offset(came, land, limit), came)


def level_offset(came: np.ndarray, land: np.ndarray, limit: float = PROFILE_LIMIT) -> np.ndarray:
    """The offset ``relevel`` moves a level ``came`` (at least 1) by towards ``land``. Levels are smooth:
    made at a reduced size and enlarged, it costs a fraction of the whole-size arithmetic."""
    offset = land - came
    high = np.minimum(came * limit, came + (255.0 - came) * TOWARDS_WHITE)
    allowed = np.clip(land, came / limit, high) - came
    # every channel goes the same share of its way (brightening: short of white, so nothing below white
    # reaches it): clipped one by one, a deep blue copy moved towards a pale edge came out teal
    share = np.divide(allowed, offset, out=np.ones_like(offset), where=np.abs(offset) > 1e-6)
    return offset * np.clip(share, 0.0, 1.0).min(axis=-1, keepdims=True)


def moved_by(x: np.ndarray, offset: np.ndarray, came: np.ndarray) -> np.ndarray:
    """``x`` moved by ``offset`` from its level ``came`` (at least 1), fading out towards white where it
    brightens and towards black where it darkens (``relevel``)."""
    room = np.where(offset > 0, (255.0 - x) / np.maximum(255.0 - came, 1.0), x / came)
    return x + offset * np.clip(room, 0.0, 1.0)
