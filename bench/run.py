"""Side-by-side speed benchmark of skyforecast prediction: `python bench/run.py [--json out.json]`.

Measured in one run, so the numbers share the machine's conditions:

* model only, two stages: the plain eager fp32 model (the reference) against the fast path
  (``skyforecast.model.fast``) at several batch sizes, interleaved round by round, medians; plus ablations
  that switch one optimisation off at a time, and optionally ``torch.compile``;
* end to end: ``skyforecast predict`` as a new process for one photo (process start to file written) and for
  a folder of 32 photos (clips/s), with the peak resident memory of the process;
* where the one-photo run spends its time, phase by phase (interpreter start, imports, weights, prediction,
  MP4, exit), and the folder run's throughput once the model is loaded (``--no-phases`` skips these runs);
* ``skyforecast --help`` wall time.

Random weights with non-trivial BatchNorm statistics stand in for a trained model: speed does not depend on
the values. Nothing is written inside the repository except the JSON file you ask for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The CLI lets idle OpenMP threads sleep (skyforecast/cli/__init__.py); the model-only timings use the same
# setting
# so that they compare with the end-to-end ones. An explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skyforecast.model.fast import FastMDGAN, cpu_supports_bf16, onednn_available  # noqa: E402
from skyforecast.model.networks import FRAMES, MDGAN  # noqa: E402
from skyforecast.model.pipeline import pick_device  # noqa: E402

SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"  # beside the checkout


def machine_info(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "onednn_prepacked_ops": onednn_available(),
        "cpu_native_bf16": cpu_supports_bf16(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": str(device),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="ignore"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def random_model(ngf: int, seed: int = 0) -> MDGAN:
    """Random weights; BatchNorm statistics and affine terms set to random non-trivial values."""
    torch.manual_seed(seed)
    model = MDGAN(ngf=ngf).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(
    ngf: int, batch_sizes: list[int], rounds: int, device: torch.device, ablations: bool, compile_: bool
) -> dict:
    """Seconds per clip (two stages) for the reference and the fast path, interleaved, medians."""
    model = random_model(ngf).to(device)
    variants = {
        "reference (eager fp32)": lambda img: model(img.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1)),
        "fast": FastMDGAN(model, device),
    }
    out: dict = {"ngf": ngf, "gflop_per_clip": round(gflop_per_clip(ngf), 1), "per_batch": {}}
    with torch.inference_mode():
        check = torch.rand(2, 3, 128, 128, device=device) * 2 - 1
        diff = (variants["fast"](check).float() - variants["reference (eager fp32)"](check)).abs().max()
        out["fast_max_abs_diff"] = float(diff)
        out["cpu_seconds_per_clip"] = {}
        for b in batch_sizes:
            out["per_batch"][b], out["cpu_seconds_per_clip"][b] = _time_variants(variants, b, rounds, device)
        fast_times = {b: out["per_batch"][b]["fast"] for b in batch_sizes}
        ref_times = {b: out["per_batch"][b]["reference (eager fp32)"] for b in batch_sizes}
        best = min(fast_times, key=fast_times.get)
        best_ref = min(ref_times, key=ref_times.get)
        out["best_batch"] = best
        out["summary"] = {
            "reference_b1": ref_times[batch_sizes[0]],
            "reference_best": ref_times[best_ref],
            "reference_best_batch": best_ref,
            "fast_b1": fast_times[batch_sizes[0]],
            "fast_best": fast_times[best],
            "fast_best_batch": best,
        }
        extra = {}
        if ablations:
            extra["fast without temporal shortcut"] = FastMDGAN(model, device, temporal_shortcut=False)
            extra["fast without oneDNN prepacking"] = FastMDGAN(model, device, onednn=False)
            extra["fast without channels_last_3d"] = FastMDGAN(model, device, channels_last=False)
            extra["fast without sub-pixel last layer"] = FastMDGAN(model, device, subpixel=False)
            extra["BN folded only (plain conv, NCDHW)"] = FastMDGAN(
                model, device, temporal_shortcut=False, onednn=False, channels_last=False
            )
        if compile_:
            t0 = time.perf_counter()
            compiled = FastMDGAN(model, device).compile()
            compiled(torch.rand(best, 3, 128, 128, device=device))
            out["compile_seconds"] = round(time.perf_counter() - t0, 1)
            extra["fast + torch.compile"] = compiled
        if extra:
            extra["fast"] = variants["fast"]
            out["ablations_at_batch"] = best
            out["ablations"], out["ablations_cpu_seconds"] = _time_variants(extra, best, rounds, device)
    return out


def _time_variants(variants: dict, batch: int, rounds: int, device: torch.device) -> tuple[dict, dict]:
    """Median seconds per clip of each variant: wall time, and CPU time of all this process's threads (on a
    machine shared with other work, wall time includes waiting for a core; CPU time is the work itself)."""
    img = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for f in variants.values():  # warm-up: weight packing, cuDNN autotuning, allocator
        f(img)
    _sync(device)
    for _ in range(rounds):
        for name, f in variants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f(img)
            _sync(device)
            times[name].append((time.perf_counter() - t0) / batch)
            cpu[name].append((time.process_time() - c0) / batch)
    wall = {k: round(statistics.median(v), 4) for k, v in times.items()}
    return wall, {k: round(statistics.median(v), 4) for k, v in cpu.items()}


def gflop_per_clip(ngf: int) -> float:
    """Multiply-adds x 2 of both generators (transposed convolutions counted like their forward twins)."""
    c = ngf
    convs = [  # (cin, cout, kernel volume, output voxels)
        (3, c, 48, 32 * 64 * 64),
        (c, 2 * c, 64, 16 * 32 * 32),
        (2 * c, 4 * c, 64, 8 * 16 * 16),
        (4 * c, 8 * c, 64, 4 * 8 * 8),
        (8 * c, 16 * c, 64, 2 * 4 * 4),
        (16 * c, 16 * c, 32, 1),
    ]
    one = sum(2 * ci * co * k * n for ci, co, k, n in convs)
    return 2 * 2 * one / 1e9  # encoder + mirrored decoder, two generators


# ---- end to end, as new processes -------------------------------------------------------------------


def cli_command() -> list[str]:
    """The console script installed next to this interpreter (what a user runs), else ``python -m``."""
    script = Path(sys.executable).parent / "skyforecast"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "skyforecast"]


# Runs one command and reports its wall time and peak memory. It is itself a fresh small process: a child
# forked straight from this (large) benchmark process would report this process's memory as its own peak.
_TIMER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
rc = os.waitstatus_to_exitcode(status)
err = err.decode(errors="replace")[-500:]
print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "rc": rc, "err": err}))
"""


def run_process(args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak resident MB, exit code) of one process, from start to exit."""
    done = subprocess.run([sys.executable, "-c", _TIMER, *args], capture_output=True, text=True, check=True)
    r = json.loads(done.stdout)
    if r["rc"] != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r['rc']}): {r['err'].strip()}")
    return r["wall"], r["maxrss_kb"] / 1024.0, r["rc"]


# Runs ``skyforecast ARGS`` through the real entry point (cli.main) in a fresh process, with a clock around
# each phase; argv[1] is the parent's time.monotonic() just before it started the process (a system-wide
# clock). The torch-side modules are imported up front (the CLI imports them inside predict), with the
# OpenMP setting the CLI makes first, so that their import is one phase. Prints one JSON line on stderr
# right before the process ends, as ``cli.main`` ends it: at once, without interpreter teardown.
_PHASES = r"""
import json, os, sys, threading, time
t0 = float(sys.argv[1])
clock = lambda: time.monotonic() - t0
events = [("python start", 0.0, clock())]

def mark(name, start):
    events.append((name, start, clock()))

start = clock()
import skyforecast.cli as cli
mark("import CLI (typer, rich)", start)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
start = clock()
import skyforecast.batch, skyforecast.model.fast, skyforecast.io.media, skyforecast.model.pipeline,
skyforecast.model.weights mark("import torch + prediction code", start)
mods = sys.modules

def wrap(owner, attr, name, static=False):
    fn = getattr(owner, attr)
    raw = fn.__func__ if static else fn
    def timed(*a, **k):
        start = clock()
        try:
            return raw(*a, **k)
        finally:
            mark(name, start)
    setattr(owner, attr, classmethod(timed) if static else timed)

wrap(mods["skyforecast.model.weights"], "locate", "find weights, read config")
wrap(mods["skyforecast.model.fast"].FastMDGAN, "from_files", "read + fold weights", static=True)
wrap(mods["skyforecast.model.pipeline"].SkyPipeline, "predict_squares", "predict (model)")
wrap(mods["skyforecast.batch"], "load_photo", "decode photo")
writers = mods["skyforecast.io.media"].WRITERS
mp4 = writers["mp4"]
def write_mp4(*a, **k):
    start = clock()
    try:
        return mp4(*a, **k)
    finally:
        mark("write MP4", start)
writers["mp4"] = write_mp4

def report(code=0):
    events.append(("exit", clock(), clock()))
    sys.stderr.write("PHASES " + json.dumps(events) + "\n")
    sys.stderr.flush()
    real_exit(code)

real_exit = os._exit
os._exit = report
sys.argv = ["skyforecast", *sys.argv[2:]]
try:
    cli.main()
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
else:
    code = 0
report(code)
"""


def run_phases(args: list[str]) -> dict:
    """One ``skyforecast ARGS`` run through ``_PHASES``: its wall time and the time of each phase."""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PHASES, repr(t0), *args], capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - t0
    line = next((x for x in done.stderr.splitlines() if x.startswith("PHASES ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"phase run failed ({done.returncode}): {done.stderr[-500:].strip()}")
    events = json.loads(line[len("PHASES ") :])
    return {"wall": wall, "events": events}


def phase_table(run: dict) -> dict[str, float]:
    """Seconds per phase of a one-photo run, in order; the CLI's own work (argument parsing, planning,
    rich output, waiting for worker threads) is what is left between the measured phases."""
    events, wall = run["events"], run["wall"]
    total = {}
    for name, start, end in events:
        total[name] = total.get(name, 0.0) + (end - start)
    exit_at = next(start for name, start, _ in events if name == "exit")
    order = sorted(events, key=lambda e: e[1])
    out = {name: total[name] for name, _, _ in order if name != "exit"}
    out["CLI work between phases"] = exit_at - sum(out.values())
    out["process exit"] = wall - exit_at
    return {k: round(v, 3) for k, v in out.items()}


def folder_throughput(run: dict, clips: int) -> dict:
    """Start-up (process start to the first model call) and clips/s after it, to the last video written."""
    events = run["events"]
    first = min(start for name, start, _ in events if name == "predict (model)")
    last = max(end for name, _, end in events if name == "write MP4")
    return {
        "startup_seconds": round(first, 2),
        "after_startup_seconds": round(last - first, 2),
        "after_startup_clips_per_s": round(clips / (last - first), 3),
        "wall": round(run["wall"], 2),
    }


def prepare_photos(folder: Path, n: int, source: Path | None) -> list[Path]:
    """n photos in ``folder``: copies of real photos when available, else synthetic 640x360 JPEGs."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    real = (
        sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}) if source else []
    )
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        if real:
            src = real[i % len(real)]
            dst = folder / f"photo{i:02d}{src.suffix.lower()}"
            shutil.copyfile(src, dst)
        else:
            dst = folder / f"photo{i:02d}.jpg"
            sky = np.linspace(80, 230, 360)[:, None, None] * np.array([0.6, 0.8, 1.0])
            img = np.clip(sky + rng.normal(0, 12, (360, 640, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(dst, quality=90)
        paths.append(dst)
    return paths


def end_to_end(
    ngf: int, runs: int, batch: int, photos_source: Path | None, workdir: Path, with_phases: bool = True
) -> dict:
    weights = workdir / f"weights-ngf{ngf}"
    random_model(ngf).save_half(weights)  # stored fp16 like the bundled model
    photos = prepare_photos(workdir / "photos", 32, photos_source)
    cli = cli_command()
    one = []
    for i in range(runs):
        target = workdir / f"one-{i}.mp4"
        wall, rss, _ = run_process(
            [*cli, "predict", str(photos[0]), "-o", str(target), "-w", str(weights), "-q"]
        )
        if not target.is_file():
            raise RuntimeError(f"{target} was not written")
        one.append((wall, rss))
    folder = []
    for i in range(runs):
        out = workdir / f"folder-{i}"
        args = [*cli, "predict", str(photos[0].parent), "-o", str(out), "-w", str(weights), "-q"]
        wall, rss, _ = run_process([*args, "--batch-size", str(batch)])
        written = len(list(out.glob("*.mp4")))
        if written != 32:
            raise RuntimeError(f"folder run wrote {written} videos, expected 32")
        folder.append((wall, rss))
    one_wall = statistics.median(w for w, _ in one)
    folder_wall = statistics.median(w for w, _ in folder)
    phases = {}
    if with_phases:  # separate runs: the timing wrappers must not touch the numbers above
        target = workdir / "phases.mp4"
        one_args = ["predict", str(photos[0]), "-o", str(target), "-w", str(weights), "-q", "--overwrite"]
        runs_ = sorted((run_phases(one_args) for _ in range(runs)), key=lambda r: r["wall"])
        phases["one_photo"] = phase_table(runs_[len(runs_) // 2])
        phases["one_photo_wall"] = round(runs_[len(runs_) // 2]["wall"], 2)
        out = workdir / "folder-phases"
        folder_args = ["predict", str(photos[0].parent), "-o", str(out), "-w", str(weights), "-q"]
        folder_run = run_phases([*folder_args, "--batch-size", str(batch)])
        phases["folder32"] = folder_throughput(folder_run, len(photos))
    return {
        "ngf": ngf,
        "photos": "real (shared data)" if photos_source else "synthetic 640x360",
        "command": " ".join(
            [Path(cli[0]).name, *cli[1:], "predict", "PHOTO", "-o", "OUT.mp4", "-w", "WEIGHTS"]
        ),
        "one_photo_seconds": round(one_wall, 2),
        "one_photo_peak_rss_mb": round(max(r for _, r in one), 0),
        "folder32_seconds": round(folder_wall, 2),
        "folder32_clips_per_s": round(32 / folder_wall, 3),
        "folder32_batch_size": batch,
        "folder32_peak_rss_mb": round(max(r for _, r in folder), 0),
        "runs": runs,
        **({"phases": phases} if phases else {}),
    }


def help_time(runs: int) -> float:
    cli = cli_command()
    return round(statistics.median(run_process([*cli, "--help"])[0] for _ in range(runs)), 3)


# ---- report ----------------------------------------------------------------------------------------


def print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = result["machine"]
    console.print(
        f"[bold]machine[/] {m['cpu']}, {m['usable_cpus']} usable CPUs, torch {m['torch']} "
        f"({m['torch_threads']} threads), device {m['device']}"
        + (f" ({m['gpu']})" if "gpu" in m else "")
        + f", oneDNN prepack {m['onednn_prepacked_ops']}, native bf16 {m['cpu_native_bf16']}, "
        f"load average {m['load_average_start'][0]:.2f} -> {m['load_average_end'][0]:.2f}"
    )
    for mo in result["model_only"]:
        s = mo["summary"]
        t = Table(
            title=f"model only, two stages, ngf={mo['ngf']} ({mo['gflop_per_clip']} GFLOP/clip), s/clip"
        )
        t.add_column("batch", justify="right")
        names = list(next(iter(mo["per_batch"].values())))
        for n in names:
            t.add_column(n, justify="right")
        t.add_column("speed-up", justify="right")
        t.add_column("CPU s/clip ref / fast", justify="right")
        for b, row in mo["per_batch"].items():
            ref, fast = row["reference (eager fp32)"], row["fast"]
            c = mo["cpu_seconds_per_clip"][b]
            t.add_row(
                str(b),
                *(f"{row[n]:.3f}" for n in names),
                f"{ref / fast:.2f}x",
                f"{c['reference (eager fp32)']:.2f} / {c['fast']:.2f}",
            )
        console.print(t)
        console.print(
            f"  best: reference {s['reference_best']:.3f} s/clip (batch {s['reference_best_batch']}), "
            f"fast {s['fast_best']:.3f} s/clip (batch {s['fast_best_batch']}) = "
            f"{mo['gflop_per_clip'] / s['fast_best']:.0f} GFLOP/s; max |fast - reference| = "
            f"{mo['fast_max_abs_diff']:.1e}"
        )
        if "ablations" in mo:
            a = Table(title=f"ablations at batch {mo['ablations_at_batch']}, ngf={mo['ngf']}, s/clip")
            a.add_column("variant")
            a.add_column("s/clip", justify="right")
            a.add_column("CPU s/clip", justify="right")
            for n, v in mo["ablations"].items():
                a.add_row(n, f"{v:.3f}", f"{mo['ablations_cpu_seconds'][n]:.2f}")
            console.print(a)
            if "compile_seconds" in mo:
                console.print(f"  torch.compile took {mo['compile_seconds']} s before its first result")
    e = result.get("end_to_end")
    if e:
        mo = result["model_only"][0]
        model_rate = 1 / mo["summary"]["fast_best"]
        t = Table(title=f"end to end ({e['command']}), ngf={e['ngf']}, {e['photos']}, medians of {e['runs']}")
        t.add_column("what")
        t.add_column("value", justify="right")
        t.add_row("one photo, process start to file written", f"{e['one_photo_seconds']:.2f} s")
        t.add_row("peak resident memory, one photo", f"{e['one_photo_peak_rss_mb']:.0f} MB")
        t.add_row(
            f"folder of 32 photos (--batch-size {e['folder32_batch_size']})",
            f"{e['folder32_seconds']:.2f} s = {e['folder32_clips_per_s']:.2f} clips/s",
        )
        t.add_row(
            "  as a share of model-only throughput",
            f"{e['folder32_clips_per_s'] / model_rate:.0%} of {model_rate:.2f} clips/s",
        )
        t.add_row("peak resident memory, folder", f"{e['folder32_peak_rss_mb']:.0f} MB")
        t.add_row("skyforecast --help", f"{result['help_seconds']:.3f} s")
        console.print(t)
        ph = e.get("phases")
        if ph:
            p = Table(title=f"one photo, phase by phase (the median of {e['runs']} timed runs)")
            p.add_column("phase")
            p.add_column("s", justify="right")
            for name, sec in ph["one_photo"].items():
                p.add_row(name, f"{sec:.3f}")
            p.add_row("[bold]total[/]", f"{ph['one_photo_wall']:.2f}")
            console.print(p)
            f = ph["folder32"]
            console.print(
                f"  folder of 32, one timed run ({f['wall']:.1f} s): start-up to the first model call "
                f"{f['startup_seconds']:.2f} s, then {f['after_startup_clips_per_s']:.2f} clips/s = "
                f"{f['after_startup_clips_per_s'] / model_rate:.0%} of model-only throughput"
            )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=32, help="width benchmarked in full (the paper's 32)")
    ap.add_argument("--also-ngf", type=int, nargs="*", default=[16], help="narrower widths, model only")
    ap.add_argument(
        "--batch-sizes", default="1,2,4,8", help="comma-separated; the first is reported as batch 1"
    )
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per variant (medians)")
    ap.add_argument("--runs", type=int, default=3, help="end-to-end process runs (medians)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to build)")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end and --help timings")
    ap.add_argument("--no-phases", action="store_true", help="skip the phase-by-phase end-to-end runs")
    ap.add_argument(
        "--e2e-batch", type=int, default=None, help="folder batch size [default: fast path's best]"
    )
    ap.add_argument("--photos", type=Path, default=None, help="folder of photos for the e2e runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    device = pick_device(args.device)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    result: dict = {
        "machine": machine_info(device),
        "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
    }
    result["model_only"] = [
        model_only(args.ngf, batch_sizes, args.rounds, device, not args.no_ablations, args.compile)
    ]
    for ngf in args.also_ngf:
        result["model_only"].append(model_only(ngf, batch_sizes, args.rounds, device, False, False))
    if not args.no_e2e:
        source = args.photos or (SHARED_PHOTOS if SHARED_PHOTOS.is_dir() else None)
        best = args.e2e_batch or result["model_only"][0]["summary"]["fast_best_batch"]
        with tempfile.TemporaryDirectory(prefix="skyforecast-bench-") as tmp:
            result["end_to_end"] = end_to_end(
                args.ngf, args.runs, best, source, Path(tmp), with_phases=not args.no_phases
            )
        result["help_seconds"] = help_time(5)
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print_report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
