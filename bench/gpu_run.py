"""The one prepared GPU run on a CUDA machine: ``OUT=DIR bash bench/gpu_run.sh [--smoke] [options]``.

In one device call of at most ``--budget`` seconds (default 540), five phases, each in its own process with
its own time limit, each failing soft (a failed phase is recorded and the run goes on):

1. ``info``: GPU, driver, torch, CUDA and the dependencies' versions;
2. ``cuda_tests``: the test suite's ``cuda``-marked tests (skipped without CUDA);
3. ``bench``: model-only clips/s at ngf=32 and the bundled width, eager fp32 reference against the fast
   path, batch 1 and the best of a few batch sizes, and the fraction of the GPU's bf16 peak;
4. ``predict``: ``skyforecast predict`` on one photo, process start to MP4 written; then per photo at
   1080p the model's time at batch 32 beside the renderer's (yuv420p planes) and x264's CPU
   time, and the sky warp on the GPU (``grid_sample``) against OpenCV's remap (``bench/gpu_render.py``);
5. ``train``: the default-model recipe on synthetic clips made here (``skyforecast synth``, started in the
   background at the beginning) until the time left runs out, snapshots scored on ``real-sky-dev``, the
   best one written to $OUT in parts with ``join.sh`` (``bench/gpu_train.py``).

$OUT receives at most 8 files (the device brings back no more): ``summary.json`` (every phase's status,
time and numbers in full), ``details.tar.gz`` (one JSON per phase, logs, each evaluate JSON, training
metrics, the predicted MP4), and from phase 5 ``best-model.tar.partNN`` + ``join.sh``. Both JSON files are
rewritten after every phase, so a run stopped from outside still leaves everything finished before.

``--smoke`` runs the same phases and code on the CPU with tiny sizes (seconds of work), for the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_common import (  # noqa: E402
    GROUPS,
    PHASES,
    REPO,
    PhaseFailed,
    cli,
    end_groups,
    read_json,
    run_logged,
    start_logged,
    stop_group,
    tail,
    write_json,
)

OUT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
OUT_MAX_FILES, OUT_MAX_BYTES = 8, 16 * 2**20
DETAILS_MAX_BYTES = 15 * 2**20

# seconds: (most a phase may take in a real run, in a smoke run)
PHASE_LIMITS = {"info": (45, 90), "cuda_tests": (90, 60), "bench": (150, 120), "predict": (60, 120)}
TRAIN_MIN_S = (60, 20)  # training is skipped with less time than this left
END_RESERVE_S = 12  # kept for writing summary.json and details.tar.gz at the end

DEV_CANDIDATES = (  # real-sky-dev: inside the checkout (travels to the device), else beside it
    REPO / "shared" / "data" / "real-sky-dev",
    REPO / ".devdata" / "real-sky-dev",
    REPO.parent / "shared" / "data" / "real-sky-dev",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="One prepared GPU run: versions, CUDA tests, speed, predict, train."
    )
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: the same code, in seconds")
    ap.add_argument(
        "--budget", type=float, default=None, help="wall-clock seconds for everything [540; smoke 600]"
    )
    ap.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    ap.add_argument("--dev-data", type=Path, default=None, help="real-sky-dev (evaluation clips) [searched]")
    ap.add_argument("--train-data", type=Path, default=None, help="existing training clips instead of synth")
    ap.add_argument("--photo", type=Path, default=REPO / "examples" / "sky.jpg", help="photo for phase 4")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder [a new temporary one]")
    ap.add_argument("--size-budget-mb", type=float, default=None, help="fp16 model size limit [40]")
    ap.add_argument("--synth-clips", type=int, default=None, help="synthetic training clips [1200]")
    ap.add_argument("--train-batch", type=int, default=None, help="clips per training step [16]")
    ap.add_argument("--precision", default="auto", help="training precision: auto (bf16 on CUDA), fp32, bf16")
    ap.add_argument("--lambda-rank", type=float, default=1.0, help="Stage II ranking-loss weight [1]")
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # internal: run one phase
    ap.add_argument("--settings", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def settings(args: argparse.Namespace, work: Path, out: Path) -> dict:
    """Everything the phases need, for a real run or (``--smoke``) a tiny CPU one."""
    smoke = args.smoke
    cpus = os.cpu_count() or 2
    from gpu_phases import bundled_ngf

    cfg = {
        "smoke": smoke,
        "work": str(work),
        "details": str(work / "details"),
        "out": str(out),
        "device": "cpu" if smoke else "auto",
        "bench_widths": sorted({4 if smoke else 32, bundled_ngf()}, reverse=not smoke),
        "bench_batches": [1, 2] if smoke else [1, 8, 32, 128],
        "bench_rounds": 1 if smoke else 5,
        "photo": str(args.photo),
        "predict_runs": 1 if smoke else 2,
        "synth_clips": args.synth_clips or (4 if smoke else 1200),
        "synth_size": "128x128" if smoke else "228x128",
        "synth_workers": 1 if smoke else max(1, cpus - 2),
        "size_budget_mb": args.size_budget_mb or (2.5 if smoke else 40.0),
        "ndf": None,  # = ngf, the bundled recipe's ratio
        "train_batch": args.train_batch or (2 if smoke else 16),
        "precision": args.precision,
        "lambda_flicker": 100.0,
        "lambda_rank": args.lambda_rank,
        "num_workers": 0 if smoke else min(10, max(1, cpus - 4)),
        "log_every": 1 if smoke else 10,
        "probe_steps": 1 if smoke else 40,
        "session_min_steps": 1 if smoke else 10,
        "session_max_steps": 1 if smoke else 1_000_000,
        "stage1_sessions": 2,
        "stage2_sessions": 2 if smoke else 3,
        "stage1_fraction": 0.4,
        "final_reserve_s": 2 if smoke else 8,
        "eval_guess_s": 10 if smoke else 30,
        "eval_batch": 2 if smoke else 16,
        "eval_limit": 1 if smoke else None,
    }
    return cfg


def find_dev_data(args: argparse.Namespace) -> Path | None:
    if args.dev_data is not None:
        return args.dev_data if args.dev_data.is_dir() else None
    if args.smoke:
        return None  # the smoke run scores on a synthetic stand-in, the same everywhere
    return next((p for p in DEV_CANDIDATES if p.is_dir()), None)


# ---- the driver ----------------------------------------------------------------------------------------


class Driver:
    def __init__(self, args: argparse.Namespace, out: Path):
        self.t0 = time.monotonic()
        self.args, self.out = args, out
        self.budget = args.budget or (600.0 if args.smoke else 540.0)
        self.work = args.work or Path(tempfile.mkdtemp(prefix="skyforecast-gpu-run-"))
        self.details = self.work / "details"
        self.details.mkdir(parents=True, exist_ok=True)
        self.cfg = settings(args, self.work, out)
        self.wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
        unknown = set(self.wanted) - set(PHASES)
        if unknown:
            raise SystemExit(
                f"error: unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}"
            )
        self.summary: dict = {
            "command": "bash bench/gpu_run.sh " + " ".join(sys.argv[1:]),
            "mode": "smoke (CPU, tiny sizes)" if args.smoke else "full",
            "budget_s": self.budget,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "phases": {},
            "out_files": None,
        }
        self.synth: dict[str, subprocess.Popen] = {}

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def no_cuda(self) -> bool:
        """Phase 1 saw no CUDA device (when phase 1 did not run or failed, the CUDA phase looks itself)."""
        info = self.summary["phases"].get("info") or {}
        torch_info = (info.get("result") or {}).get("torch") or {}
        return info.get("status") == "ok" and torch_info.get("cuda_available") is False

    def run(self) -> int:
        self.start_synth()
        for name in PHASES:
            if name not in self.wanted:
                continue
            if name == "train":
                self.train()
            elif name == "cuda_tests" and self.no_cuda():
                self.record(name, {"status": "skipped", "error": "no CUDA device here (phase info)"})
            else:
                real, smoke = PHASE_LIMITS[name]
                self.phase(name, min(smoke if self.args.smoke else real, self.left() - END_RESERVE_S))
        for proc in self.synth.values():
            if proc.poll() is None:
                stop_group(proc)
            GROUPS.discard(proc.pid)
        self.finish()
        failed = [n for n, p in self.summary["phases"].items() if p["status"] not in ("ok", "skipped")]
        return 1 if failed or not self.summary["out_ok"] else 0

    # -- synthetic data, made while phases 1-4 run
    def start_synth(self) -> None:
        if "train" not in self.wanted:
            return
        cfg = self.cfg
        if self.args.train_data is None:
            self._synth("train", self.work / "synth-train", cfg["synth_clips"], seed=0)
            cfg["train_data"] = str(self.work / "synth-train")
            size = cfg["synth_size"]
            cfg["train_data_note"] = (
                f"{cfg['synth_clips']} synthetic clips (skyforecast synth --size {size} --seed 0)"
            )
        else:
            cfg["train_data"], cfg["train_data_note"] = str(self.args.train_data), str(self.args.train_data)
        dev = find_dev_data(self.args)
        if dev is None:  # honest fallback: scores on synthetic clips, said so everywhere
            clips = 2 if self.args.smoke else 16
            self._synth("dev", self.work / "synth-dev", clips, seed=99)
            cfg["dev_data"] = str(self.work / "synth-dev")
            cfg["dev_data_note"] = f"NOT real-sky-dev (not found): {clips} synthetic stand-in clips, seed 99"
            self.summary["warning"] = cfg["dev_data_note"]
        else:
            cfg["dev_data"], cfg["dev_data_note"] = str(dev), f"{dev} (real)"

    def _synth(self, name: str, folder: Path, clips: int, seed: int) -> None:
        cfg = self.cfg
        args = [
            *cli(),
            "synth",
            str(folder),
            "--clips",
            str(clips),
            "--size",
            cfg["synth_size"],
            "--workers",
            str(cfg["synth_workers"]),
            "--seed",
            str(seed),
        ]
        with open(self.details / f"synth-{name}.log", "wb") as log:  # the child keeps its own handle
            self.synth[name] = start_logged(args, log, new_session=True)
        self.synth[name].started = time.monotonic()  # type: ignore[attr-defined]

    def wait_synth(self, until: float) -> dict:
        """Wait for the synthetic data (at most until ``until`` on the run's clock); what each run took."""
        report = {}
        for name, proc in self.synth.items():
            try:
                proc.wait(timeout=max(0.0, until - (time.monotonic() - self.t0)))
            except subprocess.TimeoutExpired:
                pass
            line = tail(self.details / f"synth-{name}.log", 400).strip().splitlines()
            report[name] = {
                "exit_code": proc.poll(),
                "seconds_since_start": round(time.monotonic() - proc.started, 1),  # type: ignore[attr-defined]
                "last_line": line[-1] if line else "",
            }
        return report

    # -- phases
    def phase(self, name: str, limit: float, extra: dict | None = None) -> None:
        if limit < 5:
            self.record(
                name, {"status": "skipped", "error": f"no time left ({self.left():.0f} s of the budget)"}
            )
            return
        cfg = dict(self.cfg, phase_limit_s=limit, **(extra or {}))
        if name == "bench":
            cfg["synth_running"] = any(p.poll() is None for p in self.synth.values())
        settings_path = self.work / f"settings-{name}.json"
        write_json(settings_path, cfg)
        print(f"[{self.elapsed()}] phase {name} (limit {limit:.0f} s)", flush=True)
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--phase",
            name,
            "--settings",
            str(settings_path),
        ]
        rc, wall = run_logged(args, self.details / f"{name}.log", limit, new_session=True)
        got = read_json(self.details / f"{name}.json", {})
        entry = {"status": got.get("status", "failed"), "seconds": round(wall, 1), "exit_code": rc}
        if rc is None:
            entry["status"] = "timeout"
            entry["error"] = (
                f"ran past its limit of {limit:.0f} s and was ended; result = what it had written"
            )
        elif got.get("error"):
            entry["error"] = got["error"]
        elif rc != 0 or not got:
            entry["status"] = "failed"
            entry["error"] = f"exited {rc} without a result"
        if entry["status"] not in ("ok", "skipped"):
            entry["log_tail"] = tail(self.details / f"{name}.log", 2500)
        entry["result"] = got.get("result")
        self.record(name, entry)

    def train(self) -> None:
        minimum = TRAIN_MIN_S[1 if self.args.smoke else 0]
        synth = self.wait_synth(until=self.budget - END_RESERVE_S - minimum)
        self.summary["synth"] = synth
        bad = [n for n, s in synth.items() if s["exit_code"] != 0]
        if bad:
            self.record("train", {"status": "failed", "error": f"synthetic data not made: {', '.join(bad)}"})
            return
        seconds = self.left() - END_RESERVE_S
        if seconds < minimum:
            self.record("train", {"status": "skipped", "error": f"only {seconds:.0f} s left for training"})
            return
        train_seconds = seconds - 10  # the phase plans inside this; its process limit keeps 10 s of grace
        self.phase("train", seconds, {"train_seconds": train_seconds})

    def record(self, name: str, entry: dict) -> None:
        self.summary["phases"][name] = entry
        note = f" ({entry['error']})" if entry.get("error") else ""
        print(f"[{self.elapsed()}] phase {name}: {entry['status']}{note}", flush=True)
        self.write_out()

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.t0:5.1f} s"

    # -- what goes back
    def write_out(self) -> None:
        self.summary["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        write_json(self.out / "summary.json", self.summary)
        self.summary["details"] = write_details(self.details, self.out / "details.tar.gz")
        write_json(self.out / "summary.json", self.summary)

    def finish(self) -> None:
        files = check_out(self.out)
        self.summary["out_files"] = files["files"]
        self.summary["out_ok"] = files["ok"]
        if not files["ok"]:
            self.summary["out_problems"] = files["problems"]
        self.write_out()
        print(headline(self.summary), flush=True)


def write_details(folder: Path, target: Path) -> dict:
    """``folder`` as a gzipped tar under ``DETAILS_MAX_BYTES``; the largest files are left out first if it
    would not fit (listed in the result)."""
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")),
        key=lambda p: p.stat().st_size,
    )
    left_out: list[str] = []
    while True:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for f in files:
                tar.add(f, arcname=f"details/{f.relative_to(folder)}")
        if buf.tell() <= DETAILS_MAX_BYTES or not files:
            break
        left_out.append(str(files.pop().relative_to(folder)))
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, target)
    return {"files": len(files), "bytes": buf.tell(), "left_out_for_size": left_out}


def check_out(out: Path) -> dict:
    """Whether $OUT holds what the device brings back: at most 8 plain files, each under 16 MiB, named in
    letters, digits, '.', '_' and '-'."""
    files, problems = {}, []
    for p in sorted(out.rglob("*")):
        if p.is_file():
            rel = p.relative_to(out)
            files[str(rel)] = p.stat().st_size
            if p.stat().st_size >= OUT_MAX_BYTES:
                problems.append(f"{rel}: {p.stat().st_size} bytes, over 16 MiB")
            if not all(OUT_NAME.match(part) for part in rel.parts):
                problems.append(f"{rel}: a name the device does not bring back")
    if len(files) > OUT_MAX_FILES:
        problems.append(f"{len(files)} files, more than {OUT_MAX_FILES}")
    return {"files": files, "ok": not problems, "problems": problems}


def headline(summary: dict) -> str:
    """A few lines for the end of the device's output: status per phase and the main numbers."""
    lines = ["", "== gpu_run summary =="]
    for name, p in summary["phases"].items():
        lines.append(
            f"{name:11s} {p['status']:8s} {p.get('seconds', 0):6.1f} s  {p.get('error', '')}".rstrip()
        )
    r = lambda n: (summary["phases"].get(n) or {}).get("result") or {}  # noqa: E731
    gpu = r("info").get("gpu") or {}
    lines.append(
        f"device: {gpu.get('name', 'no GPU')}, torch {(r('info').get('torch') or {}).get('version')}"
    )
    for w in r("bench").get("widths", []):
        s = w["summary"]
        c = s["clips_per_s"]
        lines.append(
            f"ngf={w['ngf']}: reference {c['reference_b1']} / {c['reference_best']} clips/s "
            f"(b1 / b{s['reference_best_batch']}), "
            f"fast {c['fast_b1']} / {c['fast_best']} clips/s (b1 / b{s['fast_best_batch']}), "
            f"bf16 peak fraction {s['fast_best_fraction_of_bf16_peak']}"
        )
    if r("predict").get("runs"):
        lines.append(f"predict one photo: {[x['wall_s'] for x in r('predict')['runs']]} s")
    train = r("train")
    for s in train.get("sessions", []):
        lines.append(
            f"train Stage {s['stage']}: {s['steps']} steps in {s['wall_s']} s, {s['clips_per_s']} clips/s "
            f"(exit {s['exit_code']})"
        )
    scored = [("bundled", train.get("bundled"))] + [
        (tag, snap.get("scores")) for tag, snap in (train.get("snapshots") or {}).items()
    ]
    for tag, scores in scored:
        if scores:
            nan = float("nan")
            cells = [
                f"{system} {v.get('psnr', nan):.2f} dB / motion {v.get('motion_ratio', nan):.2f}"
                for system, v in scores.items()
                if system in ("stage2", "transfer")
            ]
            lines.append(f"{tag}: " + ", ".join(cells))
    best = train.get("best")
    if best:
        lines.append(f"best: {best['tag']} ({best['criterion']})")
    lines.append(f"$OUT: {len(summary.get('out_files') or {})} files, ok={summary.get('out_ok')}")
    return "\n".join(lines)


# ---- one phase, in its own process ---------------------------------------------------------------------


def run_one_phase(name: str, settings_path: Path) -> int:
    from gpu_phases import phase_bench, phase_cuda_tests, phase_info, phase_predict
    from gpu_train import phase_train

    funcs = {
        "info": phase_info,
        "cuda_tests": phase_cuda_tests,
        "bench": phase_bench,
        "predict": phase_predict,
        "train": phase_train,
    }
    cfg = json.loads(settings_path.read_text())
    path = Path(cfg["details"]) / f"{name}.json"
    state = {"result": None}

    def emit(partial: dict) -> None:
        state["result"] = partial
        write_json(path, {"status": "running", "result": partial})

    try:
        result = funcs[name](cfg, emit)
    except PhaseFailed as e:
        write_json(path, {"status": "failed", "error": str(e), "result": e.partial})
        return 1
    except Exception as e:  # recorded; the driver goes on with the next phase
        traceback.print_exc()
        write_json(path, {"status": "failed", "error": f"{type(e).__name__}: {e}", "result": state["result"]})
        return 1
    status = "skipped" if set(result) == {"skipped"} else "ok"
    write_json(
        path,
        {"status": status, "result": result, **({"error": result["skipped"]} if status == "skipped" else {})},
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        return run_one_phase(args.phase, args.settings)
    out = os.environ.get("OUT")
    if not out:
        print("error: set OUT to the folder for the results (created as needed)", file=sys.stderr)
        return 2
    Path(out).mkdir(parents=True, exist_ok=True)
    driver = Driver(args, Path(out))

    def stopped(signum, frame):  # `timeout` in gpu_run.sh, or the device's own limit
        end_groups()
        driver.summary["stopped"] = f"signal {signum} after {time.monotonic() - driver.t0:.0f} s"
        driver.write_out()
        os._exit(124)

    signal.signal(signal.SIGTERM, stopped)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main())
