"""A real training process killed with SIGKILL mid-run loses at most the steps since its last checkpoint,
never leaves a half-written checkpoint, and `--resume` continues from there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from skyforecast.synth import write_dataset
from skyforecast.training.trainer import list_checkpoints


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sigkill_mid_run_then_resume_continues_from_the_last_checkpoint(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, clips=2, seed=3, size=(128, 128), clips_per_video=1)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "skyforecast", "train", str(data), "--out", str(run), "--stage", "1",
           "--ngf", "4", "--ndf", "4", "--batch-size", "1", "--num-workers", "0", "--log-every", "1",
           "--preview-every", "1000", "--checkpoint-every", "1"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [*cmd, "--steps", "1000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while len(list_checkpoints(run)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(list_checkpoints(run)) >= 2, (
            proc.stdout.read().decode() if proc.poll() is not None else "slow"
        )
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: as a power cut or the OOM killer
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    # every checkpoint that carries a final name is complete (written to a temp file, then renamed)
    survivors = list_checkpoints(run)
    for path in survivors:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        assert ck["global_step"] == int(path.stem.split("_")[1])
    last = max(int(p.stem.split("_")[1]) for p in survivors)
    logged = max(m["step"] for m in _metrics(run))
    assert logged - last <= 1  # at most the step in flight since the last checkpoint is lost

    target = last + 2
    done = subprocess.run([*cmd, "--steps", str(target), "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    steps = [m["step"] for m in _metrics(run)]
    assert steps == list(range(1, target + 1))  # continued from `last`, redone steps logged once
    final = torch.load(list_checkpoints(run)[-1], map_location="cpu", weights_only=True)
    assert final["global_step"] == target
    assert (run / "model" / "model.safetensors").is_file()
