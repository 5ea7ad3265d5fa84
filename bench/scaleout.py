"""Batch prediction over two processes on a skewed folder: a few big photos among small ones.

Prints, for ``torchrun --nproc-per-node 2`` and for ``predict --workers 1`` / ``--workers 2``, the wall time
and the balance: the run's end over the ideal end (every rank busy until the same moment, i.e. the mean of
the ranks' own times from the summary's per-rank lines). Within 15 % is the target. Also the load average,
since the numbers are only comparable on a quiet machine.

    python bench/scaleout.py [--weights DIR] [--big 3] [--small 21]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

RANK_LINE = re.compile(r"rank (\d) \(.*\): (\d+) done of (\d+) taken in ([\d.]+) s")


def make_folder(folder: Path, big: int, small: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    n = big + small
    bigs = set(range(0, n, max(1, n // max(1, big)))[:big])
    for i in range(n):
        w, h = (1920, 1080) if i in bigs else (320, 180)
        sky = np.linspace(90, 230, h)[:, None, None] * np.ones((1, w, 3))
        sky[h // 2 :] = 60
        noise = rng.normal(0, 12, (h, w, 3))
        image = Image.fromarray(np.clip(sky + noise, 0, 255).astype(np.uint8))
        image.save(folder / f"p{i:03d}.jpg", quality=90)


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, proc.stderr + proc.stdout


def balance(text: str) -> str:
    ranks = [(int(r), int(d), float(s)) for r, d, _, s in RANK_LINE.findall(text)]
    if len(ranks) < 2:
        return "one rank"
    times = [s for _, _, s in ranks]
    ideal = sum(times) / len(times)
    each = ", ".join(f"{s:.1f} s ({d} photos)" for _, d, s in ranks)
    return f"ranks {each}; end / ideal = {max(times) / ideal:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--big", type=int, default=3)
    ap.add_argument("--small", type=int, default=21)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        make_folder(photos, args.big, args.small)
        common = [str(photos), "--device", "cpu"] + (["-w", args.weights] if args.weights else [])
        predict = [sys.executable, "-m", "skyforecast", "predict"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        print(f"{args.big} photos 1920x1080 among {args.small} of 320x180; load average {os.getloadavg()}")
        for name, cmd in [
            ("--workers 1", [*predict, *common, "-o", f"{tmp}/w1", "--workers", "1"]),
            ("--workers 2", [*predict, *common, "-o", f"{tmp}/w2", "--workers", "2"]),
            ("torchrun x2", [*torchrun, "-m", "skyforecast", "predict", *common, "-o", f"{tmp}/t2"]),
        ]:
            wall, text = timed(cmd, {**env, "OMP_NUM_THREADS": "1"} if "torchrun" in name else env)
            print(f"{name}: {wall:.1f} s wall; {balance(text)}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
