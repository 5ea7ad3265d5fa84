"""Rendering and encoding cost of the default ``predict`` output at 1080p, against x264 alone.

    python bench/steady.py                          # 1, then 5 photos of 1920x1080 made from examples/sky.jpg
    python bench/steady.py --photos 9 --baseline HEAD~3 --json bench/results-steady.json

Measured in one run, on the same machine state (wall seconds; CPU seconds from ``getrusage``: ours is this
process, RUSAGE_SELF, ffmpeg's is RUSAGE_CHILDREN; medians of ``--repeat``):
1. the renderer alone: 32 frames of one photo (``postprocess.PostProcess.stream``, no encoding), held in
   memory, as RGB and as yuv420p planes (``render.planar``); and the in-process RGB -> yuv420p conversion of
   the RGB frames (``yuv.I420``);
2. x264 alone on those held frames, fed rgb24 (ffmpeg converts) and fed yuv420p converted beforehand;
3. render + encode of one photo as ``predict`` writes it (frames rendered while ffmpeg encodes), fed rgb24
   (the reference), fed yuv420p converted from the RGB frames, and fed the planes rendered as yuv420p (the
   default): wall, our CPU-s and ffmpeg's CPU-s per photo, and how the default's MP4 and the reference's
   decode against each other;
4. ``skyforecast predict`` on one 1080p photo, process start to MP4 written ("end to end", best of
   ``--runs``; the default engine, numpy for one photo, and ``--engine torch`` beside it), and on a folder of
   N photos with torch: per photo after start-up = (T_N - T_1) / (N - 1) with T_1 the torch one-photo run,
   CPU-s per photo likewise; with ``--baseline REF`` the same for the package as committed at REF (a git
   revision; one that has no ``--engine`` runs torch), run alternately;
   and where the start-up's imports go (``python -X importtime``, self times summed by package);
5. the sky warp's ``cv2.remap`` with float maps against fixed-point maps (``cv2.convertMaps`` to CV_16SC2,
   converted every frame, as a moving field needs; and the remap alone, maps converted beforehand): 32
   frames of a 1920x720 sky box.
Targets: render + encode per photo at most 1.3x x264 alone (the yuv420p feed: x264's floor); one photo end
to end under 2.2 s on a 2-core machine. The photos are ``examples/sky.jpg`` scaled to 1920x1080 and
shifted/mirrored so that no two are alike. The bundled model predicts; its weights do not change the
rendering work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
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


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def measured(fn: Callable[[], object]) -> dict[str, float]:
    """Wall, our CPU and children's CPU seconds of one call."""
    wall, ours, kids = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    fn()
    return {
        "wall": time.perf_counter() - wall,
        "ours_cpu": cpu(resource.RUSAGE_SELF) - ours,
        "ffmpeg_cpu": cpu(resource.RUSAGE_CHILDREN) - kids,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def encode_yuv(planes: list[np.ndarray], size: tuple[int, int], path: Path) -> None:
    """x264 on frames already in yuv420p, with exactly the encoder settings ``write_mp4`` uses."""
    import imageio_ffmpeg

    from skyforecast.io.media import Encoding, _start_encoder, check_mp4

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryFile() as log:
        proc = _start_encoder(exe, path, (size[1], size[0], 3), 8, log, Encoding(), "yuv420p")
        for plane in planes:
            proc.stdin.write(plane.data)
        proc.stdin.close()
        if proc.wait() != 0:
            log.seek(0)
            raise RuntimeError(log.read().decode(errors="replace"))
    check_mp4(path)


def decode(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return np.stack([np.asarray(f) for f in reader]).astype(np.int16)
    finally:
        reader.close()


def remap_cost(frames: int = 32, size: tuple[int, int] = (1920, 720)) -> dict[str, float]:
    """CPU seconds of warping a sky box ``frames`` times with float maps and with fixed-point maps (the
    conversion included), and the largest difference between the two results."""
    import cv2

    w, h = size
    rng = np.random.default_rng(0)
    source = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    drift = cv2.resize(rng.normal(0, 1, (9, 16, 2)).astype(np.float32), (w, h))
    maps = [np.dstack([gx, gy]) + drift * (3.0 * t) for t in range(frames)]
    out = np.empty((h, w, 3), np.uint8)
    ref, fixed = [], []

    def floats() -> None:
        for m in maps:
            cv2.remap(source, m, None, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REFLECT)
        ref.append(out.copy())

    def fixed_point() -> None:
        for m in maps:
            xy, frac = cv2.convertMaps(m, None, cv2.CV_16SC2)
            cv2.remap(source, xy, frac, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REFLECT)
        fixed.append(out.copy())

    converted = [cv2.convertMaps(m, None, cv2.CV_16SC2) for m in maps]

    def fixed_ready() -> None:  # maps made fixed-point beforehand: the remap alone
        for xy, frac in converted:
            cv2.remap(source, xy, frac, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REFLECT)

    a = median_of([measured(floats) for _ in range(3)])
    b = median_of([measured(fixed_point) for _ in range(3)])
    c = median_of([measured(fixed_ready) for _ in range(3)])
    diff = np.abs(ref[-1].astype(int) - fixed[-1].astype(int))
    return {
        "remap_float_32_cpu_s": a["ours_cpu"],
        "remap_fixed_32_cpu_s": b["ours_cpu"],
        "remap_fixed_without_convert_32_cpu_s": c["ours_cpu"],
        "remap_float_32_s": a["wall"],
        "remap_fixed_32_s": b["wall"],
        "remap_fixed_max_diff": float(diff.max()),
        "remap_fixed_mean_diff": float(diff.mean()),
    }


def baseline_tree(ref: str, into: Path) -> Path:
    """The package as committed at ``ref``, unpacked into ``into`` (importable from there)."""
    archive = into / "baseline.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref, "skyforecast"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (into / "weights").symlink_to(ROOT / "weights")  # the bundled model, found next to the package
    return into


def run_env(code: Path) -> dict[str, str]:
    """The environment of a timed ``predict``: the package at ``code``, with its bytecode cached as an
    installed package has it (``PYTHONDONTWRITEBYTECODE`` would recompile the package on every start)."""
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def predict_run(code: Path, inputs: list[Path], out: Path, extra: Sequence[str] = ()) -> dict[str, float]:
    env = run_env(code)
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
        *extra,
    ]
    run = measured(lambda: subprocess.run(cmd, check=True, env=env, cwd=out.parent))
    return {"wall": run["wall"], "cpu": run["ffmpeg_cpu"]}  # the child's own CPU and its ffmpegs'


# modules whose import time ``import_parts`` reports: each one's cumulative time, including the modules it
# was first to import (typer._adapters is where typer imports pydantic; skyforecast.batch brings numpy,
# OpenCV, Pillow and the rendering modules)
IMPORTS = (
    "typer",
    "typer._adapters",
    "rich.console",
    "rich.progress",
    "skyforecast.cli",
    "skyforecast.batch",
    "numpy",
    "cv2",
    "torch",
    "skyforecast.model.fast",
)


def import_parts(code: Path, photo: Path, out: Path) -> dict[str, float]:
    """Seconds that ``python -X importtime -m skyforecast predict PHOTO`` spends importing each of
    ``IMPORTS`` (cumulative, as importtime prints it: self times are unreliable here, since the prefetch
    thread imports while torch loads)."""
    env = run_env(code)
    cmd = [sys.executable, "-X", "importtime", "-m", "skyforecast", "predict", str(photo), "-o", str(out)]
    err = subprocess.run(
        [*cmd, "--overwrite", "-q"], env=env, capture_output=True, text=True, check=True
    ).stderr
    found: dict[str, float] = {}
    for line in err.splitlines():
        cells = line.split("|")
        if line.startswith("import time:") and len(cells) == 3 and cells[2].strip() in IMPORTS:
            found.setdefault(cells[2].strip(), int(cells[1]) / 1e6)
    return {f"import_{name}_s": found[name] for name in IMPORTS if name in found}


def in_process(args, photos: list[Path], tmp: Path) -> dict[str, float | str]:
    from skyforecast.io.media import load_photo, squash, write_mp4
    from skyforecast.io.yuv import I420
    from skyforecast.model.pipeline import SkyPipeline
    from skyforecast.render.postprocess import PostProcess

    pipe = SkyPipeline.from_pretrained(None, device="cpu")
    post = PostProcess()
    photo = load_photo(photos[0])
    video = post.predict(pipe, squash(photo.image)[None])[0]
    size, _ = post.output_size(photo.size)
    held: list[np.ndarray] = []

    def render() -> None:
        frames, _ = post.stream(photo, video, size)
        held[:] = [f for f in frames]

    res: dict[str, float | str] = {"size": f"{size[0]}x{size[1]}"}
    rep = range(args.repeat)
    r = median_of([measured(render) for _ in rep])
    res.update(render_32_s=r["wall"], render_32_cpu_s=r["ours_cpu"])
    convert = I420(*size)
    planes: list[np.ndarray] = []
    c = median_of(
        [measured(lambda: planes.__setitem__(slice(None), [convert(f).copy() for f in held])) for _ in rep]
    )
    res.update(convert_32_cpu_s=c["ours_cpu"])
    x = median_of([measured(lambda: write_mp4(held, tmp / "x264-rgb.mp4", feed="rgb24")) for _ in rep])
    y = median_of([measured(lambda: encode_yuv(planes, size, tmp / "x264-yuv.mp4")) for _ in rep])
    res.update(
        x264_alone_rgb24_s=x["wall"],
        x264_alone_rgb24_ffmpeg_cpu_s=x["ffmpeg_cpu"],
        x264_alone_yuv420p_s=y["wall"],
        x264_alone_yuv420p_ffmpeg_cpu_s=y["ffmpeg_cpu"],
    )
    del held[:], planes[:]

    def render_planes() -> None:
        frames, _ = post.stream(photo, video, size)
        planes[:] = [f.copy() for f in frames.yuv420p()]

    r = median_of([measured(render_planes) for _ in rep])
    res.update(render_32_planar_s=r["wall"], render_32_planar_cpu_s=r["ours_cpu"])
    del planes[:]
    # rgb24: RGB frames, ffmpeg converts (the reference); yuv420p_from_rgb: RGB frames converted here;
    # yuv420p: the default, frames rendered as yuv420p planes
    for feed in ("rgb24", "yuv420p_from_rgb", "yuv420p"):

        def write(feed: str = feed) -> None:
            frames, _ = post.stream(photo, video, size)
            if feed == "yuv420p_from_rgb":
                write_mp4(iter(frames), tmp / f"photo-{feed}.mp4")  # a plain iterator: RGB frames
            else:
                write_mp4(frames, tmp / f"photo-{feed}.mp4", feed=feed)

        w = median_of([measured(write) for _ in rep])
        res.update(
            {
                f"render_encode_{feed}_s": w["wall"],
                f"render_encode_{feed}_ours_cpu_s": w["ours_cpu"],
                f"render_encode_{feed}_ffmpeg_cpu_s": w["ffmpeg_cpu"],
            }
        )
    res["render_encode_yuv420p_over_x264_yuv420p"] = res["render_encode_yuv420p_s"] / y["wall"]
    res["render_encode_rgb24_over_x264_rgb24"] = res["render_encode_rgb24_s"] / x["wall"]
    converted = res["render_encode_yuv420p_from_rgb_s"]
    res["render_encode_yuv420p_from_rgb_over_x264_yuv420p"] = converted / y["wall"]
    ours, ref = decode(tmp / "photo-yuv420p.mp4"), decode(tmp / "photo-rgb24.mp4")
    res.update(
        decoded_mean_abs_diff=float(np.abs(ours - ref).mean()),
        decoded_mean_diff_rgb=" ".join(f"{v:+.3f}" for v in (ours - ref).mean(axis=(0, 1, 2))),
    )
    return res


def cli_runs(args, photos: list[Path], tmp: Path) -> dict[str, float | str]:
    codes = {"": ROOT}
    if args.baseline:
        codes["baseline_"] = baseline_tree(args.baseline, tmp / "baseline")
    # The folder's engine for both of its runs: ours picks numpy for one photo and torch for a folder, so
    # "per photo after start-up" compares a folder with a one-photo run on torch (the baseline has torch only)
    folder_engine = {"": ["--engine", "torch"], "baseline_": []}
    one: dict[str, list[dict[str, float]]] = {k: [] for k in codes}
    one_folder_engine: dict[str, list[dict[str, float]]] = {k: [] for k in codes}
    many: dict[str, list[dict[str, float]]] = {k: [] for k in codes}
    for key, code in codes.items():  # untimed: each package's bytecode written, the weights in the cache
        predict_run(code, photos[:1], tmp / f"{key}warm")
    for _ in range(args.runs):  # alternate, so that both see the same machine state
        for key, code in codes.items():
            one[key].append(predict_run(code, photos[:1], tmp / f"{key}one"))
            if folder_engine[key]:
                run = predict_run(code, photos[:1], tmp / f"{key}one", folder_engine[key])
                one_folder_engine[key].append(run)
    for key, code in codes.items():
        many[key].append(predict_run(code, photos, tmp / f"{key}many", folder_engine[key]))
    res: dict[str, float | str] = {"folder_photos": len(photos)}
    res.update(import_parts(ROOT, photos[0], tmp / "imports"))
    if args.baseline:
        res["baseline"] = args.baseline
    for key in codes:
        best = min(one[key], key=lambda r: r["wall"])
        start = min(one_folder_engine[key] or one[key], key=lambda r: r["wall"])
        folder = many[key][0]
        n = max(1, len(photos) - 1)
        res.update(
            {
                f"{key}one_photo_end_to_end_s": best["wall"],
                f"{key}one_photo_cpu_s": best["cpu"],
                f"{key}folder_s": folder["wall"],
                f"{key}per_photo_after_start_s": (folder["wall"] - start["wall"]) / n,
                f"{key}per_photo_after_start_cpu_s": (folder["cpu"] - start["cpu"]) / n,
            }
        )
        if one_folder_engine[key]:
            res[f"{key}one_photo_end_to_end_torch_s"] = start["wall"]
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=5, help="photos in the folder run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement in process")
    parser.add_argument("--runs", type=int, default=3, help="one-photo CLI runs, best taken (default 3)")
    parser.add_argument(
        "--baseline", help="a git revision whose package runs the predict timings beside ours"
    )
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    results: dict[str, float | int | str] = {"cpus": os.cpu_count() or 0}
    start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        (tmp / "baseline").mkdir()
        photos = make_photos(tmp / "in", args.photos)
        results.update(in_process(args, photos, tmp))
        results.update(remap_cost())
        results.update(cli_runs(args, photos, tmp))
    for key in ("", "baseline_") if args.baseline else ("",):
        for feed in ("rgb24", "yuv420p"):  # the target's ratio: a folder's time per photo over x264 alone
            ratio = results[f"{key}per_photo_after_start_s"] / results[f"x264_alone_{feed}_s"]
            results[f"{key}per_photo_over_x264_{feed}"] = ratio
    results["load_average_start_end"] = f"{start:.1f} {os.getloadavg()[0]:.1f}"
    for key, value in results.items():
        print(f"{key:42s} {value:.3f}" if isinstance(value, float) else f"{key:42s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
