"""The evaluation report as rich tables (what ``skyforecast evaluate`` prints): kept out of the CLI so
notebooks can show the same tables, and out of the reports so building a report needs no rich."""

from __future__ import annotations

from .clip_scores import DIRECTION_AGREES, ClipScore, RealClip
from .reports import EvalReport, RealReport, SystemReport


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _direction_cell(score: ClipScore | RealClip) -> str:
    if score.direction is None:
        return "none"
    text = f"{score.direction:.0f}°"
    agrees = getattr(score, "direction_agrees", None)
    return text if agrees is None else f"{text} {'yes' if agrees else 'no'}"


def _cells(score: SystemReport | ClipScore) -> list[str]:
    """PSNR, SSIM, motion ratio, inner motion ratio, speed ratio, steadiness, leak and direction as the
    tables print them."""
    if isinstance(score, SystemReport):
        agree, of = score.direction_agrees
        direction = f"{agree}/{of}"
    else:
        direction = _direction_cell(score)
    return [
        _fmt(score.psnr, 2),
        _fmt(score.ssim, 3),
        _fmt(score.motion_ratio, 2),
        _fmt(score.inner_motion_ratio, 2),
        _fmt(score.speed_ratio, 2),
        _fmt(score.steadiness, 2),
        _fmt(score.leak, 2),
        _fmt(score.cover, 2),
        direction,
    ]


def _real_cells(score: RealReport | RealClip) -> list[str]:
    """The real clip as a row: its own motion in absolute units where a system shows ratios."""
    direction = "" if isinstance(score, RealReport) else _direction_cell(score)
    return [
        "",
        "",
        "1.00",
        "1.00",
        _fmt(score.speed, 2),
        _fmt(score.steadiness, 2),
        _fmt(score.leak, 2),
        "1.00",
        direction,
    ]


_COLUMNS = ("PSNR", "SSIM", "motion", "inner", "speed", "steady", "leak", "cover", "dir")


def _table(title: str, first: str, caption: str | None = None):
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        caption=caption,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),  # the box's one-space dividers keep the columns apart: the summary fits 80 columns
        show_edge=False,
    )
    table.add_column(first, no_wrap=True)  # system and clip names stay whole (and greppable)
    for name in _COLUMNS:
        table.add_column(name, justify="right")
    return table


def report_tables(report: EvalReport, per_clip: bool = False) -> list:
    """Rich tables for a report: one row per system and one for the real clips, then (``per_clip``) one
    table per system with a row per clip. Kept here rather than in the CLI so notebooks can show the same
    tables."""
    weights = f"weights: {report.weights}" if report.weights else "no model"
    summary = _table(
        f"{report.data}: {report.num_clips} clips, frames 1..31",
        "system",
        f"{weights}. PSNR in dB; motion: motion ratio, 1 = moves as much as the real clip, 0 = frozen; "
        "inner: the same without the first and last frame steps; speed: flow length per inner step over the "
        "real clips' (real clip row: px per step); steady: net displacement / path length of moving pixels; "
        "leak: change where the real clip is still (lower = ground holds still); cover: share of the real "
        "clip's moving pixels that move here too; dir: clips whose "
        f"direction is within {DIRECTION_AGREES:g}° of the real clip's",
    )
    summary.add_row(report.real.label, *_real_cells(report.real), style="dim")
    for rep in report.systems.values():
        summary.add_row(rep.label, *_cells(rep))
    tables = [summary]
    if per_clip:
        real = _table(
            report.real.label, "clip", "speed in px per step; direction in degrees: 0 = right, 90 = up"
        )
        for c in report.real.clips.values():
            real.add_row(c.clip, *_real_cells(c))
        tables.append(real)
        for rep in report.systems.values():
            table = _table(rep.label, "clip")
            for c in rep.clips:
                table.add_row(c.clip, *_cells(c))
            tables.append(table)
    return tables
