"""Training speed and memory: `python bench/train.py [--ngf 8 32] [--steps 3] [--json out.json]`.

For Stage I (training from scratch) and Stage II (fine-tuning a model's Refine-Net), at each width, in one run
so the numbers share the machine's conditions, two settings one after the other:

* ``fp32 eager``: the settings training had before bf16 became the default: ``--precision fp32``, ``--ndf
  32`` (the paper's discriminators whatever the generators' width), generators in BatchNorm batch mode;
* ``defaults``: what ``skyforecast train``/``finetune`` run with today (``--precision auto``: bf16 autocast on
  CPUs with AVX512-BF16 or AMX; discriminators as wide as the generators; a fine-tune's generators with their
  frozen BatchNorm statistics).

Each setting runs in its own process (so its peak resident memory is its own): batch 4, one untimed step,
then ``--steps`` timed steps through the real data path (DataLoader, 0 workers); clips/s is 4 over the median
step time. The discriminator warm-up is off in both (its steps train no generator and would flatter the
rate). Clips: ../shared/data/real-sky-dev beside the checkout when present, else synthetic ones. Random
weights stand in for trained ones: speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sky-dev"
SETTINGS = {
    "fp32 eager": {"precision": "fp32", "ndf": 32, "bn": "batch"},
    "defaults": {},
}


def measure(stage: str, ngf: int, setting: str, steps: int, data: str) -> dict:
    """One setting in this process: build the run, time ``steps`` steps after one untimed step."""
    import torch

    from skyforecast.model.networks import MDGAN
    from skyforecast.training.trainer import TrainConfig, Trainer

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    weights = None
    if stage == "2":
        torch.manual_seed(0)
        MDGAN(ngf=ngf).save_pretrained(tmp / "weights")
        weights = str(tmp / "weights")
    cfg = TrainConfig(
        data=data,
        out=str(tmp / "run"),
        stage=stage,
        ngf=ngf,
        batch_size=4,
        weights=weights,
        num_workers=0,
        progress=False,
        d_warmup=0,
        **SETTINGS[setting],
    )
    trainer = Trainer(cfg).setup()
    step_fn = trainer._enter_stage()
    trainer._loader_obj = trainer._loader()
    times = []
    batches = trainer._epoch_batches(10**9)
    for i in range(steps + 1):
        t0 = time.perf_counter()
        try:
            real = next(batches)
        except StopIteration:
            batches = trainer._epoch_batches(10**9)
            real = next(batches)
        trainer._step(step_fn, real)
        if i:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "stage": stage,
        "ngf": ngf,
        "setting": setting,
        "precision": trainer.precision,
        "ndf": cfg.ndf,
        "bn": cfg.bn_mode,
        "step_s": [round(t, 2) for t in times],
        "median_step_s": round(median, 2),
        "clips_per_s": round(4 / median, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ngf", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--stages", nargs="+", default=["1", "2"])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per setting (after one untimed)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--one", nargs=3, metavar=("STAGE", "NGF", "SETTING"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        stage, ngf, setting = args.one
        print(json.dumps(measure(stage, int(ngf), setting, args.steps, args.data)))
        return
    data, tmp = _clips()
    results = []
    for stage in args.stages:
        for ngf in args.ngf:
            row = {}
            for setting in SETTINGS:
                cmd = [sys.executable, __file__, "--one", stage, str(ngf), setting]
                cmd += ["--steps", str(args.steps), "--data", data]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                row[setting] = json.loads(out.strip().splitlines()[-1])
                results.append(row[setting])
            base, new = row["fp32 eager"], row["defaults"]
            name = "I" if stage == "1" else "II"
            print(
                f"Stage {name} ngf {ngf}: fp32 eager {base['clips_per_s']:.2f} clips/s, "
                f"{base['peak_rss_mb']} MB | defaults ({new['precision']}, ndf {new['ndf']}) "
                f"{new['clips_per_s']:.2f} clips/s, {new['peak_rss_mb']} MB | "
                f"{new['clips_per_s'] / base['clips_per_s']:.2f}x",
                flush=True,
            )
    info = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_end": os.getloadavg(),
        "data": data if tmp is None else "synthetic",
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n")


def _clips() -> tuple[str, tempfile.TemporaryDirectory | None]:
    if REAL.is_dir():
        return str(REAL), None
    from skyforecast.synth import write_dataset

    tmp = tempfile.TemporaryDirectory()
    write_dataset(Path(tmp.name) / "clips", clips=8, seed=3, size=(128, 128), clips_per_video=1)
    return str(Path(tmp.name) / "clips"), tmp


if __name__ == "__main__":
    main()
