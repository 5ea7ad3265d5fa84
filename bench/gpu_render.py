"""Where one photo's time goes beside a fast model (phase 4 of ``bench/gpu_run.py``): the model at a batch
that keeps the device busy, the renderer (yuv420p planes, as ``predict`` makes an MP4's) and x264, per
photo, and the sky warp on the GPU (``torch.nn.functional.grid_sample``) against OpenCV's ``remap`` on the
CPU.

On a GPU the model costs a few milliseconds per photo, so the CPU work after it decides how many photos a
second come out; these numbers say whether moving the warp to the GPU would pay: it would if rendering is
the larger CPU share and the GPU warp, with its copy back to the host, costs less than the CPU remap."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def render_share(device: str, smoke: bool, batch: int | None = None) -> dict:
    """Seconds per photo of each part, and their shares of the sum. ``smoke``: 320x180 on the CPU, for the
    test suite; else 1920x1080 (``predict``'s default output of a 16:9 photo)."""
    import torch
    from steady import encode_yuv, make_photos  # bench/steady.py

    from skyforecast.io.media import load_photo, squash
    from skyforecast.model.pipeline import SkyPipeline
    from skyforecast.render.postprocess import PostProcess

    size = (320, 180) if smoke else (1920, 1080)
    batch = batch or (2 if smoke else 32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = load_photo(make_photos(tmp, 1)[0])
        pipe = SkyPipeline.from_pretrained(None, device=device)
        post = PostProcess()
        squares = np.repeat(squash(photo.image)[None], batch, axis=0)
        post.predict(pipe, squares[:1])  # first call: kernels chosen, memory allocated
        start = time.perf_counter()
        video = post.predict(pipe, squares, batch_size=batch)[0]
        model = (time.perf_counter() - start) / batch

        # the frames as ``predict`` makes an MP4's: yuv420p planes rendered straight (``render.planar``)
        wall, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
        frames, _ = post.stream(photo, video, size)
        planes = [f.copy() for f in frames.yuv420p()]
        render_wall, render_cpu = time.perf_counter() - wall, _cpu(resource.RUSAGE_SELF) - cpu
        first = next(iter(post.stream(photo, video, size)[0]))  # an RGB frame for the warp comparison

        wall, kids = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
        encode_yuv(planes, size, tmp / "x264.mp4")
        encode_wall, encode_cpu = time.perf_counter() - wall, _cpu(resource.RUSAGE_CHILDREN) - kids

    parts = {"model": model, "render_cpu": render_cpu, "x264_cpu": encode_cpu}
    total = sum(parts.values())
    result = {
        "size": f"{size[0]}x{size[1]}",
        "model_batch": batch,
        "device": str(pipe.device),
        "seconds_per_photo": {k: round(v, 4) for k, v in parts.items()},
        "share": {k: round(v / total, 3) for k, v in parts.items()},
        "render_wall_s": round(render_wall, 3),
        "x264_wall_s": round(encode_wall, 3),
        "cpu_photos_per_s_bound": round(1.0 / max(total - model, 1e-9), 2),
    }
    # the warp alone on a moved frame (smoke: 4 frames; grid_sample on a CPU is slow and says nothing)
    result["warp"] = warp_compare(first, 4 if smoke else len(planes), torch.device(pipe.device))
    return result


def warp_compare(photo: np.ndarray, frames: int, device) -> dict:
    """``frames`` warps of ``photo`` with moving displacement maps: ``cv2.remap`` (bilinear, float maps) on
    the CPU against ``grid_sample`` (bilinear) on ``device``, uint8 frames back in host memory, and the
    largest difference between the two (both reflect at the border about the edge pixels)."""
    import cv2
    import torch
    import torch.nn.functional as F

    h, w = photo.shape[:2]
    rng = np.random.default_rng(0)
    drift = cv2.resize(rng.normal(0, 1, (9, 16, 2)).astype(np.float32), (w, h))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    base = np.dstack([gx, gy])
    maps = [base + drift * (0.02 * h * t / frames) for t in range(frames)]

    start = time.perf_counter()
    cpu_out = [cv2.remap(photo, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101) for m in maps]
    cpu_s = time.perf_counter() - start

    src = torch.from_numpy(photo).to(device).permute(2, 0, 1)[None].float()
    drift_t = torch.from_numpy(drift).to(device)
    base_t = torch.from_numpy(base).to(device)
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], device=device)
    host = torch.empty((h, w, 3), dtype=torch.uint8, pin_memory=device.type == "cuda")

    def gpu_frames() -> list[np.ndarray]:
        out = []
        for t in range(frames):
            grid = (base_t + drift_t * (0.02 * h * t / frames)) * scale - 1.0
            frame = F.grid_sample(src, grid[None], padding_mode="reflection", align_corners=True)  # bilinear
            host.copy_(frame[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8))
            out.append(host.numpy().copy())
        return out

    gpu_frames()  # first call: kernels loaded
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    gpu_out = gpu_frames()
    gpu_s = time.perf_counter() - start
    pairs = zip(cpu_out, gpu_out, strict=True)
    diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in pairs)
    return {
        "frames": frames,
        "cpu_remap_s": round(cpu_s, 4),
        "grid_sample_s": round(gpu_s, 4),
        "grid_sample_device": str(device),
        "max_abs_diff": diff,
        "gpu_pays": bool(gpu_s < cpu_s),
    }
