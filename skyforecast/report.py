"""What a ``predict`` batch did, in two forms: the summary lines a person reads at the end (Rich markup), and
the JSON document ``predict --json`` writes for scripts and pipelines (one entry per input, in input order).

No printing here: the command line prints the lines and writes the document.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from .batch import BatchResult, Job

SHOW_AT_MOST = 5  # names listed in a summary line before "and N more"
JSON_VERSION = 1


def _first_few(paths: Sequence) -> str:
    names = ", ".join(escape(str(p)) for p in paths[:SHOW_AT_MOST])
    return names + (f" and {len(paths) - SHOW_AT_MOST} more" if len(paths) > SHOW_AT_MOST else "")


def summary_lines(result: BatchResult) -> list[str]:
    """The summary: how many photos were done, skipped and failed, the outputs kept, the renamed photos, and
    every failure again (a long batch scrolls its error lines away)."""
    parts = [f"[green]{len(result.done)} done[/]", f"{len(result.skipped)} skipped (outputs exist)"]
    parts.append(f"[red]{len(result.failed)} failed[/]" if result.failed else "0 failed")
    if result.interrupted:
        parts.append(f"[yellow]interrupted with {result.unfinished} not finished[/]")
    if result.stopped:
        parts.append(f"[red]stopped early (nothing more can be written), {result.unfinished} not started[/]")
    lines = [", ".join(parts)]
    if result.skipped_outputs:  # never an input photo: plan() gives such an output another name
        lines.append(
            f"not replaced (made by an earlier run, perhaps with other options): "
            f"{_first_few(result.skipped_outputs)}; --overwrite replaces them"
        )
    if result.renamed:
        lines.append(
            f"{len(result.renamed)} renamed, so that no output replaces a photo or another photo's output:"
        )
        lines += [f"  {escape(f'{path}: {how}')}" for path, how in result.renamed[:SHOW_AT_MOST]]
        if len(result.renamed) > SHOW_AT_MOST:
            lines.append(f"  and {len(result.renamed) - SHOW_AT_MOST} more")
    if result.interrupted or result.stopped:
        lines.append("run the same command again to continue: finished outputs are skipped")
    if result.failed:
        lines.append("failures:")
        lines += [f"  {escape(f'{path}: {reason}')}" for path, reason in result.failed]
    return lines


def json_report(jobs: Sequence[Job], result: BatchResult, seconds: float) -> dict:
    """The document ``predict --json`` writes (its schema is in README's predict section): the counts, the
    exit code, the whole run's seconds, and for each photo in input order its outputs, status (``done``,
    ``skipped``, ``failed``, ``unfinished``), reason, notes, why its outputs were renamed, and its seconds
    per step. Inputs refused before the batch started (missing files, a folder with no photos, an output
    path held by a folder) come first, as ``failed`` entries with no outputs, as their error lines did."""
    failed = dict(result.failed)
    status = dict.fromkeys(map(str, result.skipped), "skipped") | dict.fromkeys(map(str, result.done), "done")
    renamed = dict(result.renamed)
    notes: dict[str, list[str]] = {}
    for path, note in result.notes:
        notes.setdefault(path, []).append(note)

    def entry(source: str, outputs: dict[str, str], seconds: dict[str, float]) -> dict:
        state = status.get(source, "failed" if source in failed else "unfinished")
        reason = {"failed": failed.get(source), "skipped": "outputs exist"}.get(state)
        return {
            "input": source,
            "status": state,
            "outputs": outputs,
            "reason": reason,
            "notes": notes.get(source, []),
            "renamed": renamed.get(source),
            "seconds": {step: round(value, 3) for step, value in seconds.items()},
        }

    planned = {str(job.source) for job in jobs}
    entries = [entry(path, {}, {}) for path, _ in result.failed if path not in planned]
    for job in jobs:
        outputs = {fmt: os.fspath(path) for fmt, path in job.outputs.items()}
        entries.append(entry(str(job.source), outputs, result.seconds.get(job.source, {})))
    return {
        "version": JSON_VERSION,
        "exit_code": result.exit_code,
        "done": len(result.done),
        "skipped": len(result.skipped),
        "failed": len(result.failed),
        "unfinished": result.unfinished,
        "interrupted": result.interrupted,
        "stopped": result.stopped,
        "seconds": round(seconds, 3),
        "inputs": entries,
    }


def check_json_path(path: str, jobs: Sequence[Job], inputs: Sequence[str | os.PathLike]) -> str | None:
    """Why ``--json path`` cannot be written, before any work: its folder is missing, it is a folder, or it
    is an input photo or an output of this run (a report must never replace either); None when fine."""
    if path == "-":
        return None
    target = Path(path)
    if target.is_dir():
        return f"--json {path}: is a folder; name a file, or - for standard output"
    if not target.parent.is_dir():
        return f"--json {path}: the folder {target.parent} does not exist"
    key = os.path.normcase(os.path.realpath(target))
    taken = [Path(i) for i in inputs] + [job.source for job in jobs]
    taken += [p for job in jobs for p in job.outputs.values()]
    if any(os.path.normcase(os.path.realpath(p)) == key for p in taken):
        return f"--json {path}: is an input or an output of this run; name another file"
    return None
