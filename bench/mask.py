"""How well ``--mask auto`` finds what may move, on ``skyforecast synth`` scenes whose still foreground is
known: per scene, the share of the true sky that the mask lets move (recall; a round sun's disc and glare
stay still on purpose and count against it), and the share of the true foreground (mountains, buildings,
trees, islands) that it lets move, which must be none.

The scenes are ours, drawn from seeds, so they can be used to choose rules without fitting them to the
real clips the scores are checked on. ``--baseline REV`` measures the package as committed at REV on the
same scenes, in a second process, and prints both.

    python bench/mask.py                         # 40 scenes at 960x540
    python bench/mask.py --baseline HEAD~3 --json mask.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scores(first: int, count: int, size: tuple[int, int]) -> list[dict[str, float | int | str]]:
    """One row per scene: seed, family, night, the true sky's share of the frame, recall, ground moving."""
    from skyforecast.render import skymask
    from skyforecast.synth import make_scene, render_clip_with_info

    rows: list[dict[str, float | int | str]] = []
    for seed in range(first, first + count):
        scene = make_scene(seed)
        clip = render_clip_with_info(seed, 1, size, scene=scene)
        photo, still = clip.frames[0], clip.foreground_mask
        moves = skymask.sky_mask(photo) > 0.5
        sky = ~still
        rows.append(
            {
                "seed": seed,
                "family": scene.family,
                "night": bool(skymask.is_night(photo)),
                "sky": float(sky.mean()),
                "recall": float(moves[sky].mean()) if sky.any() else 1.0,
                "ground_moving": float(moves[still].mean()) if still.any() else 0.0,
            }
        )
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    n = max(1, len(rows))
    return {
        "recall_mean": sum(r["recall"] for r in rows) / n,
        "ground_moving_mean": sum(r["ground_moving"] for r in rows) / n,
        "scenes_with_ground_moving": sum(r["ground_moving"] > 0.01 for r in rows),
    }


def baseline_rows(ref: str, args) -> list[dict]:
    """``scores`` of the package as committed at ``ref``, in a process that imports it instead of ours."""
    from steady import baseline_tree  # bench/steady.py: the package at ``ref``, unpacked

    with tempfile.TemporaryDirectory() as tmp:
        tree = baseline_tree(ref, Path(tmp))
        out = tree / "rows.json"
        cmd = [sys.executable, __file__, "--first", str(args.first), "--scenes", str(args.scenes)]
        cmd += ["--size", args.size, "--rows-only", str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(tree)})
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=int, default=100, help="first scene seed (default 100)")
    parser.add_argument("--scenes", type=int, default=40, help="scenes (default 40)")
    parser.add_argument("--size", default="960x540", help="WxH (default 960x540)")
    parser.add_argument("--baseline", help="a git revision measured beside ours")
    parser.add_argument("--json", help="write the rows and means here")
    parser.add_argument("--rows-only", help=argparse.SUPPRESS)  # the baseline's second process
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.rows_only:
        Path(args.rows_only).write_text(json.dumps(scores(args.first, args.scenes, size)))
        return
    sys.path.insert(0, str(ROOT))
    rows = scores(args.first, args.scenes, size)
    base = baseline_rows(args.baseline, args) if args.baseline else None
    print(f"{'seed':>5} {'family':<12} {'sky':>5} {'recall':>7} {'ground moving':>14}")
    for i, r in enumerate(rows):
        line = (
            f"{r['seed']:>5} {r['family']:<12} {r['sky']:5.2f} {r['recall']:7.2f} {r['ground_moving']:14.3f}"
        )
        if base:
            line += f"   baseline {base[i]['recall']:5.2f} {base[i]['ground_moving']:7.3f}"
        print(line)
    result = {"size": args.size, "rows": rows, **summary(rows)}
    print("ours:", {k: round(v, 4) for k, v in summary(rows).items()})
    if base:
        result["baseline"] = args.baseline
        result["baseline_rows"] = base
        result.update({f"baseline_{k}": v for k, v in summary(base).items()})
        print(f"baseline {args.baseline}:", {k: round(v, 4) for k, v in summary(base).items()})
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
