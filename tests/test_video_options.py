"""Video options photographers asked for: --crf and --codec h264|h265 on MP4s, BT.709 colour
(the conversion matrix and the tags that name it), and photos with an embedded ICC profile read as sRGB.

Colours are checked by decoding the written MP4 with the bundled ffmpeg, which reads the file's tags; the
ICC profile is an Adobe RGB (1998) profile whose bytes the test builds from the published primaries."""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
from icc import SRGB_XY, matrix_profile, rgb_to_xyz
from PIL import Image, ImageCms
from typer.testing import CliRunner
from videos import read_video

from skyforecast.cli import app
from skyforecast.io.constants import ArgumentError
from skyforecast.io.media import Encoding, load_photo, photo_from_image, write_gif, write_mp4

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
PATCHES = {  # flat colours that a wrong matrix visibly shifts
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "skin": (224, 172, 138),
    "sky": (110, 160, 220),
}
SIDE = 64
runner = CliRunner()


def patches_frame() -> np.ndarray:
    frame = np.zeros((SIDE, SIDE * len(PATCHES), 3), np.uint8)
    for i, colour in enumerate(PATCHES.values()):
        frame[:, i * SIDE : (i + 1) * SIDE] = colour
    return frame


def decode(path, matrix: str | None = "bt709") -> np.ndarray:
    """The MP4's frames as RGB, converted back with ``matrix`` (None: as ffmpeg chooses from the tags)."""
    vf = [] if matrix is None else ["-vf", f"scale=in_color_matrix={matrix}:in_range=tv,format=rgb24"]
    cmd = [FFMPEG, "-v", "error", "-nostdin", "-i", str(path), *vf, "-f", "rawvideo", "-pix_fmt", "rgb24"]
    raw = subprocess.run([*cmd, "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, SIDE, SIDE * len(PATCHES), 3)


def patch_colours(frames: np.ndarray) -> np.ndarray:
    """The centre pixel of each patch in the first frame, as ints."""
    return np.array([frames[0, SIDE // 2, i * SIDE + SIDE // 2] for i in range(len(PATCHES))], int)


def stream_line(path) -> str:
    """The video stream line that ``ffmpeg -i`` prints, e.g. ``Video: h264 ... yuv420p(tv, bt709, ...)``."""
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-i", str(path)]
    info = subprocess.run(cmd, capture_output=True, text=True)
    (line,) = [x.strip() for x in info.stderr.splitlines() if "Video:" in x]
    return line


# ---- BT.709 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_colours_come_back_through_bt709(tmp_path, codec):
    path = tmp_path / "patches.mp4"
    write_mp4([patches_frame()] * 4, path, encoding=Encoding(codec))
    expected = np.array(list(PATCHES.values()))
    # as a player that honours the tags decodes it, and as ffmpeg itself does from the tags
    assert np.abs(patch_colours(decode(path)) - expected).max() <= 3
    assert np.abs(patch_colours(decode(path, None)) - expected).max() <= 3
    assert np.abs(patch_colours(read_video(path)) - expected).max() <= 3  # imageio, as the other tests read
    # the matrix matters: read as BT.601 (what the old conversion wrote) the red loses 20 levels
    assert np.abs(patch_colours(decode(path, "bt601")) - expected).max() >= 15


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_mp4_is_tagged_bt709_tv_range(tmp_path, codec):
    path = tmp_path / "patches.mp4"
    write_mp4([patches_frame()] * 2, path, encoding=Encoding(codec))
    line = stream_line(path)
    assert "yuv420p(tv, bt709, progressive)" in line, line  # matrix, primaries and transfer all bt709
    assert ("hevc" in line and "hvc1" in line) if codec == "h265" else ("h264" in line and "avc1" in line)


# ---- CRF and codec -----------------------------------------------------------------------------------


def encoder_settings(path) -> str:
    """The settings string x264/x265 write into the stream (``crf=18.0`` ...)."""
    data = open(path, "rb").read()
    found = re.search(rb"crf=(\d+\.\d)", data)
    assert found, "no encoder settings in the stream"
    return found.group(1).decode()


def textured(t: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(t)]


def test_default_crf_is_18_for_h264_and_20_for_h265(tmp_path):
    write_mp4(textured(2), tmp_path / "a.mp4")
    write_mp4(textured(2), tmp_path / "b.mp4", encoding=Encoding("h265"))
    assert encoder_settings(tmp_path / "a.mp4") == "18.0"
    assert encoder_settings(tmp_path / "b.mp4") == "20.0"
    assert b"x264" in (tmp_path / "a.mp4").read_bytes() and b"x265" in (tmp_path / "b.mp4").read_bytes()


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_crf_trades_size_for_quality(tmp_path, codec):
    frames = textured()
    sizes, errors = [], []
    for crf in (10, 40):
        path = tmp_path / f"{crf}.mp4"
        write_mp4(frames, path, encoding=Encoding(codec, crf))
        assert encoder_settings(path) == f"{crf}.0"
        video = read_video(path)
        assert video.shape == (8, 96, 128, 3)
        sizes.append(path.stat().st_size)
        errors.append(np.abs(video.astype(int) - np.stack(frames)).mean())
    assert sizes[0] > 2 * sizes[1]
    assert errors[0] < errors[1]


@pytest.mark.parametrize(
    ("codec", "crf", "argument"),
    [
        ("vp9", None, "codec"),
        ("h264", 52, "crf"),
        ("h265", -1, "crf"),
        ("h264", 18.5, "crf"),
        ("h264", True, "crf"),
    ],
)
def test_bad_encoding_values_name_the_argument(codec, crf, argument):
    with pytest.raises(ArgumentError) as e:
        Encoding(codec, crf)
    assert e.value.argument == argument


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--crf", "52"], "--crf"), (["--crf", "-3"], "--crf"), (["--codec", "av1"], "--codec")],
)
def test_predict_refuses_bad_values_with_exit_2(tmp_path, args, flag):
    photo = tmp_path / "p.png"
    Image.new("RGB", (64, 48), (90, 140, 200)).save(photo)
    result = runner.invoke(app, ["predict", str(photo), "-o", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert flag in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.mp4").exists()


def ffmpeg_without_x265(folder) -> str:
    """An ffmpeg that lists its encoders without libx265 (as builds without it do) and runs the real one
    for anything else."""
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  [ "$a" = "-encoders" ] && { "' + FFMPEG + '" "$@" | grep -v libx265; exit 0; }\n'
        "done\n"
        'exec "' + FFMPEG + '" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for ffmpeg")
def test_h265_without_libx265_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", ffmpeg_without_x265(tmp_path))
    photo = tmp_path / "p.png"
    Image.new("RGB", (64, 48), (90, 140, 200)).save(photo)
    result = runner.invoke(app, ["predict", str(photo), "-o", str(tmp_path), "--codec", "h265"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--codec h265 needs an ffmpeg with libx265" in lines[0], result.output
    assert not (tmp_path / "p.mp4").exists()
    with pytest.raises(ArgumentError, match="libx265"):
        write_mp4(textured(2), tmp_path / "v.mp4", encoding=Encoding("h265"))
    write_mp4(textured(2), tmp_path / "v.mp4")  # H.264 still works with that ffmpeg
    assert "h264" in stream_line(tmp_path / "v.mp4")


def test_gif_takes_and_ignores_the_encoding(tmp_path):
    write_gif(textured(3), tmp_path / "a.gif", encoding=Encoding("h265", 40))
    write_gif(textured(3), tmp_path / "b.gif")
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


def test_predict_h265_end_to_end(tmp_path, sample_photos, tiny_weights):
    result = runner.invoke(
        app,
        [
            "predict", str(sample_photos / "dusk.jpg"), "-w", str(tiny_weights), "-o", str(tmp_path),
            "-f", "mp4", "-f", "gif", "--codec", "h265", "--crf", "28", "--resolution", "model",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mp4 = tmp_path / "dusk.mp4"
    line = stream_line(mp4)
    assert "hevc" in line and "hvc1" in line and "bt709" in line, line
    assert encoder_settings(mp4) == "28.0"
    assert read_video(mp4).shape[0] == 32
    assert read_video(tmp_path / "dusk.gif").shape[0] == 32  # the GIF is written as before


def test_crf_with_only_gifs_says_it_is_ignored(tmp_path, sample_photos, tiny_weights):
    result = runner.invoke(
        app,
        [
            "predict", str(sample_photos / "dusk.jpg"), "-w", str(tiny_weights), "-o", str(tmp_path),
            "-f", "gif", "--crf", "20", "--resolution", "model",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--crf and --codec apply to MP4s only" in result.output
    assert (tmp_path / "dusk.gif").exists()


# ---- ICC profiles ------------------------------------------------------------------------------------

ADOBE_XY = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]  # Adobe RGB (1998), white D65, gamma 563/256
ADOBE_GAMMA = 563 / 256


def adobe_rgb_profile() -> bytes:
    """An ICC v2 display profile (matrix/TRC) for Adobe RGB (1998)."""
    return matrix_profile("Adobe RGB (1998) test", ADOBE_XY, b"curv\0\0\0\0" + struct.pack(">IH", 1, 563))


def adobe_to_srgb(rgb) -> np.ndarray:
    """What an Adobe RGB (1998) colour is in sRGB, computed here from the two colour spaces' definitions."""
    linear = (np.asarray(rgb, float) / 255.0) ** ADOBE_GAMMA
    srgb = np.clip(np.linalg.solve(rgb_to_xyz(SRGB_XY), rgb_to_xyz(ADOBE_XY) @ linear), 0, 1)
    encoded = np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    return np.round(encoded * 255)


ADOBE_COLOURS = [(0, 200, 0), (60, 160, 60), (200, 60, 50), (40, 90, 200), (128, 128, 128)]


def colour_strip(colours, height: int = 8) -> Image.Image:
    return Image.fromarray(np.repeat(np.repeat(np.array([colours], np.uint8), 8, axis=1), height, axis=0))


def strip_colours(image: Image.Image, count: int) -> np.ndarray:
    a = np.asarray(image).astype(int)
    return np.array([a[4, i * 8 + 4] for i in range(count)])


def test_the_test_profile_is_adobe_rgb_to_littlecms():
    profile = ImageCms.ImageCmsProfile(io.BytesIO(adobe_rgb_profile()))
    assert ImageCms.getProfileDescription(profile).strip() == "Adobe RGB (1998) test"


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_adobe_rgb_photo_is_converted_to_srgb(tmp_path, suffix):
    path = tmp_path / f"adobe{suffix}"
    options = {"quality": 100, "subsampling": 0} if suffix == ".jpg" else {}
    colour_strip(ADOBE_COLOURS).save(path, icc_profile=adobe_rgb_profile(), **options)
    stored = strip_colours(Image.open(path).convert("RGB"), len(ADOBE_COLOURS))
    photo = load_photo(path)
    got = strip_colours(photo.image, len(ADOBE_COLOURS))
    expected = np.array([adobe_to_srgb(c) for c in stored])
    assert np.abs(got - expected).max() <= 2, (got, expected)
    # Adobe RGB's pure green lies outside sRGB and clips back to about the same numbers; its mid green loses
    # all its red, its red gains ~30 levels, its blue loses its red: visibly not the numbers as stored
    assert np.abs(got[1:4] - stored[1:4]).max(axis=1).min() >= 20, (got, stored)
    assert np.abs(got[4] - stored[4]).max() <= 2  # grey stays grey (same white, same gamma ~2.2)
    assert photo.notes == []


def test_photo_from_image_applies_its_profile():
    image = colour_strip(ADOBE_COLOURS)
    image.info["icc_profile"] = adobe_rgb_profile()
    photo = photo_from_image(image)
    got = strip_colours(photo.full, len(ADOBE_COLOURS))
    expected = np.array([adobe_to_srgb(c) for c in ADOBE_COLOURS])
    assert np.abs(got - expected).max() <= 2
    plain = photo_from_image(colour_strip(ADOBE_COLOURS))  # no profile: the numbers as given
    assert np.array_equal(strip_colours(plain.full, len(ADOBE_COLOURS)), ADOBE_COLOURS)


def noise_image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8))


def test_photo_without_profile_or_with_srgb_profile_is_untouched(tmp_path):
    image = noise_image()
    image.save(tmp_path / "plain.png")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.save(tmp_path / "srgb.png", icc_profile=srgb)
    for name in ("plain.png", "srgb.png"):
        photo = load_photo(tmp_path / name)
        assert np.array_equal(np.asarray(photo.image), np.asarray(image)), name
        assert photo.notes == []


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_broken_profile_is_a_note_and_the_pixels_as_stored(tmp_path, suffix):
    path = tmp_path / f"broken{suffix}"
    noise_image().save(path, icc_profile=b"this is not an ICC profile at all" * 4, quality=95)
    stored = np.asarray(Image.open(path).convert("RGB"))
    photo = load_photo(path)
    assert np.array_equal(np.asarray(photo.image), stored)
    (note,) = photo.notes
    assert "colour profile not used" in note and "\n" not in note


def test_broken_profile_through_predict_is_a_note_not_a_traceback(tmp_path, tiny_weights):
    path = tmp_path / "broken.png"
    noise_image().save(path, icc_profile=b"\0" * 200)
    result = subprocess.run(
        [sys.executable, "-m", "skyforecast", "predict", str(path), "-w", str(tiny_weights),
         "-o", str(tmp_path), "--resolution", "model"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "colour profile not used" in result.stderr and "Traceback" not in result.stderr
    assert read_video(tmp_path / "broken.mp4").shape[0] == 32
