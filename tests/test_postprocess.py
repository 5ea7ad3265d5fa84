"""Longer videos by chaining predictions (``--frames``) and seamless loops (``--loop``), with the shared
tiny model (``tiny_weights``: its videos change by ~15 levels per frame, so a seam that copied instead of
blending would show)."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.render.postprocess import join, make_loop, predict_long

runner = CliRunner()


def read_frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))])


MODEL = ("--resolution", "model")  # the model's own pixels: predictions chained for --frames


def steps(video: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each frame to the next, the last one wrapping around to the first."""
    v = video.astype(np.float32)
    return np.abs(np.roll(v, -1, axis=0) - v).mean(axis=(1, 2, 3))


def real_clip(real_sky_dev: Path, name: str = "grid03") -> np.ndarray:
    files = sorted(glob.glob(str(real_sky_dev / name / f"{name}_1" / "*.jpg")))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_frames_96_writes_96_frames_continuing_the_first_prediction(tmp_path, sample_photos, tiny_weights):
    photo = str(sample_photos / "cirrus.png")
    result = runner.invoke(
        app,
        ["predict", photo, "-w", str(tiny_weights), "-o", str(tmp_path), "-fframes", "--frames=96", *MODEL],
    )
    assert result.exit_code == 0, result.output
    long = read_frames(tmp_path / "cirrus_frames")
    assert long.shape == (96, 128, 228, 3)
    result = runner.invoke(
        app, ["predict", photo, "-w", str(tiny_weights), "-o", str(tmp_path / "s"), "-f", "frames", *MODEL]
    )
    short = read_frames(tmp_path / "s" / "cirrus_frames")
    assert np.array_equal(long[:27], short[:27])  # chaining starts from the ordinary prediction
    assert not np.array_equal(long[40:72], long[8:40])  # later frames are new predictions, not a repeat


def test_chained_seams_are_cross_fades(sample_photos, tiny_weights):
    """86 = 32 + 27 + 27 frames: three predictions, each seeded by the frame 4 steps before the end of the
    one before, with two seams of 5 cross-faded frames (27..31 and 54..58). Any count from 60 to 86 needs
    the third prediction: frames 54..58 are the second seam, not copies of the second prediction."""
    pipe = SkyPipeline.from_pretrained(tiny_weights, device="cpu")
    square = np.asarray(Image.open(sample_photos / "cirrus.png").convert("RGB").resize((128, 128)))[None]
    first = pipe.predict_squares(square)[0]
    second = pipe.predict_squares(first[27][None])[0]
    third = pipe.predict_squares(second[27][None])[0]
    video = predict_long(pipe, square, 86, overlap=4)[0]
    assert video.shape == (86, 128, 128, 3)
    # copies, to within 1 level (CPU kernels may round differently between calls)
    assert np.abs(video[:27].astype(int) - first[:27]).max() <= 1
    assert np.abs(video[32:54].astype(int) - second[5:27]).max() <= 1
    assert np.abs(video[59:86].astype(int) - third[5:32]).max() <= 1
    for seam, a, b in ((27, first, second), (54, second, third)):
        assert np.abs(a[27:32].astype(int) - b[:5]).max() > 20  # the fade has something to blend
        for j in range(5):  # the five shared frames move from the earlier prediction to the later one
            w = (j + 1) / 6
            expected = (1 - w) * a[27 + j].astype(np.float32) + w * b[j]
            assert np.abs(video[seam + j] - expected).max() <= 1.5, (seam, j)
    shorter = predict_long(pipe, square, 60, overlap=4)[0]  # any length is a prefix of a longer one
    assert np.abs(shorter.astype(int) - video[:60]).max() <= 1


def test_join_keeps_both_ends():
    a = np.zeros((10, 4, 4, 3), np.uint8)
    b = np.full((10, 4, 4, 3), 200, np.uint8)
    out = join(a, b, overlap=2)
    assert len(out) == 10 + 10 - 3
    assert out[:7].max() == 0 and out[10:].min() == 200
    assert 0 < out[7].mean() < out[8].mean() < out[9].mean() < 200


@pytest.mark.parametrize("style", ["fade", "pingpong"])
def test_loop_on_a_real_clip_returns_to_its_start_smoothly(real_sky_dev, style):
    clip = real_clip(real_sky_dev)
    loop = make_loop(clip.copy(), 24, style)
    assert loop.shape == (24, 128, 128, 3)
    s = steps(loop)
    assert s[-1] <= s[:-1].max()  # last -> first is no bigger a step than the loop's own steps
    raw = steps(clip[:24])[-1]  # without looping the wrap-around would jump
    assert s[-1] < raw / 2


def test_pingpong_with_an_odd_count():
    video = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    loop = make_loop(video, 7, "pingpong")
    assert [int(f[0, 0, 0]) for f in loop] == [0, 1, 2, 3, 3, 2, 1]


def test_loop_cli_at_180_px(tmp_path, sample_photos, tiny_weights):
    result = runner.invoke(
        app,
        [
            "predict", str(sample_photos / "cirrus.png"), "-w", str(tiny_weights), "-o", str(tmp_path),
            "-f", "frames", "--loop", "--resolution", "180",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = read_frames(tmp_path / "cirrus_frames")
    assert frames.shape == (32, 180, 320, 3)
    s = steps(frames)
    assert s[-1] <= 1.5 * np.median(s[:-1])  # the wrap-around step is an ordinary step


def test_loop_needs_a_few_frames(tmp_path, sample_photos):
    result = runner.invoke(app, ["predict", str(sample_photos / "cirrus.png"), "--loop", "--frames", "3"])
    assert result.exit_code == 2 and "--frames 4" in result.output


def test_prefetched_still_and_mask_give_the_same_video_and_are_used(tmp_path):
    """``predict`` starts the first photos' decode and sky mask while the model loads (``prefetch``); the
    video must be exactly what the writer makes without it, and the early work must be the one used."""
    from skyforecast.batch import Job
    from skyforecast.io.media import load_photo
    from skyforecast.render.postprocess import PostProcess

    source = Path(__file__).parent / "data" / "photos" / "cumulus.jpg"
    photo = load_photo(source)
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (1, 32, 128, 128, 3), dtype=np.uint8)
    plain, _ = PostProcess().render(photo, videos)

    early = PostProcess()
    early.prefetch([Job(source, {"mp4": tmp_path / "a.mp4"})])
    size, _ = early.format_size(photo.size, "mp4")
    deadline = 50
    while (str(source), tuple(size)) not in early._early and deadline:
        deadline -= 1
        time.sleep(0.1)
    assert (str(source), tuple(size)) in early._early  # the background work started for this photo
    ahead, _ = early.render(photo, videos)
    assert not early._early  # taken by the render, not left behind
    assert np.array_equal(ahead, plain)
    assert not np.array_equal(ahead[31], ahead[0])  # the sky moved: the mask was not empty

    PostProcess(mask="none").prefetch([Job(source, {"mp4": tmp_path / "b.mp4"})])  # nothing to do: no error


def test_prefetch_reads_only_jpeg_headers(tmp_path):
    """The early start takes only JPEGs, sized as load_photo orients them (EXIF 6: rotated a quarter turn):
    a PNG's EXIF may follow its pixels, and reading it would decode the whole image beside the batch."""
    from skyforecast.io.media import peek_jpeg_size

    im = Image.new("RGB", (60, 40), (90, 140, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "turned.jpg", exif=exif)
    im.save(tmp_path / "flat.png")
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    assert peek_jpeg_size(tmp_path / "turned.jpg") == (40, 60)
    assert peek_jpeg_size(tmp_path / "flat.png") is None
    assert peek_jpeg_size(tmp_path / "junk.jpg") is None


def test_a_big_photo_is_prepared_while_the_one_before_it_renders(tmp_path):
    """Frames over a megapixel render one photo at a time; the next photo's decode and sky layer are made
    while it waits (one photo ahead at most), and its video is exactly the one made without waiting."""
    import threading

    from videos import read_video

    from skyforecast.io.media import load_photo
    from skyforecast.render.postprocess import PostProcess

    photo = load_photo(Path(__file__).parent / "data" / "photos" / "cumulus.jpg")
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (1, 32, 128, 128, 3), dtype=np.uint8)
    post = PostProcess(resolution=800)
    size, _ = post.output_size(photo.size)
    assert size[0] * size[1] > 1_000_000  # the big-frame path
    alone = tmp_path / "alone.mp4"
    post.write(photo, videos, {"mp4": alone})

    made_while_rendering = []
    prepare = post._prepare

    def watched(*args):  # the real preparation, noting whether a render held the turn meanwhile
        prepared = prepare(*args)
        made_while_rendering.append(prepared is not None and post._lock.locked())
        return prepared

    post._prepare = watched
    post._lock.acquire()  # a render in progress
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    writers = [threading.Thread(target=post.write, args=(photo, videos, {"mp4": p})) for p in outs]
    try:
        for w in writers:
            w.start()
        deadline = time.monotonic() + 60
        while not made_while_rendering and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # time for a second preparation, which must not start
        assert made_while_rendering == [True]  # one photo prepared ahead, during the render, no more
        assert post._prep_lock.locked()  # ... which holds the next turn while it waits
        assert not any(p.exists() for p in outs)  # neither renders before the render in progress ends
    finally:
        post._lock.release()
    for w in writers:
        w.join(120)
    want = read_video(alone)
    for p in outs:
        got = read_video(p)
        assert got.shape == want.shape == (32, size[1], size[0], 3)
        assert np.array_equal(got, want)
    assert len(made_while_rendering) == 2  # the second was prepared once the first took its turn
