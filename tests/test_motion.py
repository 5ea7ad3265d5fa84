"""Full-resolution output by motion transfer, and the still foreground (``--resolution``, ``--mask``,
``--compare``): real photos and clips from ../shared/data, tiny random-init weights written by the test."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

from skyforecast.cli import app
from skyforecast.render import sizing, skymask, transfer

runner = CliRunner()


def predict(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def read_frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))])


def read_clip(folder: Path) -> np.ndarray:
    files = sorted(glob.glob(str(folder / "*.jpg")))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_native_with_mask_file_keeps_ground_still_while_sky_moves(tmp_path, real_photos, tiny_weights):
    photo_path = real_photos / "coast.png"
    mask = Image.new("L", (320, 180), 255)  # drawn at half size: any size with the photo's aspect works
    mask.paste(0, (0, 120, 320, 180))  # bottom third = ground
    mask.save(tmp_path / "mask.png")
    code, out = predict(
        str(photo_path), "-w", str(tiny_weights), "-o", str(tmp_path / "out"), "-f", "frames",
        "--resolution", "native", "--mask", str(tmp_path / "mask.png"),
    )  # fmt: skip
    assert code == 0, out
    frames = read_frames(tmp_path / "out" / "coast_frames").astype(np.float32)
    photo = np.asarray(Image.open(photo_path).convert("RGB"), dtype=np.float32)
    assert frames.shape == (32, 360, 640, 3)
    ground = [np.abs(f[240:] - photo[240:]).mean() for f in frames]
    assert max(ground) < 2.0, ground  # below 2/255 mean absolute error in every frame
    assert np.abs(frames[0] - photo).mean() < 0.5  # the video starts at the photo itself
    sky_motion = np.abs(np.diff(frames[:, :200], axis=0)).mean()
    assert sky_motion > 0.5


def test_transfer_reproduces_real_sky_motion(real_sky_dev):
    """Flow and gain taken from a real clip, applied to its first frame, must recreate the later frames far
    better than the frozen first frame does: the flow direction and upsampling are right."""
    clips = sorted(p for p in real_sky_dev.glob("*/*") if p.is_dir())[:3]
    for clip_dir in clips:
        clip = read_clip(clip_dir)
        big = np.stack([np.asarray(Image.fromarray(f).resize((256, 256), Image.BICUBIC)) for f in clip])
        out = transfer.transfer(big[0], clip)  # motion estimated at 128, rendered at 256
        assert out.shape == big.shape

        def psnr(a, b):
            return 10 * np.log10(255.0**2 / ((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean())

        moved = np.mean([psnr(out[t], big[t]) for t in range(1, 32)])
        frozen = np.mean([psnr(big[0], big[t]) for t in range(1, 32)])
        assert moved > frozen + 3, (clip_dir.name, moved, frozen)


def _drifting_sky_video() -> tuple[np.ndarray, np.ndarray]:
    """A textured top half that drifts right 1 px per frame over a still bottom half, and its true mask."""
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 256, 3)) * 255).astype(np.uint8)
    texture = np.asarray(Image.fromarray(texture).resize((512, 128), Image.BICUBIC).crop((0, 0, 256, 64)))
    ground = np.asarray(Image.fromarray(texture[::-1]).convert("L").convert("RGB"))
    frames = []
    for t in range(32):
        top = np.roll(texture, t, axis=1)[:, :128]
        frames.append(np.concatenate([top, ground[:, :128]], axis=0))
    truth = np.zeros((128, 128), np.float32)
    truth[:64] = 1
    return np.stack(frames), truth


def test_auto_mask_finds_the_moving_part_and_leaves_the_rest_still():
    video, truth = _drifting_sky_video()
    mask = skymask.auto_mask(video)
    assert mask[:56].mean() > 0.9  # the drifting part, bar the eroded edge
    assert mask[72:].max() == 0  # the still part is never in the mask
    photo = np.asarray(Image.fromarray(video[0]).resize((400, 300), Image.BICUBIC))
    alpha = skymask.soft_alpha(skymask.resize_mask(mask, (400, 300)))
    out = transfer.transfer(photo, video, alpha)
    assert np.array_equal(out[:, 160:], np.broadcast_to(photo[160:], out[:, 160:].shape))  # exactly still
    assert np.abs(np.diff(out[:, :120].astype(np.float32), axis=0)).mean() > 1  # the top moves


def test_a_still_prediction_gives_an_empty_mask():
    video = np.repeat(np.full((1, 128, 128, 3), 90, np.uint8), 32, axis=0)
    assert skymask.auto_mask(video).max() == 0


def test_soft_alpha_is_zero_outside_and_ramps_inside():
    mask = np.zeros((100, 200), np.float32)
    mask[:50] = 1
    alpha = skymask.soft_alpha(mask, feather=10)
    assert alpha[50:].max() == 0
    assert alpha[:35].min() == pytest.approx(1.0)
    assert 0 < alpha[45, 100] < 1


def test_mask_auto_on_village_keeps_houses_still_under_real_sky_motion(real_photos, real_sky_dev):
    """No trained model exists yet, so the motion comes from a real time-lapse clip whose clouds fill its top
    40 %: the auto mask (motion within the photo's sky prior) must leave the village's lower part exactly
    still."""
    from skyforecast.io.media import load_photo
    from skyforecast.render.postprocess import PostProcess

    clip = read_clip(real_sky_dev / "grid39" / "grid39_1")
    photo = load_photo(real_photos / "village-sunset.jpg")
    post = PostProcess(resolution=180, mask="auto")
    frames, _ = post.render(photo, clip[None])
    assert frames.shape == (32, 180, 320, 3)
    still = sizing.load_photo_at(photo.path, (320, 180))
    assert np.array_equal(frames[0], still)
    assert np.array_equal(frames[:, 100:], np.broadcast_to(still[100:], frames[:, 100:].shape))
    assert np.abs(np.diff(frames[:, :40].astype(np.float32), axis=0)).mean() > 0.3  # the sky moves


def _village_scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 320x180 photo: a smooth sky with soft clouds above a brick "house" (textured, edged, with a darker
    roof band) and textured ground, plus the house's true extent (True = must stay still)."""
    rng = np.random.default_rng(3)
    h, w = 180, 320
    clouds = np.asarray(
        Image.fromarray((rng.random((9, 16)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    )
    sky = np.empty((h, w, 3), np.float32)
    sky[..., 0] = 120 + 0.25 * clouds
    sky[..., 1] = 160 + 0.25 * clouds
    sky[..., 2] = 215 + 0.15 * clouds
    photo = sky.copy()
    still = np.zeros((h, w), bool)
    still[70:, 60:250] = True  # the house
    still[150:] = True  # the ground
    bricks = 150 + 40 * rng.random((h, w))
    bricks[::6] = 70  # mortar: horizontal and vertical lines
    bricks[:, ::12] = 70
    photo[still] = np.stack([bricks, 0.6 * bricks, 0.4 * bricks], axis=2)[still]
    photo[70:85, 60:250] = np.stack([40 + 30 * rng.random((15, 190))] * 3, axis=2) * [1.6, 0.8, 0.7]  # roof
    photo[150:] = np.stack(
        [40 + 60 * rng.random((30, w)), 90 + 60 * rng.random((30, w)), 30 * np.ones((30, w))], 2
    )
    path = tmp_path / "house.png"
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(path)
    return path, still


def _spilling_video(top: float) -> np.ndarray:
    """A prediction whose top ``top`` share drifts right 1 px per frame (textured, so flow sees it) over a
    still rest: past the roof line, the motion spills over the house as a trained model's does."""
    rng = np.random.default_rng(0)
    texture = np.asarray(
        Image.fromarray((rng.random((64, 128, 3)) * 255).astype(np.uint8)).resize((256, 128))
    )
    ground = np.asarray(Image.fromarray(texture[:, 128:]).convert("L").convert("RGB"))
    rows = int(top * 128)
    frames = []
    for t in range(32):
        frame = ground.copy()
        frame[:rows] = np.roll(texture, t, axis=1)[:rows, :128]
        frames.append(frame)
    return np.stack(frames)


@pytest.mark.parametrize("top", [0.8, 0.55])
def test_mask_auto_keeps_a_house_still_when_the_motion_spills_over_it(tmp_path, top):
    """The predicted motion covers the sky and most of a textured, edged house (0.8), or mostly the house
    (0.55 of the frame, the sky's share being 0.39): either way the house and the ground stay within 2/255
    of the photo in every frame, while the sky moves."""
    from skyforecast.io.media import load_photo
    from skyforecast.render.postprocess import PostProcess

    path, still_part = _village_scene(tmp_path)
    video = _spilling_video(top)
    small = skymask.auto_mask(video)
    moving = skymask.resize_mask(small, (320, 180)) > 0
    assert moving[70:150, 60:250].mean() > 0.3  # the motion really does spill over the house
    post = PostProcess(resolution="native", mask="auto")
    frames, _ = post.render(load_photo(path), video[None])
    photo = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    frames = frames.astype(np.float32)
    assert frames.shape == (32, 180, 320, 3)
    house = [np.abs(f - photo)[still_part].mean() for f in frames]
    assert max(house) < 2.0, house
    assert max(np.abs(f - photo).max(axis=2)[still_part].max() for f in frames) < 8  # no pixel, either
    sky = ~still_part
    sky[60:] = False  # clear of the roof line
    assert np.abs(np.diff(frames, axis=0)).max(axis=3)[:, sky].mean() > 1.0  # the sky moves


def test_sky_prior_finds_the_sky_and_not_the_house(tmp_path):
    path, still_part = _village_scene(tmp_path)
    photo = np.asarray(Image.open(path).convert("RGB"))
    prior = skymask.sky_prior(photo).astype(bool)
    assert prior.shape == (180, 320)
    assert not (prior & still_part).any()
    assert prior[:60].mean() > 0.9  # most of the sky, bar an eroded edge


def test_sky_prior_is_empty_when_the_top_is_not_sky(real_photos):
    """Nothing may move when the top of the photo is not sky: busy texture all over (foliage, noise), or a
    real photo upside down (the dark ground at the top)."""
    rng = np.random.default_rng(1)
    noise = (rng.random((180, 320, 3)) * 255).astype(np.uint8)
    village = np.asarray(Image.open(real_photos / "village-sunset.jpg").convert("RGB"))
    for photo in (noise, np.ascontiguousarray(village[::-1])):
        assert not skymask.sky_prior(photo).any()
        assert skymask.refine_mask(np.ones((128, 128), np.float32), photo).max() == 0
    assert skymask.sky_prior(village)[:20].mean() > 0.8  # the right way up it has a sky


def test_mask_auto_from_the_cli_at_a_chosen_height(tmp_path, real_photos, tiny_weights):
    code, out = predict(
        str(real_photos / "village-sunset.jpg"), "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "frames",
        "--resolution", "180p",
    )  # fmt: skip
    assert code == 0, out
    frames = read_frames(tmp_path / "village-sunset_frames")
    assert frames.shape == (32, 180, 320, 3)  # height 180 at the photo's aspect


def test_default_is_the_photo_at_its_size_and_resolution_model_the_models_pixels(
    tmp_path, real_photos, tiny_weights
):
    photo = str(real_photos / "coast.png")
    assert predict(photo, "-w", str(tiny_weights), "-o", str(tmp_path / "a"), "-f", "frames")[0] == 0
    default = read_frames(tmp_path / "a" / "coast_frames")
    assert default.shape == (32, 360, 640, 3)  # a 640x360 photo fits 1920x1080: its own size
    assert np.array_equal(default[0], np.asarray(Image.open(photo).convert("RGB")))  # frame 0 is the photo
    code, out = predict(
        photo, "-w", str(tiny_weights), "-o", str(tmp_path / "b"), "-f", "frames", "--resolution", "model"
    )
    assert code == 0, out
    assert read_frames(tmp_path / "b" / "coast_frames").shape == (32, 128, 228, 3)


def test_compare_writes_photo_stage1_stage2_side_by_side(tmp_path, real_photos, tiny_weights):
    photo_path = real_photos / "coast.png"
    code, out = predict(
        str(photo_path), "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "frames", "--compare",
        "--resolution", "model",
    )  # fmt: skip
    assert code == 0, out
    frames = read_frames(tmp_path / "coast_frames")
    assert frames.shape == (32, 128, 3 * 228 + 2 * 4, 3)
    photo = np.asarray(Image.open(photo_path).convert("RGB").resize((228, 128), Image.BICUBIC), np.float32)
    left = frames[:, 40:, :228].astype(np.float32)  # below the label
    assert np.abs(left - photo[40:]).mean() < 3  # panel 1: the still photo
    stage1, stage2 = frames[:, :, 232:460], frames[:, :, 464:692]
    assert np.abs(stage1.astype(np.float32) - stage2).mean() > 5  # two different stages
    assert np.abs(np.diff(stage2[:, 40:].astype(np.float32), axis=0)).mean() > 1


def test_native_size_is_capped_with_a_note():
    size, note = sizing.frame_size((12000, 8000), "native")
    assert size[0] * size[1] <= sizing.MAX_FRAME_PIXELS and size[0] % 2 == 0 and size[1] % 2 == 0
    assert abs(size[0] / size[1] - 1.5) < 0.01 and "12000x8000" in note
    assert sizing.frame_size((3000, 2000), "native") == ((3000, 2000), None)
    panel, note = sizing.frame_size((3000, 2000), "native", panels=3)  # --compare: three side by side
    assert 3 * panel[0] * panel[1] <= sizing.MAX_FRAME_PIXELS and "3 panels" in note
    assert sizing.frame_size((640, 360), 1080) == ((1920, 1080), None)


def test_the_cap_note_is_printed_and_applied(tmp_path, real_photos, tiny_weights, monkeypatch):
    """The cap scaled down to this small photo: the command says so and writes the capped size."""
    monkeypatch.setattr(sizing, "MAX_FRAME_PIXELS", 320 * 180)
    code, out = predict(
        str(real_photos / "coast.png"), "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "frames",
        "--resolution", "native", "--mask", "none",
    )  # fmt: skip
    assert code == 0, out
    assert "640x360 photo rendered at 320x180" in " ".join(out.split())
    assert read_frames(tmp_path / "coast_frames").shape == (32, 180, 320, 3)


def test_full_resolution_is_written_frame_by_frame(tmp_path, real_photos, tiny_weights):
    """``PostProcess.write`` renders each frame as the encoder takes it: the most memory numpy and OpenCV
    hold at once while writing 64 frames at 960x540 as MP4 is the renderer's reused maps, the sky it reads
    beyond the frame's edges (RGB and its yuv420p planes: this model's fast field reaches a frame width out)
    and a few frames: measured 0.47 of the video's size, where holding the frames (as before streaming)
    costs at least 1."""
    import tracemalloc

    from skyforecast.io.media import load_photo, squash
    from skyforecast.model.pipeline import SkyPipeline
    from skyforecast.render.postprocess import PostProcess

    photo = load_photo(real_photos / "coast.png")
    post = PostProcess(resolution=540, mask="none", frames=64)
    videos = post.predict(SkyPipeline.from_pretrained(tiny_weights, device="cpu"), squash(photo.image)[None])
    tracemalloc.start()
    try:
        post.write(photo, videos[0], {"mp4": tmp_path / "v.mp4"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * (64 * 540 * 960 * 3), peak
    assert read_video(tmp_path / "v.mp4").shape == (64, 540, 960, 3)


def test_option_errors_are_one_line(tmp_path, real_photos, tiny_weights):
    photo = str(real_photos / "coast.png")
    code, out = predict(
        photo, "-w", str(tiny_weights), "-o", str(tmp_path), "--mask", str(tmp_path / "no.png")
    )
    assert code == 2 and "no such file" in out
    code, out = predict(photo, "-o", str(tmp_path), "--resolution", "huge")
    assert code == 2 and "--resolution" in out
    code, out = predict(photo, "-o", str(tmp_path), "--resolution", "native", "--size", "64")
    assert code == 2 and "--size" in out
    Image.new("L", (100, 100), 255).save(tmp_path / "square.png")
    code, out = predict(
        photo, "-w", str(tiny_weights), "-o", str(tmp_path), "--mask", str(tmp_path / "square.png")
    )
    assert code == 1 and "aspect" in out
    assert not (tmp_path / "coast.mp4").exists()
