"""Phone photos: HEIC as an iPhone stores it (pixels in the sensor's orientation, turned by the file's
rotation box and EXIF orientation 6, colours in Display P3 with its ICC profile) is read upright and in
sRGB, like the same photo as a PNG; ``predict`` and the app take it. AVIF is read too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from icc import P3_XY, SRGB_CURVE, matrix_profile, srgb_to_p3
from PIL import Image, features
from typer.testing import CliRunner
from videos import read_video

from skyforecast.cli import app
from skyforecast.io.media import list_images, load_photo

pillow_heif = pytest.importorskip("pillow_heif")

# sRGB colours inside P3 and sRGB both, far enough apart that a turned or mirrored photo shows
COLOURS = np.array([[200, 40, 40], [40, 170, 60], [50, 80, 200], [230, 210, 60], [120, 190, 230], [90] * 3])


def upright_photo() -> np.ndarray:
    """96x64, six flat patches (3 across, 2 down): every turn and mirror moves a patch."""
    photo = np.zeros((64, 96, 3), np.uint8)
    for i, colour in enumerate(COLOURS):
        row, col = divmod(i, 3)
        photo[row * 32 : row * 32 + 32, col * 32 : col * 32 + 32] = colour
    return photo


def patch_centres(image: np.ndarray) -> np.ndarray:
    return np.array([image[row * 32 + 16, col * 32 + 16] for row in range(2) for col in range(3)]).astype(int)


def iphone_heic(path: Path) -> Path:
    """The upright photo in Display P3 numbers with a Display P3 profile, stored turned a quarter to the
    left with EXIF orientation 6 (pillow-heif writes it as the HEIF rotation box, as phones do)."""
    p3 = srgb_to_p3(upright_photo()).astype(np.uint8)
    stored = Image.fromarray(p3).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    profile = matrix_profile("Display P3 test", P3_XY, SRGB_CURVE)
    pillow_heif.from_pillow(stored).save(path, quality=95, exif=exif.tobytes(), icc_profile=profile)
    return path


def test_iphone_heic_reads_upright_in_srgb_like_the_png(tmp_path):
    heic = iphone_heic(tmp_path / "IMG_0001.HEIC")
    png = tmp_path / "same.png"
    Image.fromarray(upright_photo()).save(png)
    raw = np.asarray(pillow_heif.open_heif(heic, convert_hdr_to_8bit=True))  # the numbers in the file
    assert raw.shape == (64, 96, 3) and np.abs(patch_centres(raw) - COLOURS).max() >= 15
    photo, reference = load_photo(heic, min_side=None), load_photo(png, min_side=None)
    assert photo.size == reference.size == (96, 64) and photo.image.size == (96, 64)  # upright, once
    got, expected = patch_centres(np.asarray(photo.image)), patch_centres(np.asarray(reference.image))
    assert np.abs(got - expected).max() <= 3, (got, expected)
    assert photo.notes == []


def test_predict_and_a_folder_take_heic(tmp_path, tiny_weights):
    folder = tmp_path / "phone"
    folder.mkdir()
    iphone_heic(folder / "IMG_0001.HEIC")
    pillow_heif.from_pillow(Image.fromarray(upright_photo())).save(folder / "other.heif", quality=90)
    assert [p.name for p in list_images(folder)] == ["IMG_0001.HEIC", "other.heif"]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(folder), "-o", str(out), "-w", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    video = read_video(tmp_path / "out" / "IMG_0001.mp4")
    assert video.shape == (32, 128, 192, 3)  # the upright 3:2 shape, enlarged to 128 px high
    first = patch_centres(video[0, ::2, ::2])
    assert np.abs(first[3:] - COLOURS[3:]).max() <= 12  # the lower, still row: right place, right colours
    assert (tmp_path / "out" / "other.mp4").is_file()


def test_the_app_takes_a_heic_upload(tmp_path, tiny_weights):
    from skyforecast.app import Studio

    studio = Studio(tiny_weights, "cpu")
    try:
        result = studio.render(str(iphone_heic(tmp_path / "IMG_0002.heic")))
        assert result.ok, result.status
        assert read_video(result.video).shape == (32, 128, 192, 3)
    finally:
        studio.close()


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif_reads(tmp_path):
    path = tmp_path / "photo.avif"
    Image.fromarray(upright_photo()).save(path, quality=95)
    got = patch_centres(np.asarray(load_photo(path, min_side=None).image))
    assert np.abs(got - COLOURS).max() <= 6


def test_the_heif_plugin_loads_only_for_a_photo_that_needs_it(tmp_path):
    """A JPEG's read (the common case, and ``predict``'s start-up) does not pay for importing the plugin; a
    HEIC read in the same fresh process then loads it and succeeds."""
    import subprocess
    import sys

    heic = iphone_heic(tmp_path / "IMG_0002.HEIC")
    jpeg = tmp_path / "photo.jpg"
    Image.fromarray(upright_photo()).save(jpeg, quality=95)
    code = (
        "import sys\n"
        "from skyforecast.io.media import load_photo\n"
        f"load_photo({str(jpeg)!r})\n"
        "assert 'pillow_heif' not in sys.modules, 'imported for a JPEG'\n"
        f"assert load_photo({str(heic)!r}, min_side=None).size == (96, 64)\n"
        "assert 'pillow_heif' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
