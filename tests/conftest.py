"""Shared fixtures. Tests that need the real data in ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"needs {path} (the team's shared real data), absent here")
    return path


@pytest.fixture
def real_photos() -> Path:
    """Folder of 4 real 640x360 landscape photos."""
    return _shared("photos")


@pytest.fixture
def real_sky_dev() -> Path:
    """16 real Sky Timelapse clips in the dataset's own layout."""
    return _shared("real-sky-dev")


@pytest.fixture
def real_short_clip() -> Path:
    """8 real frames: a clip shorter than 32 frames."""
    return _shared("real-short-clip")
