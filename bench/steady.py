"""Rendering speed of the default ``predict`` output at 1080p: does rendering hide behind encoding?

    python bench/steady.py                 # 1, then 5 photos of 1920x1080 made from examples/sky.jpg
    python bench/steady.py --photos 9 --json bench/results-steady.json

Measured in one run, on the same machine state:
1. x264 alone: ``media.write_mp4`` encoding 32 already-rendered 1080p frames (the default output of one
   photo, rendered beforehand and held in memory), median of 3;
2. the renderer alone: the same 32 frames rendered (``postprocess.PostProcess.stream``, no encoding);
3. ``skyforecast predict`` on one 1080p photo, process start to MP4 written (the "end to end" number);
4. ``skyforecast predict`` on a folder of N photos; time per photo after start-up = (T_N - T_1) / (N - 1).
Targets: per photo after start-up at most 1.3x x264 alone; one photo end to end under 2.5 s on a
2-core machine. The photos are ``examples/sky.jpg`` scaled to 1920x1080 and shifted/mirrored so that no two
are alike (ours to use; no shared data needed). The bundled model predicts; its weights do not change the
rendering work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sky.jpg"


def make_photos(folder: Path, count: int) -> list[Path]:
    base = Image.open(SAMPLE).convert("RGB").resize((2100, 1182), Image.BICUBIC)
    paths = []
    for i in range(count):
        x = (i * 37) % 180
        im = base.crop((x, 40, x + 1920, 1120))
        if i % 2:
            im = ImageOps.mirror(im)
        path = folder / f"photo{i:02d}.jpg"
        im.save(path, quality=92)
        paths.append(path)
    return paths


def predict_wall(inputs: list[Path], out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "skyforecast",
        "predict",
        *map(str, inputs),
        "-o",
        str(out),
        "--overwrite",
        "-q",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=out.parent)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=5, help="photos in the folder run (default 5)")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from skyforecast.media import load_photo, squash, write_mp4
    from skyforecast.pipeline import SkyPipeline
    from skyforecast.postprocess import PostProcess

    results: dict[str, float | int | str] = {"cpus": os.cpu_count() or 0}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        photos = make_photos(tmp / "in", args.photos)

        pipe = SkyPipeline.from_pretrained(None, device="cpu")
        post = PostProcess()
        photo = load_photo(photos[0])
        video = post.predict(pipe, squash(photo.image)[None])[0]
        size, _ = post.output_size(photo.size)
        render = []
        for _ in range(3):
            start = time.perf_counter()
            frames, _ = post.stream(photo, video, size)
            held = [f for f in frames]
            render.append(time.perf_counter() - start)
        encode = []
        for _ in range(3):
            start = time.perf_counter()
            write_mp4(held, tmp / "x264.mp4", fps=8)
            encode.append(time.perf_counter() - start)
        results.update(
            size=f"{size[0]}x{size[1]}",
            render_32_s=statistics.median(render),
            x264_alone_32_s=statistics.median(encode),
        )
        del held

        one = min(predict_wall(photos[:1], tmp / "one") for _ in range(2))
        many = predict_wall(photos, tmp / "many")
        per_photo = (many - one) / max(1, len(photos) - 1)
        results.update(
            one_photo_end_to_end_s=one,
            folder_photos=len(photos),
            folder_s=many,
            per_photo_after_start_s=per_photo,
            per_photo_over_x264=per_photo / results["x264_alone_32_s"],
        )
    for key, value in results.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
