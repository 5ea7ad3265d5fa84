"""Clip discovery and loading on real files: the Sky Timelapse layout from ../shared/data, image
sequences, video files written here with ffmpeg, and broken data built in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from skyforecast.io.clips import (
    ClipDataset,
    ClipSampler,
    DataError,
    collate_clips,
    discover_clips,
    read_image_frame,
    to_model_range,
)


def _write_frames(folder: Path, n: int, size=(64, 48), start=0, fmt="jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 0] = (i * 7) % 256  # each frame its own red level: order is checkable
        img[..., 1] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]  # left-right ramp
        path = folder / f"frame_{i}.{fmt}"
        Image.fromarray(img).save(path, quality=95)
        paths.append(path)
    return paths


def _write_video(path: Path, n: int, size=(64, 48), fps=10) -> np.ndarray:
    frames = np.zeros((n, size[1], size[0], 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (i * 6) % 256
        frames[i, ..., 2] = 128
    if path.suffix == ".gif":
        iio.imwrite(path, frames, duration=100, loop=0)
        return frames
    w = imageio_ffmpeg.write_frames(str(path), size, fps=fps, quality=9, macro_block_size=1)
    w.send(None)
    for f in frames:
        w.send(f.tobytes())
    w.close()
    return frames


def test_real_sky_timelapse_layout(real_sky_dev: Path):
    index = discover_clips(real_sky_dev)
    assert len(index.sequences) == 16 and len(index.clips) == 16
    assert index.short_sequences == 0 and index.unreadable_videos == 0
    ds = ClipDataset(index)
    clip = ds[0]
    assert clip.dtype == torch.uint8 and clip.shape == (3, 32, 128, 128)
    # frames are in name order and decoded exactly (the dev frames are already 128x128)
    seq = index.sequences[0]
    assert list(seq.frames) == sorted(seq.frames)
    for t in (0, 31):
        expected = np.asarray(Image.open(seq.frames[t]).convert("RGB"))
        assert np.array_equal(clip[:, t].permute(1, 2, 0).numpy(), expected)
    x = to_model_range(clip[None])
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert x.min() < -0.5 and x.max() > 0.5  # real range, not a constant


def test_flip_mirrors_width(real_sky_dev: Path):
    ds = ClipDataset(discover_clips(real_sky_dev))
    plain, flipped = ds[3], ds[(3, True)]
    assert torch.equal(flipped, plain.flip(-1))
    assert not torch.equal(flipped, plain)


def test_short_real_clip_is_counted_not_raised(real_sky_dev: Path, real_short_clip: Path, tmp_path: Path):
    with pytest.raises(DataError, match="8 frames"):
        discover_clips(real_short_clip)
    shutil.copytree(real_sky_dev / "grid00", tmp_path / "grid00")
    shutil.copytree(real_short_clip, tmp_path / "short" / "clip")
    index = discover_clips(tmp_path)
    assert len(index.clips) == 1 and index.short_sequences == 1
    assert "shorter than 32" in index.summary()


def test_squash_and_center_crop_on_real_640x360(real_short_clip: Path):
    path = str(sorted(real_short_clip.iterdir())[0])
    assert Image.open(path).size == (640, 360)
    for crop in ("squash", "center"):
        assert read_image_frame(path, 128, crop).shape == (128, 128, 3)


def test_center_crop_keeps_the_middle(tmp_path: Path):
    img = np.zeros((100, 300, 3), np.uint8)  # red | green | blue thirds
    img[:, :100, 0] = img[:, 100:200, 1] = img[:, 200:, 2] = 255
    Image.fromarray(img).save(tmp_path / "bands.png")
    center = read_image_frame(str(tmp_path / "bands.png"), 32, "center")
    squash = read_image_frame(str(tmp_path / "bands.png"), 32, "squash")
    assert center[..., 1].min() == 255 and center[..., 0].max() == 0 and center[..., 2].max() == 0
    assert squash[:, 0, 0].min() == 255 and squash[:, -1, 2].min() == 255  # all three bands remain


def test_image_sequences_without_video_level_natural_order_and_stride(tmp_path: Path):
    _write_frames(tmp_path / "seqA", 70)  # frame_2 must come before frame_10
    _write_frames(tmp_path / "seqB", 40)
    index = discover_clips(tmp_path)
    assert [len(s.frames) for s in index.sequences] == [70, 40]
    assert Path(index.sequences[0].frames[2]).name == "frame_2.jpg"
    assert Path(index.sequences[0].frames[10]).name == "frame_10.jpg"
    assert [(c.sequence, c.start) for c in index.clips] == [(0, 0), (0, 32), (1, 0)]  # floor(n/32)
    overlapping = discover_clips(tmp_path, clip_stride=8)
    # (70-32)//8+1 = 5 and (40-32)//8+1 = 2
    assert len(overlapping.clips) == 7
    clip = ClipDataset(overlapping)[1]  # seqA from frame 8: red level 7*(8+t)
    reds = clip[0, :, 24, 32].int()
    assert (reds - torch.tensor([7 * (8 + t) % 256 for t in range(32)])).abs().max() <= 3  # JPEG rounding

    # images right in the root folder are one sequence too
    flat = tmp_path / "flat"
    _write_frames(flat, 33, fmt="png")
    assert len(discover_clips(flat).clips) == 1


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_video_files_with_overlapping_clips(tmp_path: Path, ext: str):
    frames = _write_video(tmp_path / f"sky{ext}", 40)
    (tmp_path / "broken.mov").write_bytes(b"not a video at all" * 50)
    index = discover_clips(tmp_path, clip_stride=4)
    assert index.unreadable_videos == 1
    assert len(index.sequences) == 1 and index.sequences[0].length == 40
    assert len(index.clips) == 3  # starts 0, 4, 8
    ds = ClipDataset(index)
    clip = ds[2]
    assert clip.shape == (3, 32, 128, 128)
    # frame t of clip 2 is video frame 8 + t: compare the mean red level (lossy codec: tolerance)
    got = clip[0].float().mean(dim=(1, 2))
    want = torch.tensor(frames[8:40, ..., 0].mean(axis=(1, 2)), dtype=torch.float32)
    assert (got - want).abs().max() < 6, (got - want).abs().max()
    assert torch.equal(ds[2], clip)  # second read comes from the per-worker cache, same pixels


def test_unreadable_frame_skips_the_clip_and_is_counted(tmp_path: Path):
    _write_frames(tmp_path / "good", 32)
    bad = _write_frames(tmp_path / "bad", 32)
    bad[5].write_bytes(b"\xff\xd8 truncated jpeg")
    index = discover_clips(tmp_path)
    assert len(index.clips) == 2
    ds = ClipDataset(index)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_clips)
    batch = next(iter(loader))
    assert batch["skipped"] == 1 and batch["video"].shape == (1, 3, 32, 128, 128)
    assert collate_clips([None, None]) == {"video": None, "skipped": 2}


def test_empty_and_missing_folders_are_one_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="no images or videos found"):
        discover_clips(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no images or videos found"):
        discover_clips(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        discover_clips(tmp_path / "nope")


def test_sampler_is_deterministic_resumable_and_shards():
    s = ClipSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert sorted(i for i, _ in full) == list(range(10))
    again = ClipSampler(10, seed=3)
    again.set_epoch(2)
    again.set_start(4)
    assert list(again) == full[4:] and len(again) == 6
    s.set_epoch(3)
    assert list(s) != full  # a new order (and flips) each epoch
    assert len({f for _, f in full}) == 2  # both flipped and unflipped samples
    r0, r1 = (ClipSampler(10, seed=3, num_replicas=2, rank=r) for r in (0, 1))
    for r in (r0, r1):
        r.set_epoch(2)
    a, b = list(r0), list(r1)
    assert len(a) == len(b) == 5 and {i for i, _ in a}.isdisjoint({i for i, _ in b})
    flips = dict(full)
    assert all(flips[i] == f for i, f in a + b)  # the same flip for a clip whichever rank loads it


def test_multi_worker_loader_gives_the_same_batches(real_sky_dev: Path, tmp_path: Path):
    for v in ("grid00", "grid03", "grid06", "grid09"):
        (tmp_path / v).symlink_to(real_sky_dev / v)
    ds = ClipDataset(discover_clips(tmp_path))

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = ClipSampler(len(ds), seed=1)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers, collate_fn=collate_clips)
        return [b["video"] for b in loader]

    single, multi = batches(0), batches(2)
    assert len(single) == 2 and all(torch.equal(a, b) for a, b in zip(single, multi, strict=True))


def test_frames_in_any_photo_format_predict_reads_are_a_sequence(tmp_path: Path):
    # one suffix set for predict and training (constants.IMAGE_SUFFIXES): .ppm frames were ignored before
    _write_frames(tmp_path / "seq", 32, fmt="ppm")
    index = discover_clips(tmp_path)
    assert len(index.clips) == 1
    clip = ClipDataset(index)[0]
    assert clip.shape == (3, 32, 128, 128)
    red = clip[0, :, 64, 64]  # frame i has red level 7 i: read in order
    assert torch.allclose(red, torch.tensor([7 * i for i in range(32)], dtype=red.dtype), atol=2)
