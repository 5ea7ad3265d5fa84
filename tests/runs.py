"""Reading a training run's plain record back, for tests."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run: Path) -> list[dict]:
    """The records of ``RUN/metrics.jsonl``, one dict per line, in order."""
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def make_clips(folder: Path, count: int) -> Path:
    """``count`` synthetic 32-frame clips at 128x128 (one per video) in ``folder/data``, for tiny runs."""
    from skyforecast.synth import write_dataset

    data = Path(folder) / "data"
    write_dataset(data, clips=count, seed=3, size=(128, 128), clips_per_video=1)
    return data
