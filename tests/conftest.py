"""Shared fixtures. Tests that need the real data in ../shared/data skip cleanly when it is absent, and the
summary says how many did; tests that only need a photo use the small synthetic ones in tests/data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_PHOTOS = REPO / "tests" / "data" / "photos"
SHARED_ABSENT = "../shared/data absent"  # in every skip reason for missing real data


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"{SHARED_ABSENT}: needs {path} (the team's real data, not in a fresh clone)")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """One line saying why tests skipped for lack of the real data, without -rs."""
    skipped = terminalreporter.stats.get("skipped", [])
    count = sum(
        1 for report in skipped if isinstance(report.longrepr, tuple) and SHARED_ABSENT in report.longrepr[2]
    )
    if count:
        terminalreporter.write_line(
            f"{count} tests skipped: {SHARED_ABSENT} (the real photos and clips at {SHARED_DATA})"
        )


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory) -> Path:
    """Four synthetic 320x180 landscape photos with sky, made by our own `skyforecast synth` and carried in
    tests/data/photos (about 37 KB; see its README): cirrus.png (written here as a PNG), cumulus.jpg,
    dusk.jpg and hills.jpg. For tests that need any photo, not real content."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("sample") / "photos"
    folder.mkdir()
    for src in sorted(SAMPLE_PHOTOS.glob("*.jpg")):
        if src.stem == "cirrus":
            with Image.open(src) as im:
                im.save(folder / "cirrus.png")
        else:
            shutil.copy(src, folder / src.name)
    return folder


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


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """An ngf=4 model folder with random BatchNorm statistics and widened last layers, so that its videos
    have visible structure and are far from a copy of the input (random init alone gives near-grey)."""
    folder = tmp_path_factory.mktemp("weights") / "tiny"
    visible_tiny_model(1234, mean_spread=0.2).save_pretrained(folder)
    return folder


def visible_tiny_model(seed: int, mean_spread: float = 0.2):
    """An ngf=4 MDGAN in eval mode whose output depends visibly on ``seed``: random BatchNorm statistics
    (running means in +-``mean_spread``) and a last layer widened 20x."""
    import torch

    from skyforecast.model.networks import MDGAN

    torch.manual_seed(seed)
    model = MDGAN(ngf=4)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-mean_spread, mean_spread)
            m.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        model.base.deconv6[0].weight.mul_(20)
        model.refine.deconv6[0].weight.mul_(20)
    return model.eval()


def randomise_batchnorm(model, seed: int = 1):
    """Give every BatchNorm3d of ``model`` random non-trivial statistics and affine terms, so that folding,
    widening or copying them is tested on values that matter (fresh BatchNorm is an identity)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.3)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model
