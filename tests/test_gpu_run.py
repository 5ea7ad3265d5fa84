"""The one prepared GPU run (bench/gpu_run.sh): its pieces (widths from the size budget, the bf16 peak table,
snapshot choice, the split model and join.sh, the $OUT rules) and, marked slow, the whole script with
``--smoke``: every phase on the CPU with tiny sizes, so that the single real run cannot fail on a typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from gpu_common import run_logged  # noqa: E402
from gpu_phases import merge_batches, peak_bf16_tflops  # noqa: E402
from gpu_run import check_out  # noqa: E402
from gpu_train import (  # noqa: E402
    MODEL_DIR,
    TrainRun,
    choose_best,
    fp16_export_bytes,
    pick_widths,
    score_row,
    steady_rate,
    write_parts,
)

from skyforecast.model.networks import MDGAN  # noqa: E402
from skyforecast.model.weights import load_model  # noqa: E402


def test_bf16_peak_by_device_name():
    assert peak_bf16_tflops("NVIDIA H200") == 989.4
    assert peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0  # the longer key wins
    assert peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_bf16_tflops("Tesla T4") is None
    assert peak_bf16_tflops(None) is None


def test_fp16_size_estimate_covers_the_saved_file(tmp_path):
    model = MDGAN(ngf=4, refine_ngf=8)
    model.save_half(tmp_path)
    actual = (tmp_path / "model.safetensors").stat().st_size
    assert actual <= fp16_export_bytes(4, 8) <= actual + 20_000


def test_widest_width_inside_the_40_mb_budget():
    w = pick_widths(40_000_000)
    assert (w["ngf"], w["refine_ngf"]) == (16, 16)  # 39.1 MB; ngf=20 would be 61 MB
    assert w["fp16_bytes"] <= 40_000_000 < w["next_wider_bytes"]
    small = pick_widths(10_000_000)  # the bundled ngf=8 model is 9.8 MB
    assert small["ngf"] == 8 and small["fp16_bytes"] <= 10_000_000
    with pytest.raises(ValueError, match="no width fits"):
        pick_widths(1_000_000)


def _snap(stage: int, psnr: float, ratio: float) -> dict:
    return {"stage": stage, "scores": {"stage2": {"psnr": psnr, "motion_ratio": ratio}}}


def test_best_snapshot_is_the_sharpest_one_that_moves():
    snaps = {
        "s1-step000100": _snap(1, 30.0, 1.0),  # Stage I exports are not candidates
        "s2-step000200": _snap(2, 23.0, 0.1),  # sharp, but a still image
        "s2-step000300": _snap(2, 20.0, 0.9),
        "s2-step000400": _snap(2, 21.0, 1.2),
        "s2-step000500": {"stage": 2},  # not scored (yet)
    }
    best = choose_best(snaps)
    assert best["tag"] == "s2-step000400" and "in [0.5, 1.5]" in best["criterion"]
    still = choose_best({"a": _snap(2, 22.0, 0.1), "b": _snap(2, 21.0, 0.2)})
    assert still["tag"] == "a" and "no snapshot" in still["criterion"]
    assert choose_best({"s1": _snap(1, 30.0, 1.0)}) is None


def test_score_row_keeps_every_scalar_a_newer_evaluate_adds():
    report = {"systems": {"stage2": {"psnr": 20.0, "leak": 0.1, "steady": 3, "per_clip": [1], "label": "x"}}}
    assert score_row(report) == {"stage2": {"psnr": 20.0, "leak": 0.1, "steady": 3}}


def test_model_parts_join_back_to_a_loadable_model(tmp_path):
    model = MDGAN(ngf=4)
    model.save_half(tmp_path / "snap")
    out = tmp_path / "out"
    out.mkdir()
    (out / "best-model.tar.part07").write_bytes(b"left over from an earlier, larger best model")
    info = write_parts(tmp_path / "snap", out, part_bytes=1_000_000)
    parts = sorted(p.name for p in out.glob("best-model.tar.part*"))
    assert parts == info["parts"] and len(parts) == 3  # 2.45 MB in 1 MB parts; the stale part is gone
    assert all((out / p).stat().st_size <= 1_000_000 for p in parts)
    dest = tmp_path / "joined"
    done = subprocess.run(["sh", str(out / "join.sh"), str(dest)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = load_model(str(dest / MODEL_DIR))
    assert loaded.ngf == 4
    assert torch.equal(loaded.base.conv1.weight, model.base.conv1.weight.half().float())
    (out / parts[1]).write_bytes(b"x" + (out / parts[1]).read_bytes()[1:])  # a damaged transfer
    bad = subprocess.run(["sh", str(out / "join.sh"), str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode != 0 and not (tmp_path / "bad" / MODEL_DIR).exists()


def test_out_rules_of_the_device(tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.json").write_text("{}")
    assert check_out(tmp_path)["ok"]
    (tmp_path / "bad name.json").write_text("{}")
    for i in range(3, 8):
        (tmp_path / f"f{i}.json").write_text("{}")
    problems = check_out(tmp_path)["problems"]
    assert any("9 files" in p for p in problems) and any("bad name.json" in p for p in problems)


def test_steady_rate_leaves_out_the_warm_up_window(tmp_path):
    lines = [{"global_step": 10, "samples_per_s": 1.0}, {"global_step": 20, "samples_per_s": 8.0}]
    lines += [{"global_step": 30, "samples_per_s": 10.0}, {"global_step": 40, "samples_per_s": 9.0}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    assert steady_rate(tmp_path / "m.jsonl", 0) == 9.0
    assert steady_rate(tmp_path / "m.jsonl", 30) == 9.0  # one window: it is all there is
    assert steady_rate(tmp_path / "missing.jsonl", 0) is None


def test_a_phase_past_its_limit_is_ended_with_everything_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    rc, wall = run_logged(["bash", "-c", script], tmp_path / "log", timeout=2, new_session=True)
    assert rc is None and wall < 20
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_batch_sizes_measured_one_by_one_give_one_summary():
    def one(b, ref, fast):
        row = {"reference (eager fp32)": ref, "fast": fast}
        return {"per_batch": {b: row}, "cpu_seconds_per_clip": {b: row}, "fast_max_abs_diff": 1e-4 * b}

    merged = None
    for b, ref, fast in ((1, 0.9, 0.5), (8, 0.4, 0.1), (32, 0.3, 0.2)):
        merged = merge_batches(merged, one(b, ref, fast))
    assert merged["summary"] == {
        "reference_b1": 0.9, "reference_best": 0.3, "reference_best_batch": 32,
        "fast_b1": 0.5, "fast_best": 0.1, "fast_best_batch": 8,
    }  # fmt: skip
    assert merged["fast_max_abs_diff"] == pytest.approx(32e-4)


def test_non_finite_loss_under_bf16_continues_in_fp32(tmp_path):
    cfg = {
        "train_seconds": 60,
        "work": str(tmp_path),
        "details": str(tmp_path / "details"),
        "out": str(tmp_path),
    }
    run = TrainRun(cfg, emit=lambda _: None)
    run.base_args = ["train", "DATA", "--precision", "bf16", "--ngf", "16"]
    run.details.mkdir()
    (run.details / "train.log").write_text("error: the data folder is empty\n")
    assert not run.precision_fallback(1)  # any other failure ends the training
    run.run_dir.mkdir()
    (run.run_dir / "metrics.jsonl").write_text("{}\n")  # a first session that saved no checkpoint
    (run.details / "train.log").write_text("error: loss is not finite at Stage 1 step 7 (loss_g=nan)\n")
    assert run.precision_fallback(1)
    assert run.base_args[3] == "fp32" and "bf16 -> fp32" in run.result["precision_fallback"]
    assert not run.run_dir.exists()  # started afresh, since there was nothing to resume
    assert not run.precision_fallback(1)  # once only: fp32 has nothing to fall back to


@pytest.mark.slow
def test_render_share_splits_one_photo_into_its_parts():
    from gpu_render import render_share

    result = render_share("cpu", smoke=True, batch=1)
    seconds = result["seconds_per_photo"]
    assert result["size"] == "320x180" and result["device"] == "cpu"
    assert all(v > 0 for v in seconds.values())
    assert set(seconds) == {"model", "render_cpu", "x264_cpu"}
    assert result["share"]["model"] == pytest.approx(seconds["model"] / sum(seconds.values()), abs=1e-3)
    warp = result["warp"]
    assert warp["frames"] == 4 and warp["max_abs_diff"] <= 1 and warp["grid_sample_device"] == "cpu"


# ---- the whole script, tiny, on the CPU ------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("gpu-run")
    env = dict(os.environ, OUT=str(base / "out"), PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_run.sh"), "--smoke", "--work", str(base / "work")],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = json.loads((base / "out" / "summary.json").read_text())
    return base, summary, done


@pytest.mark.slow
def test_smoke_run_every_phase(smoke):
    base, summary, done = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    phases = summary["phases"]
    assert list(phases) == ["info", "cuda_tests", "bench", "predict", "train"]
    assert all(p["status"] == "ok" for n, p in phases.items() if n != "cuda_tests"), phases
    if not torch.cuda.is_available():
        assert phases["cuda_tests"]["status"] == "skipped"
    info = phases["info"]["result"]
    assert info["torch"]["version"] == torch.__version__ and info["skyforecast"]["version"]
    widths = phases["bench"]["result"]["widths"]
    assert [w["ngf"] for w in widths] == [4, 8]  # tiny, and the bundled model's width
    for w in widths:
        assert set(w["per_batch"]) == {"1", "2"}
        rates = w["summary"]["clips_per_s"]
        assert all(v > 0 for v in rates.values())
        assert w["summary"]["fast_best_fraction_of_bf16_peak"] is None  # a CPU has no entry in the table
    predict = phases["predict"]["result"]
    assert predict["runs"][0]["wall_s"] > 0 and predict["output_bytes"] > 1000
    share = predict["render_share"]
    assert share["size"] == "320x180" and set(share["share"]) == {"model", "render_cpu", "x264_cpu"}
    assert abs(sum(share["share"].values()) - 1) < 0.01 and all(
        v > 0 for v in share["seconds_per_photo"].values()
    )
    assert share["warp"]["max_abs_diff"] <= 1  # grid_sample and remap sample alike


@pytest.mark.slow
def test_a_run_stopped_from_outside_leaves_its_summary_and_no_process(tmp_path):
    # stopped 20 s in: the driver is up by then even on a loaded machine, and the run cannot be done yet:
    # its training waits for 2000 synthetic clips made by one worker (about 90 s here; with the smoke
    # run's 4 clips, info + bench + train ended within 18 s on an idle machine, and 120 clips in 27 s)
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, GPU_RUN_HARD_LIMIT="20")
    args = [
        "--smoke",
        "--phases",
        "info,bench,train",
        "--synth-clips",
        "2000",
        "--work",
        str(tmp_path / "work"),
    ]
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_run.sh"), *args], env=env, capture_output=True)
    assert done.returncode == 124  # `timeout` stopped the driver, which ended its phase first
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped"].startswith("signal 15")
    time.sleep(0.5)
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path / "work").encode() in cmdline.read_bytes():
                left.append(cmdline.parent.name)
        except OSError:
            pass
    assert not left  # the phase running then (in its own session) was ended with the driver


@pytest.mark.slow
def test_a_failing_phase_is_recorded_and_the_run_goes_on(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    args = [
        "--smoke",
        "--phases",
        "predict,info",
        "--photo",
        str(tmp_path / "missing.jpg"),
        "--work",
        str(tmp_path),
    ]
    done = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_run.sh"), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1  # a phase failed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["phases"]) == ["info", "predict"]  # the run's order, not the option's
    assert summary["phases"]["info"]["status"] == "ok"
    predict = summary["phases"]["predict"]
    assert predict["status"] == "failed" and "missing.jpg" in predict["error"]
    assert summary["out_ok"] and (tmp_path / "out" / "details.tar.gz").is_file()


@pytest.mark.slow
def test_smoke_run_trains_scores_and_exports(smoke, tmp_path):
    base, summary, _ = smoke
    train = summary["phases"]["train"]["result"]
    assert (train["widths"]["ngf"], train["widths"]["refine_ngf"]) == (4, 4)  # what fits 2.5 MB
    assert [s["stage"] for s in train["sessions"]] == [1, 1, 2, 2]  # Stage II continues a Stage II run too
    assert all(s["exit_code"] == 0 and s["steps"] == 1 for s in train["sessions"])
    snaps = train["snapshots"]
    assert sorted(snaps) == ["s2-step000003", "s2-step000004"]  # Stage II exports only, each scored
    assert all(s["eval_exit_code"] == 0 and s["clips"] == 1 for s in snaps.values())
    assert train["evaluations_unfinished"] == []
    assert "NOT real-sky-dev" in train["recipe"]["dev_data"]  # the smoke run says what it scored on
    best = train["best"]
    assert best["tag"].startswith("s2-") and 0 < best["scores"]["stage2"]["psnr"] < 100
    assert set(best["scores"]) >= {"stage2", "transfer", "stage1", "copy"}
    assert train["bundled"]["stage2"]["psnr"] > 0
    assert set(best["compared_with_bundled"]) == {"stage2", "transfer"}
    out = base / "out"
    assert summary["out_ok"] and len(summary["out_files"]) <= 8
    assert set(summary["out_files"]) == {"summary.json", "details.tar.gz", "join.sh", "best-model.tar.part00"}
    subprocess.run(["sh", str(out / "join.sh"), str(tmp_path)], check=True, capture_output=True)
    folder = tmp_path / MODEL_DIR
    assert json.loads((folder / "config.json").read_text())["ngf"] == 4
    assert load_model(str(folder)).ngf == 4
    recorded = json.loads((folder / "training.json").read_text())
    assert recorded["snapshot"]["tag"] == best["tag"]
    with tarfile.open(out / "details.tar.gz") as tar:
        names = set(tar.getnames())
    assert {f"details/{p}.json" for p in ("info", "bench", "predict", "train")} <= names
    assert f"details/eval-{best['tag']}.json" in names and "details/eval-bundled.json" in names
