"""Wall time and peak memory of one full-resolution prediction (the target: a 3000x2000 photo at
``--resolution native`` in under 20 s and under 2 GB on a 2-core CPU).

    python bench/fullres.py                        # synthetic 3000x2000 photo, random ngf=32 model
    python bench/fullres.py --photo my.jpg -w runs/sky/model --mask none auto

Each case runs ``python -m skyforecast predict PHOTO --resolution native`` as its own process, from this
small parent (a child started by a big process would inherit its peak in ``ru_maxrss``), in a temporary
folder (so ``PYTHONPATH=old-checkout`` compares versions; from the repository root ``-m`` would always find
this checkout). Reported per case:
wall seconds, CPU seconds (user + system, ffmpeg included), the peak RSS of the skyforecast process (exact,
from ``wait4``: the larger of it and ffmpeg, whose peak it collects) and the peak of the whole process tree
(skyforecast + ffmpeg summed, sampled from /proc every 20 ms). The photo is built by resizing the team's
``coast.png`` (never committed); the model's weights are random, so the motion is meaningless but the work
per frame is the same as with trained weights (``--mask none`` moves every pixel: the most work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COAST = ROOT.parent / "shared" / "data" / "photos" / "coast.png"

PREPARE = """
import sys, torch
from PIL import Image
from skyforecast.model.networks import MDGAN
src, photo, size, weights, ngf = sys.argv[1:6]
image = Image.open(src).convert("RGB")
if photo != src:
    image.resize(tuple(int(v) for v in size.lower().split("x")), Image.BICUBIC).save(photo, quality=92)
w, h = image.size if photo == src else (int(v) for v in size.lower().split("x"))
mask = Image.new("L", (w, h), 255)
mask.paste(0, (0, 2 * h // 3, w, h))  # the bottom third stands still
mask.save(sys.argv[6])
if weights != "-":
    torch.manual_seed(0)
    MDGAN(ngf=int(ngf)).eval().save_pretrained(weights)
"""


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants, from /proc (0 for processes already gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` to completion: wall and CPU seconds, exact peak RSS and sampled peak tree RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.is_set():
            peak_tree = max(peak_tree, _tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{output}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # kB on Linux
        "peak_tree_rss_mb": round(peak_tree / 2**20),
        "notes": [line for line in output.splitlines() if "note" in line.lower()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", help="a photo to use instead of the synthetic one")
    ap.add_argument("--size", default="3000x2000", help="size of the synthetic photo (default 3000x2000)")
    ap.add_argument("-w", "--weights", help="model folder (default: a random model of width --ngf)")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument(
        "--mask",
        nargs="+",
        default=["none", "file", "auto"],
        help="cases: none (every pixel moves), file (the bottom third still), auto (native's default)",
    )
    ap.add_argument("--format", default="mp4", choices=["mp4", "gif", "frames"])
    ap.add_argument("--extra", default="", help="more predict options, e.g. '--loop' or '--frames 96'")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="fullres-") as tmp:
        tmp = Path(tmp)
        photo = args.photo or str(tmp / "photo.jpg")
        weights = args.weights or str(tmp / "model")
        mask_file = str(tmp / "mask.png")
        source = args.photo or str(COAST)
        prepare = [source, photo, args.size, "-" if args.weights else weights, str(args.ngf), mask_file]
        subprocess.run([sys.executable, "-c", PREPARE, *prepare], check=True, cwd=tmp)
        out = tmp / ("out" if args.format == "frames" else f"out.{args.format}")
        results = []
        for case in args.mask:
            cmd = [sys.executable, "-m", "skyforecast", "predict", photo, "-w", weights, "-o", str(out)]
            cmd += ["-f", args.format, "--resolution", "native", "--overwrite", *args.extra.split()]
            cmd += ["--mask", mask_file if case == "file" else case]
            for run in range(args.repeat):
                r = {"case": f"native, --mask {case} {args.extra}".strip(), "run": run, **measure(cmd, tmp)}
                results.append(r)
                print(json.dumps(r), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
