"""Reading a training run's plain record back, for tests."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run: Path) -> list[dict]:
    """The records of ``RUN/metrics.jsonl``, one dict per line, in order."""
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
