"""Phase 5 of the one-call GPU run: train the default-model recipe against a wall clock and bring back the
best snapshot.

Stage I, then Stage II, at the widest width whose fp16 export fits the size budget (parameter counts
from ``skyforecast.model.networks.MDGAN`` itself), through ``skyforecast train`` sessions: each session ends
with ``--stop-after N`` (checkpoint + export), the next one continues with ``--resume``. N is planned from the
step rate the previous sessions measured, so the sessions fill the time left. Each export is stored as
fp16 (what would be bundled) and scored with ``skyforecast evaluate`` in the background while training
goes on; the whole evaluate JSON is kept, so metrics that evaluate gains later come along unchanged. The
best Stage II snapshot goes to $OUT as a tar in parts under the 16 MiB per-file limit, with ``join.sh``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from gpu_common import REPO, PhaseFailed, child_env, cli, read_json, run_logged, tail, write_json

MODEL_DIR = "skyforecast-gpu-model"  # the folder join.sh rebuilds
PARTS = "best-model.tar"
PART_BYTES = 15 * 2**20  # under the 16 MiB that one returned file may hold
MOTION_RANGE = (0.5, 1.5)  # motion ratios of a sky that moves like real ones: where a snapshot may be chosen


# ---- sizes ----------------------------------------------------------------------------------------------


def fp16_export_bytes(ngf: int, refine_ngf: int | None = None) -> int:
    """Bytes of ``model.safetensors`` as ``MDGAN.save_half`` writes it: every floating tensor of the state
    dict as fp16, the rest as stored, plus a generous allowance for the JSON header. Built on the meta
    device, so no memory is spent on weights."""
    import torch

    from skyforecast.model.networks import MDGAN

    with torch.device("meta"):
        model = MDGAN(ngf=ngf, refine_ngf=refine_ngf)
    total = 8
    for name, t in model.state_dict().items():
        total += t.numel() * (2 if t.is_floating_point() else t.element_size()) + len(name) + 80
    return total


def pick_widths(budget_bytes: int, step: int = 4, widest: int = 64) -> dict:
    """The widest Base-Net (``ngf``, a multiple of ``step``) whose model fits ``budget_bytes`` as fp16, then
    the widest Refine-Net on it that still fits, at a multiple of ``ngf`` (so that it starts as a widened
    copy of Base-Net, ``--refine-init base``)."""
    fits = [n for n in range(step, widest + 1, step) if fp16_export_bytes(n) <= budget_bytes]
    if not fits:
        raise ValueError(f"no width fits {budget_bytes} bytes (ngf={step} needs {fp16_export_bytes(step)})")
    ngf = fits[-1]
    refine = ngf
    while fp16_export_bytes(ngf, refine + ngf) <= budget_bytes:
        refine += ngf
    return {
        "ngf": ngf,
        "refine_ngf": refine,
        "fp16_bytes": fp16_export_bytes(ngf, refine),
        "budget_bytes": budget_bytes,
        "next_wider_bytes": fp16_export_bytes(ngf + step),
    }


# ---- scores ---------------------------------------------------------------------------------------------


def score_row(report: dict) -> dict:
    """Every scalar number of every system in an evaluate JSON (per-clip lists left out): what evaluate
    reports today and whatever it reports tomorrow."""
    return {
        name: {k: v for k, v in sys_.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for name, sys_ in report.get("systems", {}).items()
    }


def choose_best(snapshots: dict[str, dict]) -> dict | None:
    """The Stage II snapshot with the highest Stage II PSNR among those whose Stage II motion ratio lies in
    ``MOTION_RANGE`` (pixel metrics alone reward a video that does not move); if none does, the highest PSNR
    overall, flagged. Snapshots without scores are not candidates."""
    scored = {
        tag: s
        for tag, s in snapshots.items()
        if s.get("stage") == 2 and "psnr" in s.get("scores", {}).get("stage2", {})
    }
    if not scored:
        return None

    def in_range(s: dict) -> bool:
        ratio = s["scores"]["stage2"].get("motion_ratio")
        return ratio is not None and MOTION_RANGE[0] <= ratio <= MOTION_RANGE[1]

    pool = {t: s for t, s in scored.items() if in_range(s)}
    tag = max(pool or scored, key=lambda t: (pool or scored)[t]["scores"]["stage2"]["psnr"])
    return {
        "tag": tag,
        "criterion": f"highest Stage II PSNR with Stage II motion ratio in {list(MOTION_RANGE)}"
        if pool
        else f"highest Stage II PSNR (no snapshot had its motion ratio in {list(MOTION_RANGE)})",
        "scores": scored[tag]["scores"],
    }


def compare_with(best: dict, bundled: dict | None) -> dict | None:
    """Whether the best snapshot scores above the bundled model on the raw model's output (``stage2``) and on
    the motion-transfer output (``transfer``), the same run and data; motion ratios beside them."""
    if not bundled:
        return None
    out = {}
    for system in ("stage2", "transfer"):
        a, b = best["scores"].get(system, {}), bundled.get(system, {})
        if "psnr" in a and "psnr" in b:
            out[system] = {
                "psnr_new": a["psnr"],
                "psnr_bundled": b["psnr"],
                "higher_psnr": a["psnr"] > b["psnr"],
                "motion_ratio_new": a.get("motion_ratio"),
                "motion_ratio_bundled": b.get("motion_ratio"),
            }
    return out


# ---- parts ----------------------------------------------------------------------------------------------


def write_parts(folder: Path, out: Path, part_bytes: int = PART_BYTES) -> dict:
    """``folder`` as ``MODEL_DIR/`` in a tar, cut into ``PARTS.partNN`` files of at most ``part_bytes``, and
    ``join.sh`` that checks and unpacks them. Earlier parts are replaced (a later best snapshot)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(folder.iterdir()):
            if f.is_file():
                tar.add(f, arcname=f"{MODEL_DIR}/{f.name}")
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    names = []
    for i in range(0, max(len(data), 1), part_bytes):
        name = f"{PARTS}.part{i // part_bytes:02d}"
        tmp = out / (name + ".tmp")
        tmp.write_bytes(data[i : i + part_bytes])
        tmp.replace(out / name)
        names.append(name)
    for old in out.glob(f"{PARTS}.part*"):
        if old.name not in names:
            old.unlink()
    join = out / "join.sh"
    join.write_text(
        "#!/bin/sh\n"
        f"# Rebuilds {MODEL_DIR}/ (config.json + model.safetensors) from the {len(names)} part(s)\n"
        "# beside this script, checked against its SHA-256.\n"
        "# Usage: sh join.sh [DEST_FOLDER] (default: the current folder).\n"
        "set -e\n"
        'here=$(cd "$(dirname "$0")" && pwd)\n'
        "dest=${1:-.}\n"
        'mkdir -p "$dest"\n'
        f'cat "$here"/{PARTS}.part* > "$dest/{PARTS}"\n'
        f'echo "{digest}  $dest/{PARTS}" | sha256sum -c - >/dev/null\n'
        f'tar -xf "$dest/{PARTS}" -C "$dest"\n'
        f'rm "$dest/{PARTS}"\n'
        f'echo "$dest/{MODEL_DIR}"\n',
        encoding="utf-8",
    )
    return {
        "parts": names,
        "tar_bytes": len(data),
        "sha256": digest,
        "join": f"sh join.sh DEST -> DEST/{MODEL_DIR}",
    }


# ---- the training run -----------------------------------------------------------------------------------


class TrainRun:
    """One time-boxed run: sessions of ``skyforecast train``, snapshots, background evaluations."""

    def __init__(self, cfg: dict, emit: Callable[[dict], None]):
        self.cfg, self.emit = cfg, emit
        self.t0 = time.monotonic()
        self.deadline = self.t0 + cfg["train_seconds"]
        self.work = Path(cfg["work"])
        self.details = Path(cfg["details"])
        self.out = Path(cfg["out"])
        self.run_dir = self.work / "run"
        self.snap_dir = self.work / "snapshots"
        self.pending: dict[str, tuple[subprocess.Popen, float, Path]] = {}
        self.eval_seconds: list[float] = []
        self.failure: str | None = None
        self.result: dict = {"sessions": [], "snapshots": {}, "bundled": None, "best": None, "exported": None}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # -- evaluation in the background
    def start_eval(self, tag: str, weights: Path, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        args = [
            *cli(),
            "evaluate",
            self.cfg["dev_data"],
            "-w",
            str(weights),
            "--json",
            str(folder / "eval.json"),
            "-q",
            "--batch-size",
            str(self.cfg["eval_batch"]),
            "--device",
            self.cfg["device"],
        ]
        if self.cfg.get("eval_limit"):
            args += ["--limit", str(self.cfg["eval_limit"])]
        log = open(folder / "eval.log", "wb")  # noqa: SIM115 - closed by the child's exit
        # same process group as this phase: ending the phase at its time limit ends the evaluations too
        proc = subprocess.Popen(
            args, cwd=REPO, env=child_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.pending[tag] = (proc, time.monotonic(), folder)

    def collect(self, wait_until: float | None = None) -> None:
        """Take in finished evaluations; with ``wait_until``, wait for the others until then."""
        for tag, (proc, started, folder) in list(self.pending.items()):
            if wait_until is not None:
                try:
                    proc.wait(timeout=max(0.0, wait_until - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                continue
            del self.pending[tag]
            seconds = round(time.monotonic() - started, 1)
            self.eval_seconds.append(seconds)
            report = read_json(folder / "eval.json")
            entry = {"eval_seconds": seconds, "eval_exit_code": proc.returncode}
            if report is None:
                entry["eval_error"] = (folder / "eval.log").read_text(errors="replace")[-1500:]
            else:
                entry["scores"] = score_row(report)
                entry["clips"] = report.get("clips")
                write_json(self.details / f"eval-{tag}.json", report)  # the whole JSON
            if tag == "bundled":
                self.result["bundled"] = entry.get("scores")
                self.result["bundled_eval"] = entry
            else:
                self.result["snapshots"][tag].update(entry)
                self.update_best()
        self.emit(self.result)

    def update_best(self) -> None:
        best = choose_best(self.result["snapshots"])
        if best is None or (self.result["best"] or {}).get("tag") == best["tag"]:
            return
        best["compared_with_bundled"] = compare_with(best, self.result["bundled"])
        folder = self.snap_dir / best["tag"]
        write_json(folder / "training.json", {"snapshot": best, "recipe": self.result.get("recipe")})
        self.result["exported"] = write_parts(folder, self.out)
        self.result["best"] = best

    # -- training sessions
    def session(self, stage: int, steps: int, extra: list[str]) -> bool:
        """One ``skyforecast train`` session of ``steps`` steps, then its snapshot. False when it failed or
        ran out of time (recorded; training stops there, the snapshots so far are still scored)."""
        resume = any((self.run_dir / "checkpoints").glob("step_*.pt"))
        args = [*self.base_args, "--stage", str(stage), "--stop-after", str(steps), *extra]
        if resume:
            args.append("--resume")
        before = last_global_step(self.run_dir)
        rc, wall = run_logged(args, self.details / "train.log", timeout=max(5.0, self.left()))
        after = last_global_step(self.run_dir)
        rate = steady_rate(self.run_dir / "metrics.jsonl", before)
        batch = self.effective_batch()
        info = {
            "stage": stage,
            "asked_steps": steps,
            "steps": after - before,
            "global_step": after,
            "wall_s": round(wall, 1),
            "exit_code": rc,
            "clips_per_s": rate,
            "steps_per_s": round(rate / batch, 3) if rate else None,
            "command": " ".join(["skyforecast", *map(str, args[3:])]),
        }
        if rate and info["steps"]:
            info["overhead_s"] = round(max(0.0, wall - info["steps"] * batch / rate), 1)
        self.result["sessions"].append(info)
        self.emit(self.result)
        if rc is None:
            self.result["stopped"] = f"a Stage {stage} session ran into the time limit and was ended"
            return False
        if rc != 0 and self.precision_fallback(rc):
            return self.session(stage, steps, extra)
        if rc != 0:
            self.failure = f"skyforecast train (Stage {stage}) exited {rc}; see train.log in details.tar.gz"
            return False
        if stage == 2:  # Base-Net is frozen in Stage II: every Stage II score has Stage I's beside it
            self.snapshot(stage, after)
        return True

    def precision_fallback(self, rc: int) -> bool:
        """A loss that turned NaN/Inf under bf16/fp16 autocast: continue once more in fp32, from the last
        checkpoint (the failed session saved nothing), rather than end the only run. True when set up."""
        i = self.base_args.index("--precision") + 1
        if self.base_args[i] == "fp32" or "not finite" not in tail(self.details / "train.log", 3000):
            return False
        self.result["precision_fallback"] = f"{self.base_args[i]} -> fp32 after a non-finite loss (exit {rc})"
        self.base_args[i] = "fp32"
        if not any((self.run_dir / "checkpoints").glob("step_*.pt")):
            shutil.rmtree(self.run_dir, ignore_errors=True)  # nothing to resume: start the run afresh
        return True

    def effective_batch(self) -> int:
        run_config = read_json(self.run_dir / "config.json", {})
        return int(run_config.get("effective", {}).get("global_batch_size") or self.cfg["train_batch"])

    def snapshot(self, stage: int, global_step: int) -> None:
        """The session's export, stored as fp16 (what would be bundled), then scored in the background."""
        from skyforecast.model.weights import load_model

        tag = f"s{stage}-step{global_step:06d}"
        folder = self.snap_dir / tag
        load_model(str(self.run_dir / "model")).save_half(folder)
        self.result["snapshots"][tag] = {"stage": stage, "global_step": global_step}
        self.start_eval(tag, folder, self.work / "evals" / tag)
        self.collect()

    def plan(self, seconds: float, stage: int) -> int:
        """Steps that fit in ``seconds`` at the measured rate, minus the measured start-up of a session,
        clamped to the run's [min, max] session steps; 0 when not even the minimum fits. The smoke run gets
        its minimum regardless: on a busy CPU its rates say nothing, and every session path must run."""
        done = [s for s in self.result["sessions"] if s.get("steps_per_s")]
        same = [s for s in done if s["stage"] == stage]
        lo, hi = self.cfg["session_min_steps"], self.cfg["session_max_steps"]
        if not done:
            return lo
        last = (same or done)[-1]
        # a Stage II step also runs the frozen Base-Net and the ranking loss: until one is measured, assume
        # it is 1.5x as slow as a Stage I step
        rate = last["steps_per_s"] / (1 if same else 1.5)
        steps = int((seconds - last.get("overhead_s", 0.0)) * rate)
        if steps < lo:
            return lo if self.cfg.get("smoke") else 0
        return min(hi, steps)

    def run(self) -> dict:
        cfg = self.cfg
        if cfg["precision"] == "auto":
            import torch

            cfg["precision"] = "bf16" if cfg["device"] != "cpu" and torch.cuda.is_available() else "fp32"
        widths = pick_widths(int(cfg["size_budget_mb"] * 1e6))
        self.result["widths"] = widths
        ngf, refine = widths["ngf"], widths["refine_ngf"]
        ndf = cfg.get("ndf") or ngf
        self.base_args = [
            *cli(),
            "train",
            cfg["train_data"],
            "--out",
            str(self.run_dir),
            "--ngf",
            str(ngf),
            "--ndf",
            str(ndf),
            "--batch-size",
            str(cfg["train_batch"]),
            "--precision",
            cfg["precision"],
            "--device",
            cfg["device"],
            "--lambda-flicker",
            str(cfg["lambda_flicker"]),
            "--num-workers",
            str(cfg["num_workers"]),
            "--steps",
            "10000000",
            "--log-every",
            str(cfg["log_every"]),
            "--preview-every",
            "10000000",
            "--checkpoint-every",
            "10000000",
            "--keep-checkpoints",
            "2",
            "--seed",
            "0",
            "-q",
        ]
        stage2_extra = ["--lambda-rank", str(cfg["lambda_rank"])]
        if refine != ngf:
            stage2_extra += ["--refine-ngf", str(refine)]
        self.result["recipe"] = {
            "data": cfg["train_data_note"],
            "dev_data": cfg["dev_data_note"],
            "ngf": ngf,
            "refine_ngf": refine,
            "ndf": ndf,
            "batch_size": cfg["train_batch"],
            "precision": cfg["precision"],
            "lambda_flicker": cfg["lambda_flicker"],
            "lambda_rank_stage2": cfg["lambda_rank"],
            "refine_init": "base (Stage II starts as a copy of Base-Net)",
            "lr": "2e-4 (train's default)",
        }
        self.start_eval("bundled", REPO / "weights", self.work / "evals" / "bundled")
        self.emit(self.result)

        reserve = cfg["final_reserve_s"]
        stage1_end = self.t0 + cfg["stage1_fraction"] * (self.left() - reserve)
        going = self.session(1, cfg["probe_steps"], [])
        for _ in range(cfg["stage1_sessions"] - 1):
            steps = self.plan(stage1_end - time.monotonic(), 1) if going else 0
            if not steps:
                break
            going = self.session(1, steps, [])
        sessions = cfg["stage2_sessions"]
        for i in range(sessions):
            seconds = (self.left() - reserve - self.eval_estimate()) / (sessions - i)
            steps = self.plan(seconds, 2) if going else 0
            if not steps:
                break
            going = self.session(2, steps, stage2_extra)  # a resumed session takes its losses from here
        self.collect(wait_until=self.deadline - 2)
        self.result["evaluations_unfinished"] = sorted(self.pending)
        for proc, _, _ in self.pending.values():
            proc.kill()
        best = self.result["best"]
        if best is not None:  # the bundled model's scores may have come in after the choice
            best["compared_with_bundled"] = compare_with(best, self.result["bundled"])
            folder = self.snap_dir / best["tag"]
            write_json(folder / "training.json", {"snapshot": best, "recipe": self.result["recipe"]})
            self.result["exported"] = write_parts(folder, self.out)
        if (self.run_dir / "metrics.jsonl").is_file():
            shutil.copy2(self.run_dir / "metrics.jsonl", self.details / "metrics.jsonl")
        self.result["train_seconds"] = round(time.monotonic() - self.t0, 1)
        if self.failure:
            raise PhaseFailed(self.failure, self.result)
        if best is None:
            raise PhaseFailed("no Stage II snapshot was scored", self.result)
        return self.result

    def eval_estimate(self) -> float:
        """Seconds the last evaluation will need after training stops (measured ones, else a guess)."""
        return max(self.eval_seconds) if self.eval_seconds else self.cfg["eval_guess_s"]


def last_global_step(run_dir: Path) -> int:
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    return int(ckpts[-1].stem.split("_")[1]) if ckpts else 0


def steady_rate(metrics: Path, after_step: int) -> float | None:
    """Clips/s of a session from ``metrics.jsonl``: the median over its logged windows, leaving out the
    first one (data loader start, cuDNN autotuning) when there are others."""
    try:
        lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return None
    rates = [
        r["samples_per_s"] for r in lines if r.get("global_step", 0) > after_step and r.get("samples_per_s")
    ]
    if len(rates) > 1:
        rates = rates[1:]
    if not rates:
        return None
    rates.sort()
    return round(rates[len(rates) // 2], 3)


def phase_train(cfg: dict, emit: Callable[[dict], None]) -> dict:
    return TrainRun(cfg, emit).run()
