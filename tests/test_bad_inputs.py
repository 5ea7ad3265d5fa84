"""Photos that are broken, unusual or huge: each gives a correct output or one clear line naming the file
and the reason, and a batch goes on past them. Every test builds its own files.

Most cases run as one batch through the real CLI in a subprocess (one model load); ``load_photo`` unit
tests check the decoded pixels where "correct" needs more than "did not crash".
"""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skyforecast.io.media import InputError, load_photo
from skyforecast.model.networks import MDGAN

# ---- file builders -----------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_rows(
    path: Path, width: int, height: int, row: Callable[[int], bytes], bit_depth: int = 8, color_type: int = 2
) -> Path:
    """Write a valid PNG whose IDAT is compressed row by row: a 96-megapixel image costs no memory to make.
    ``row(y)`` returns the raw bytes of one scanline (without the filter byte)."""
    comp = zlib.compressobj(1)
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)),
    ]
    data = bytearray()
    for y in range(height):
        data += comp.compress(b"\0" + row(y))
        if len(data) > 1 << 20:
            parts.append(_chunk(b"IDAT", bytes(data)))
            data.clear()
    data += comp.flush()
    parts += [_chunk(b"IDAT", bytes(data)), _chunk(b"IEND", b"")]
    path.write_bytes(b"".join(parts))
    return path


def forged_header_png(path: Path) -> Path:
    """A 100-byte PNG whose IHDR claims 100000 x 100000 pixels."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 301)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )
    return path


def zero_bomb_png(path: Path, side: int = 20_000) -> Path:
    """A truly decodable PNG of side x side 1-bit pixels, all zero: ~50 KB on disk, 400 megapixels."""
    zero_row = bytes((side + 7) // 8)
    return write_png_rows(path, side, side, lambda y: zero_row, bit_depth=1, color_type=0)


def sky_over_ground(width: int, height: int) -> Image.Image:
    """Upright test photo: bright sky (top half) over dark ground, with texture so JPEG has detail."""
    rng = np.random.default_rng(width * 7 + height)
    a = np.empty((height, width, 3), np.uint8)
    a[: height // 2] = (150, 190, 240)
    a[height // 2 :] = (30, 45, 25)
    noise = rng.integers(-12, 12, a.shape)
    return Image.fromarray(np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8))


def exif_rotated_jpeg(path: Path, upright: Image.Image, orientation: int) -> Path:
    """Store ``upright`` the way a camera held sideways does: pixels rotated, EXIF Orientation saying how
    to turn them back (6: rotate 90 degrees clockwise to view, 8: counter-clockwise)."""
    stored = upright.transpose(Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, "JPEG", quality=92, exif=exif)
    return path


def truncated(path: Path, image: Image.Image, fmt: str) -> Path:
    buf = io.BytesIO()
    image.save(buf, fmt)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (80, 60), c) for c in ((220, 30, 30), (30, 220, 30), (30, 30, 220))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def multipage_tiff(path: Path) -> Path:
    pages = [Image.new("RGB", (90, 60), c) for c in ((20, 200, 40), (200, 20, 40))]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def palette_with_transparency(path: Path) -> Path:
    im = Image.new("P", (40, 20), 0)
    im.putpalette([0, 0, 0, 200, 40, 40] + [0] * 762)
    im.paste(1, (20, 0, 40, 20))  # right half red, left half index 0 = transparent
    im.save(path, transparency=0)
    return path


def gray16_png(path: Path) -> tuple[Path, np.ndarray]:
    values = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    Image.fromarray(values).save(path)
    return path, values


# ---- one batch through the real CLI -------------------------------------------------------------------

BROKEN = {
    "empty.jpg": "empty file (0 bytes)",
    "notes.jpg": "not an image file Pillow can read",
    "cut.jpg": "truncated or damaged image data",
    "cut.png": "truncated or damaged image data",
    "forged-header.png": "image too large",
    "zero-bomb.png": "image too large",
}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(5)
    folder = tmp_path_factory.mktemp("w") / "tiny"
    MDGAN(ngf=4).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("messy")
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("these are my notes, not a photo\n")
    truncated(d / "cut.jpg", sky_over_ground(400, 300), "JPEG")
    truncated(d / "cut.png", sky_over_ground(400, 300), "PNG")
    forged_header_png(d / "forged-header.png")
    zero_bomb_png(d / "zero-bomb.png")
    gray16_png(d / "gray16.png")
    Image.new("CMYK", (96, 64), (0, 255, 255, 0)).save(d / "cmyk.jpg", quality=95)
    palette_with_transparency(d / "palette.png")
    sky_over_ground(120, 90).convert("L").save(d / "gray.jpg")
    exif_rotated_jpeg(d / "rotated.jpg", sky_over_ground(300, 200), 6)
    animated_gif(d / "animated.gif")
    multipage_tiff(d / "pages.tif")
    Image.new("RGB", (1, 1), (90, 140, 200)).save(d / "one-pixel.png")
    sky_over_ground(200, 100).save(d / "my sky é 空.jpg")
    return d


def _cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SKYFORECAST_WEIGHTS"}
    return subprocess.run(
        [sys.executable, "-m", "skyforecast", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def test_a_messy_folder_as_one_batch(messy_folder, tiny_weights, tmp_path):
    out = tmp_path / "out"
    proc = _cli(
        "predict",
        str(messy_folder),
        "-o",
        str(out),
        "-w",
        str(tiny_weights),
        "-f",
        "gif",
        "--batch-size",
        "4",
    )
    err = proc.stderr
    assert "Traceback" not in err
    assert proc.returncode == 1, err  # some inputs failed

    # every broken file: one line naming it and the reason, and again in the summary's failure list
    for name, reason in BROKEN.items():
        lines = [line for line in err.splitlines() if name in line]
        assert any(line.startswith("error:") and reason in line for line in lines), (name, err)
        assert any(line.startswith("  ") and reason in line for line in lines), (name, err)
    assert re.search(r"9 done, 0 skipped[^,]*, 6 failed", err), err
    assert "animated image with 3 frames; using the first" in err
    assert "multi-page image with 2 frames; using the first" in err

    expected_sizes = {  # (width, height) of written frames: the photo's upright size, at least 128 px high
        "gray16": (512, 128),
        "cmyk": (192, 128),
        "palette": (256, 128),
        "gray": (170, 128),
        "rotated": (300, 200),  # stored 200x300 + EXIF 6 = upright 300x200
        "animated": (170, 128),
        "pages": (192, 128),
        "one-pixel": (128, 128),
        "my sky é 空": (256, 128),
    }
    written = {p.stem: p for p in out.glob("*.gif")}
    assert set(written) == set(expected_sizes)
    for stem, size in expected_sizes.items():
        with Image.open(written[stem]) as gif:
            # 32 frames at 8 fps
            assert gif_seconds(gif) == pytest.approx(4.0, abs=0.17) and gif.size == size, stem
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial outputs left

    # the rerun skips what was done and reports the same failures
    again = _cli("predict", str(messy_folder), "-o", str(out), "-w", str(tiny_weights), "-f", "gif", "-q")
    assert again.returncode == 1
    assert re.search(r"0 done, 9 skipped[^,]*, 6 failed", again.stderr), again.stderr


def test_usage_errors_exit_2(tmp_path, tiny_weights):
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    bad_size = _cli("predict", str(photo), "--size", "huge", "-w", str(tiny_weights))
    assert bad_size.returncode == 2 and "Traceback" not in bad_size.stderr
    assert "--size must be N or WxH" in bad_size.stderr


@pytest.mark.parametrize(
    "content, reason", [(b"my notes", "not an image file Pillow can read"), (b"", "empty")]
)
def test_a_mask_that_is_not_an_image_is_named_before_any_photo(tmp_path, tiny_weights, content, reason):
    photos = [tmp_path / "ok.jpg", tmp_path / "fine.png"]
    for photo in photos:
        sky_over_ground(64, 36).save(photo)
    mask = tmp_path / "notes.png"
    mask.write_bytes(content)
    out = tmp_path / "out"
    proc = _cli("predict", *map(str, photos), "--mask", str(mask), "-o", str(out), "-w", str(tiny_weights))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: --mask {mask}: ") and reason in lines[0], lines
    assert not out.exists()  # no photo was processed


def test_all_good_exits_0_and_names_with_spaces_work(tmp_path, tiny_weights):
    photo = tmp_path / "évening sky 1.png"
    sky_over_ground(64, 64).save(photo)
    proc = _cli("predict", str(photo), "-w", str(tiny_weights), "-o", str(tmp_path / "out dir"), "-f", "mp4")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out dir" / "évening sky 1.mp4").stat().st_size > 1000


# ---- huge photos in bounded memory ---------------------------------------------------------------------

_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    "sys.exit(rc)\n"
)


def gif_seconds(gif: Image.Image) -> float:
    """A GIF's play time (GIF durations are whole centiseconds: 125 ms is written as 120 ms). Pillow stores
    a run of identical frames (a flat photo whose sky has nothing to show moving) as one frame with their
    summed duration, so the time, not the frame count, says that all 32 frames were written."""
    total = 0
    for i in range(gif.n_frames):
        gif.seek(i)
        total += gif.info.get("duration", 0)
    return total / 1000.0


def _predict_peak_mb(photo: Path, weights: Path, out: Path) -> int:
    """Peak RSS (MB) of a real `skyforecast predict` process, measured by a wrapper whose only child it
    is (RUSAGE_CHILDREN of the test process would include every earlier subprocess)."""
    cmd = [sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "skyforecast", "predict", str(photo)]
    cmd += ["-w", str(weights), "-o", str(out), "-f", "gif"]
    env = {k: v for k, v in os.environ.items() if k != "SKYFORECAST_WEIGHTS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr  # a 96 MP photo is one we accept: no Pillow bomb warning either
    return int(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_12000x8000_photos_predict_in_bounded_memory(tmp_path, tiny_weights):
    w, h = 12000, 8000
    small = tmp_path / "small.jpg"
    sky_over_ground(640, 360).save(small, quality=90)
    big_png = write_png_rows(
        tmp_path / "big.png", w, h, lambda y: bytes((y * 255 // h, 128, 255 - y * 255 // h)) * w
    )
    gradient = Image.linear_gradient("L").resize((w, h))
    Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM), gradient)).save(
        tmp_path / "big.jpg", quality=85
    )
    del gradient
    big_jpg = tmp_path / "big.jpg"

    base = _predict_peak_mb(small, tiny_weights, tmp_path / "o1")
    jpg = _predict_peak_mb(big_jpg, tiny_weights, tmp_path / "o2")
    png = _predict_peak_mb(big_png, tiny_weights, tmp_path / "o3")
    print(f"peak RSS: 640x360 jpg {base} MB, 12000x8000 jpg {jpg} MB, 12000x8000 png {png} MB")
    full_rgb_mb = w * h * 3 / 2**20  # 275 MB for one full-resolution RGB copy
    assert jpg - base < 0.25 * full_rgb_mb  # draft-mode decode: never the full image
    assert png - base < 1.5 * full_rgb_mb  # one full decode, reduced before any conversion copy
    for name in ("o2/big.gif", "o3/big.gif"):
        with Image.open(tmp_path / name) as gif:
            assert gif.size == (720, 480) and gif_seconds(gif) == pytest.approx(4.0, abs=0.17)  # 480 px high


# ---- load_photo: the pixels are right ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_raise_one_line_naming_the_file(messy_folder, name):
    with pytest.raises(InputError) as info:
        load_photo(messy_folder / name)
    assert str(info.value).startswith(str(messy_folder / name))
    assert BROKEN[name] in info.value.reason and "\n" not in str(info.value)


def test_missing_file_and_folder_are_clear(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_photo(tmp_path / "nope.jpg")
    with pytest.raises(InputError):
        load_photo(tmp_path)


def test_16bit_grey_keeps_its_values(tmp_path):
    path, values = gray16_png(tmp_path / "g.png")
    rgb = np.asarray(load_photo(path).image).astype(int)
    expected = np.round(values / 257.0).astype(int)
    assert np.abs(rgb[..., 0] - expected).max() <= 1  # a gradient, not clipped to white
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_16bit_rgb_keeps_its_values(tmp_path):
    import cv2

    bgr = np.zeros((20, 30, 3), np.uint16)
    bgr[..., 2] = 60000  # red channel (OpenCV writes BGR)
    bgr[..., 1] = 20000
    bgr[..., 0] = 1000
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr)
    rgb = np.asarray(load_photo(tmp_path / "rgb16.png").image).astype(int)
    assert np.abs(rgb[5, 5] - np.array([60000, 20000, 1000]) / 257).max() <= 1.5


def test_cmyk_jpeg_comes_out_red(tmp_path):
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    r, g, b = np.asarray(load_photo(tmp_path / "c.jpg").image)[15, 20].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_palette_transparency_is_flattened_on_white(tmp_path):
    photo = load_photo(palette_with_transparency(tmp_path / "p.png"))
    a = np.asarray(photo.image)
    assert photo.image.mode == "RGB"
    assert (a[:, :20] == 255).all()  # transparent -> white
    assert (a[:, 20:] == (200, 40, 40)).all()


def test_grey_and_grey_alpha(tmp_path):
    Image.new("L", (10, 10), 77).save(tmp_path / "l.png")
    Image.new("LA", (10, 10), (77, 255)).save(tmp_path / "la.png")
    for name in ("l.png", "la.png"):
        assert (np.asarray(load_photo(tmp_path / name).image) == 77).all()


@pytest.mark.parametrize("orientation", [6, 8])
@pytest.mark.parametrize("size", [(300, 200), (2400, 1600)])  # the large one goes through draft mode
def test_exif_rotated_photo_comes_out_upright(tmp_path, orientation, size):
    path = exif_rotated_jpeg(tmp_path / "r.jpg", sky_over_ground(*size), orientation)
    with Image.open(path) as raw:
        assert raw.size == size[::-1]  # stored sideways
    photo = load_photo(path)
    assert photo.size == size
    a = np.asarray(photo.image).astype(float).mean(axis=2)
    assert photo.image.width > photo.image.height
    h = a.shape[0]
    assert a[: h // 3].mean() > 150 and a[-h // 3 :].mean() < 60  # sky on top, ground below


def test_animated_gif_and_multipage_tiff_use_the_first_frame(tmp_path):
    gif = load_photo(animated_gif(tmp_path / "a.gif"))
    assert gif.notes == ["animated image with 3 frames; using the first"]
    r, g, b = np.asarray(gif.image)[30, 40].astype(int)
    assert r > 180 and g < 80 and b < 80
    tif = load_photo(multipage_tiff(tmp_path / "t.tif"))
    assert tif.notes == ["multi-page image with 2 frames; using the first"]
    assert tuple(np.asarray(tif.image)[10, 10]) == (20, 200, 40)


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (90, 140, 200)).save(tmp_path / "p.png")
    photo = load_photo(tmp_path / "p.png")
    assert photo.size == (1, 1) and tuple(np.asarray(photo.image)[0, 0]) == (90, 140, 200)


def test_big_png_is_reduced_but_full_resolution_stays_available(tmp_path):
    path = write_png_rows(tmp_path / "wide.png", 1800, 1200, lambda y: bytes((y % 256, 100, 50)) * 1800)
    reduced = load_photo(path)
    assert reduced.size == (1800, 1200)  # the full size is still reported
    assert reduced.image.size == (450, 300)  # factor 4 keeps the short side >= 256
    full = load_photo(path, min_side=None)
    assert full.image.size == (1800, 1200)
    assert tuple(np.asarray(full.image)[7, 0]) == (7, 100, 50)
