"""Phases 1-4 of the one-call GPU run (``bench/gpu_run.py``): machine and versions, the CUDA-marked tests,
model-only speed against the eager reference, and one photo end to end. Each function takes the run's
settings and returns a JSON-able dict; ``emit`` writes what is known so far, so a phase stopped at its time
limit still leaves its finished part behind. The model-only and end-to-end timings reuse ``bench/run.py``."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from gpu_common import REPO, PhaseFailed, cli

# Dense bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s, without sparsity. The longest key
# found in the device name wins ("H100 PCIe" before "H100"). A device not listed gets no fraction.
BF16_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.2,
}

DEPENDENCIES = (
    "numpy",
    "typer",
    "rich",
    "imageio",
    "imageio-ffmpeg",
    "pillow",
    "opencv-python-headless",
    "safetensors",
    "huggingface-hub",
    "pytest",
)


def peak_bf16_tflops(device_name: str | None) -> float | None:
    """The dense bf16 peak of a GPU by its name (``torch.cuda.get_device_name``); None when unknown."""
    if not device_name:
        return None
    keys = [k for k in BF16_PEAK_TFLOPS if k.lower() in device_name.lower()]
    return BF16_PEAK_TFLOPS[max(keys, key=len)] if keys else None


def load_bench_run():
    """``bench/run.py`` as a module (its model-only and end-to-end timing pieces)."""
    spec = importlib.util.spec_from_file_location("skyforecast_bench_run", REPO / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundled_ngf() -> int:
    import json

    return int(json.loads((REPO / "weights" / "config.json").read_text())["ngf"])


# ---- phase 1 ------------------------------------------------------------------------------------------


def phase_info(cfg: dict, emit: Callable[[dict], None]) -> dict:
    info: dict = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    smi = shutil.which("nvidia-smi")
    if smi:
        fields = "name,driver_version,memory.total,clocks.max.sm,power.limit"
        q = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        info["nvidia_smi"] = dict(
            zip(fields.split(","), (v.strip() for v in q.stdout.split(",")), strict=False)
        )
        print(subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout)
    else:
        info["nvidia_smi"] = None
    emit(info)
    import torch

    info["torch"] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "threads": torch.get_num_threads(),
    }
    gpu = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        gpu = {
            "name": p.name,
            "total_memory_gib": round(p.total_memory / 2**30, 1),
            "multiprocessors": p.multi_processor_count,
            "compute_capability": f"{p.major}.{p.minor}",
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        }
    info["gpu"] = gpu
    info["bf16_peak_tflops"] = peak_bf16_tflops(gpu["name"] if gpu else None)
    deps = {}
    for name in DEPENDENCIES:
        try:
            deps[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            deps[name] = None
    info["dependencies"] = deps
    try:
        import imageio_ffmpeg

        info["ffmpeg"] = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # recorded, not fatal: only MP4 writing and video input need it
        info["ffmpeg"] = f"unavailable: {type(e).__name__}: {e}"
    import skyforecast

    info["skyforecast"] = {"version": skyforecast.__version__, "path": str(Path(skyforecast.__file__).parent)}
    return info


# ---- phase 2 ------------------------------------------------------------------------------------------


def phase_cuda_tests(cfg: dict, emit: Callable[[dict], None]) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device here"}
    xml = Path(cfg["details"]) / "cuda_tests.xml"
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "cuda",
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        f"--junitxml={xml}",
        "tests",
    ]
    t0 = time.monotonic()
    done = subprocess.run(args, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(done.stdout)
    result = {
        "command": " ".join(args[1:]),
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - t0, 1),
    }
    result.update(junit_counts(xml))
    result["summary_line"] = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode not in (0, 5):  # 5: no test collected, reported by the counts
        raise PhaseFailed(f"pytest -m cuda exited {done.returncode}: {result['summary_line']}", result)
    return result


def junit_counts(xml: Path) -> dict:
    """Counts and the failing tests (with the first line of their message) from pytest's JUnit XML."""
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError) as e:
        return {"junit": f"unreadable: {e}"}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed, passed = [], []
    for suite in root.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            failed.append({"test": name, "message": (bad.get("message") or "").splitlines()[:1]})
        elif case.find("skipped") is None:
            passed.append(name)
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed": failed, "passed_tests": passed}


# ---- phase 3 ------------------------------------------------------------------------------------------


def phase_bench(cfg: dict, emit: Callable[[dict], None]) -> dict:
    bench = load_bench_run()
    import torch

    device = bench.pick_device(cfg["device"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    peak = peak_bf16_tflops(name)
    result: dict = {
        "machine": bench.machine_info(device),
        "device_name": name,
        "bf16_peak_tflops": peak,
        "bf16_peak_source": "vendor data sheet, dense (no sparsity)" if peak else None,
        "batch_sizes": cfg["bench_batches"],
        "rounds": cfg["bench_rounds"],
        "synth_running_during_bench": cfg.get("synth_running", False),
        "widths": [],
    }
    if device.type == "cuda":
        result["matmul_bf16_tflops"] = matmul_tflops(device)
    emit(result)
    # one batch size at a time, every width, smallest first: a phase that runs into its time limit keeps
    # what it measured, and the larger batches (cuDNN autotuning at full size) are the ones left out
    t0, merged = time.monotonic(), {}
    for b in cfg["bench_batches"]:
        if merged and time.monotonic() - t0 > 0.6 * cfg.get("phase_limit_s", float("inf")):
            result["left_out_batches"] = cfg["bench_batches"][cfg["bench_batches"].index(b) :]
            break
        for ngf in cfg["bench_widths"]:
            mo = bench.model_only(ngf, [b], cfg["bench_rounds"], device, False, False)
            merged[ngf] = merge_batches(merged.get(ngf), mo)
            result["widths"] = [add_rates(copy.deepcopy(m), peak) for m in merged.values()]
            emit(result)
    return result


def merge_batches(merged: dict | None, mo: dict) -> dict:
    """``bench/run.py``'s model-only result for one more batch size, added to those measured before, with
    its summary (batch 1 = the first batch size, best = fastest per clip) taken over all of them."""
    if merged is None:
        return mo
    merged["per_batch"].update(mo["per_batch"])
    merged["cpu_seconds_per_clip"].update(mo["cpu_seconds_per_clip"])
    merged["fast_max_abs_diff"] = max(merged["fast_max_abs_diff"], mo["fast_max_abs_diff"])
    ref, fast = "reference (eager fp32)", "fast"
    rows = merged["per_batch"]
    first = next(iter(rows))
    best = min(rows, key=lambda b: rows[b][fast])
    best_ref = min(rows, key=lambda b: rows[b][ref])
    merged["best_batch"] = best
    merged["summary"] = {
        "reference_b1": rows[first][ref],
        "reference_best": rows[best_ref][ref],
        "reference_best_batch": best_ref,
        "fast_b1": rows[first][fast],
        "fast_best": rows[best][fast],
        "fast_best_batch": best,
    }
    return merged


def add_rates(mo: dict, peak: float | None) -> dict:
    """Clips/s, TFLOP/s and the fraction of the bf16 peak beside ``bench/run.py``'s seconds per clip."""
    gflop = mo["gflop_per_clip"]
    mo["clips_per_s"], mo["tflops"], mo["fraction_of_bf16_peak"] = {}, {}, {}
    for b, row in mo["per_batch"].items():
        mo["clips_per_s"][b] = {k: round(1 / s, 2) for k, s in row.items()}
        mo["tflops"][b] = {k: round(gflop / s / 1000, 3) for k, s in row.items()}
        mo["fraction_of_bf16_peak"][b] = {
            k: (round(gflop / s / 1000 / peak, 4) if peak else None) for k, s in row.items()
        }
    s = mo["summary"]
    ref, fast = "reference (eager fp32)", "fast"
    first = next(iter(mo["per_batch"]))
    s["clips_per_s"] = {
        "reference_b1": mo["clips_per_s"][first][ref],
        "reference_best": mo["clips_per_s"][s["reference_best_batch"]][ref],
        "fast_b1": mo["clips_per_s"][first][fast],
        "fast_best": mo["clips_per_s"][s["fast_best_batch"]][fast],
    }
    s["fast_best_fraction_of_bf16_peak"] = mo["fraction_of_bf16_peak"][s["fast_best_batch"]][fast]
    s["speedup_best"] = round(s["reference_best"] / s["fast_best"], 2)
    return mo


def matmul_tflops(device, n: int = 8192, reps: int = 10) -> float:
    """What a plain bf16 matrix product reaches on this GPU: the practical ceiling beside the data sheet."""
    import torch

    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize(device)
    return round(2 * n**3 * reps / (time.perf_counter() - t0) / 1e12, 1)


# ---- phase 4 ------------------------------------------------------------------------------------------


def phase_predict(cfg: dict, emit: Callable[[dict], None]) -> dict:
    bench = load_bench_run()
    target = Path(cfg["details"]) / "predict.mp4"
    args = [
        *cli(),
        "predict",
        cfg["photo"],
        "-o",
        str(target),
        "-q",
        "--overwrite",
        "--device",
        cfg["device"],
    ]
    result: dict = {
        "command": " ".join(["skyforecast", *args[3:]]),
        "weights": f"bundled (ngf={bundled_ngf()})",
        "runs": [],
    }
    for _ in range(cfg["predict_runs"]):
        wall, rss, _ = bench.run_process(args)
        if not target.is_file() or target.stat().st_size == 0:
            raise PhaseFailed(f"{target} was not written", result)
        result["runs"].append({"wall_s": round(wall, 2), "peak_rss_mb": round(rss)})
        emit(result)
    result["first_run_s"] = result["runs"][0]["wall_s"]
    result["later_runs_s"] = [r["wall_s"] for r in result["runs"][1:]]
    result["output_bytes"] = target.stat().st_size
    emit(result)
    from gpu_render import render_share

    result["render_share"] = render_share(cfg["device"], cfg["smoke"])  # the CPU work beside the model
    return result
