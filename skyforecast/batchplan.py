"""Planning a batch before any photo is read: the inputs expanded into jobs, every output named (no output
over another's or over an input photo, folder structure kept, the same names every run), finished outputs
marked to skip, and the output folders proved writable before the model loads. Apart from ``batch``'s
running of the jobs because planning needs neither the model nor the renderer: ``sharding`` plans the same
jobs on every rank, and the command line refuses a wrong ``-o`` with one line.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .io.media import FORMATS, list_images, output_name

VIDEO_SUFFIXES = {".mp4": "mp4", ".gif": "gif"}
# Suffixes of video and image files that ``-o`` cannot write: such a name is a mistake, not a folder.
MEDIA_SUFFIXES = set(
    ".mov .m4v .mkv .webm .avi .wmv .flv .mpg .mpeg .m2ts .mts .ts .ogv .3gp .apng .webp .png .jpg .jpeg "
    ".tif .tiff .bmp .heic .avif".split()
)


class UsageError(ValueError):
    """Arguments that cannot work together (exit code 2 on the command line)."""


@dataclass
class Job:
    """One input photo and the output paths it should produce, by format."""

    source: Path
    outputs: dict[str, Path]
    skip: bool = False
    renamed: str | None = None  # why the outputs are not named after the photo alone (a name clash)

    @property
    def missing(self) -> dict[str, Path]:
        return {f: p for f, p in self.outputs.items() if not p.exists()}


def parse_formats(formats: Sequence[str] | None) -> list[str]:
    """``["mp4", "gif"]``, ``["all"]``, ``["mp4,gif"]`` -> ordered unique list; default mp4."""
    out: list[str] = []
    for item in formats or ["mp4"]:
        for f in str(item).lower().split(","):
            f = f.strip()
            if not f:
                continue
            if f == "all":
                out.extend(FORMATS)
            elif f in FORMATS:
                out.append(f)
            else:
                raise UsageError(f"unknown --format {f!r}; choose from {', '.join(FORMATS)} or all")
    return list(dict.fromkeys(out))


def plan(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    formats: Sequence[str] | None = None,
    recursive: bool = False,
    overwrite: bool = False,
    explicit_formats: bool = False,
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files and folders into jobs and decide each output path.

    ``output`` naming a ``.mp4``/``.gif`` file is allowed for a single input file; otherwise it is a
    folder (created as needed), and a folder input keeps its sub-folder structure below it.
    Returns (jobs, problems): problems are inputs that do not exist or folders with no images.
    """
    fmts = parse_formats(formats)
    problems: list[tuple[str, str]] = []
    sources: list[tuple[Path, Path]] = []  # (file, relative output stem)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            images = list_images(p, recursive=recursive)
            if not images:
                hint = "" if recursive else " (use --recursive to look in sub-folders)"
                problems.append((str(p), f"no images in this folder{hint}"))
            sources.extend((img, img.relative_to(p).with_suffix("")) for img in images)
        elif p.exists():
            sources.append((p, Path(p.stem)))
        else:
            problems.append((str(p), "no such file or folder"))

    sources = _unique_files(sources)
    out = Path(output) if output is not None else Path.cwd()
    single_file = (
        output is not None and out.suffix.lower() in VIDEO_SUFFIXES and not _names_folder(str(output))
    )
    if output is not None and not single_file:
        _check_folder_name(str(output))
    if single_file:
        fmt = VIDEO_SUFFIXES[out.suffix.lower()]
        if len(sources) != 1 or any(Path(i).is_dir() for i in inputs):
            raise UsageError(
                f"-o {out} names a file, which needs exactly one input photo; name a folder instead"
            )
        if explicit_formats and fmts != [fmt]:
            raise UsageError(f"-o {out} is a .{fmt} file but --format asks for {', '.join(fmts)}")
        target, number = out, 1
        inputs = _input_keys([sources[0][0]], out.parent)
        while _name_key(Path(target.name)) in inputs:  # -o photo.gif for photo.gif: never the input
            number += 1
            target = out.with_name(f"{out.stem}_{number}{out.suffix}")
        job = Job(sources[0][0], {fmt: target})
        if target != out:
            job.renamed = f"written as {target} ({inputs[_name_key(Path(out.name))]})"
        job.skip = not overwrite and target.exists()
        return _kind_clashes([job], problems)

    jobs = []
    for src, rel, renamed in _distinct_names(sources, fmts, _input_keys([s for s, _ in sources], out)):
        job = Job(src, {f: out / rel.parent / output_name(rel.name, f) for f in fmts})
        if renamed:
            job.renamed = f"written as {next(iter(job.outputs.values()))} ({renamed})"
        job.skip = not overwrite and not job.missing
        jobs.append(job)
    return _kind_clashes(jobs, problems)


def _kind_clashes(
    jobs: list[Job], problems: list[tuple[str, str]]
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Move to ``problems`` the jobs whose output path holds the other kind of thing: a folder where a video
    goes, or a file where a ``-f frames`` folder goes. Neither is an earlier output to skip or replace: the
    photo fails with a line in the user's words, and the file or folder is left alone."""
    kept = []
    for job in jobs:
        clash = next(
            (
                (path, "a folder" if path.is_dir() else "a file")
                for fmt, path in job.outputs.items()
                if path.exists() and path.is_dir() != (fmt == "frames")
            ),
            None,
        )
        if clash is None:
            kept.append(job)
        else:
            path, kind = clash
            problems.append(
                (str(job.source), f"cannot write {path}: it is {kind}; rename it or choose another -o")
            )
    return kept, problems


def _input_keys(photos: Sequence[Path], out: Path) -> dict[str, str]:
    """The names below ``out`` that outputs must not take, because an input photo is there: each photo's own
    path (``predict sunset.gif -f gif`` in its folder) and each folder that holds one (a ``-f frames``
    folder is replaced as a whole). Keys as ``_name_key`` spells them, relative to ``out``, found through
    symbolic links; each maps to the reason an output there is renamed."""
    root = os.path.realpath(out)
    keys: dict[str, str] = {}
    for photo in photos:
        rel = os.path.relpath(os.path.realpath(photo), root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            continue
        rel_path = Path(rel)
        keys.setdefault(_name_key(rel_path), f"{photo} is an input photo")
        for folder in rel_path.parents:
            if str(folder) != ".":
                keys.setdefault(_name_key(folder), f"{out / folder} holds the input photo {photo}")
    return keys


def photos_in_subfolders(inputs: Sequence[str | os.PathLike]) -> int:
    """How many photos the folder inputs hold in their sub-folders: without ``--recursive`` they are left out,
    and a user who expected them should hear of it. Folders with no photo at the top are not counted
    (``plan`` reports them, with the same hint)."""
    count = 0
    for item in inputs:
        folder = Path(item)
        if folder.is_dir() and (top := len(list_images(folder))):
            count += len(list_images(folder, recursive=True)) - top
    return count


def _check_folder_name(output: str) -> None:
    """Refuse ``-o clip.mov``: a name with a video or image suffix we do not write would otherwise become a
    folder called ``clip.mov``. An existing folder, or a name ending in a slash, is a folder whatever its
    name."""
    path = Path(output)
    if _names_folder(output):
        return
    suffix = path.suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        raise UsageError(
            f"-o {output}: {suffix} is not a format skyforecast writes; name a .mp4 or .gif file, or a "
            "folder (a name ending in / is always a folder; -f frames writes PNG frames)"
        )


def _names_folder(output: str) -> bool:
    """Whether ``-o`` names a folder whatever its suffix (``-o renders.mp4/``, an existing folder)."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _unique_files(sources: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Drop a photo reached a second time (given twice, or as a file and inside a folder): it is predicted
    once, under the name it got first."""
    seen: set[str] = set()
    unique = []
    for src, rel in sources:
        key = os.path.normcase(os.path.realpath(src))
        if key not in seen:
            seen.add(key)
            unique.append((src, rel))
    return unique


def _distinct_names(
    sources: list[tuple[Path, Path]], fmts: Sequence[str], inputs: dict[str, str] | None = None
) -> list[tuple[Path, Path, str | None]]:
    """Give every photo its own output name, so that no output is written over another's.

    A folder input keeps its sub-folder structure, and a photo is named after its stem. Where photos still
    share a name: ``x.jpg`` and ``x.png`` become ``x_jpg`` and ``x_png``; any other clash (the same name in
    two folders, a file beside a folder's photo) keeps the first name and numbers the rest ``coast_2``,
    ``coast_3``, in input order, so the same command names the same outputs every time. Names are compared
    case-insensitively (as macOS and Windows file systems do), and a name that would be the folder of
    another output counts as a clash too, and so does a name in ``inputs`` (``_input_keys``): no output is
    ever written over an input photo. Returns (photo, relative stem, why it was renamed)."""
    inputs = inputs or {}
    groups: dict[str, list[int]] = {}
    for i, (_, rel) in enumerate(sources):
        groups.setdefault(_name_key(rel), []).append(i)
    rels = [rel for _, rel in sources]
    clashed: dict[int, str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        suffixes = [sources[i][0].suffix.lstrip(".").lower() for i in group]
        if len(set(suffixes)) == len(group):
            for i, suffix in zip(group, suffixes, strict=True):
                rels[i] = rels[i].with_name(f"{rels[i].name}_{suffix}")
                clashed[i] = f"{sources[group[0] if i != group[0] else group[1]][0]} has the same name"
    # the sub-folders come from the inputs and stay; a photo's name gives way to them
    folders: dict[str, int] = {}
    for i, rel in enumerate(rels):
        for parent in rel.parents:
            if str(parent) != ".":
                folders.setdefault(_name_key(parent), i)
    taken: dict[str, int] = {}  # output path key -> the photo whose output it is
    named = []
    for i, (src, _) in enumerate(sources):
        rel, number = rels[i], 1
        while True:
            keys = [_name_key(rel.parent / output_name(rel.name, f)) for f in fmts]
            held = next((inputs[k] for k in keys if k in inputs), None)
            if held is not None:
                clashed.setdefault(i, held)
            else:
                owner = next((taken.get(k, folders.get(k)) for k in keys if k in taken or k in folders), None)
                if owner is None:
                    break
                clashed.setdefault(i, f"{sources[owner][0]} has the same name")
            number += 1
            rel = rels[i].with_name(f"{rels[i].name}_{number}")
        taken.update(dict.fromkeys(keys, i))
        named.append((src, rel, clashed.get(i)))
    return named


def _name_key(rel: Path) -> str:
    return rel.as_posix().casefold()


def check_output_folders(jobs: Sequence[Job]) -> list[tuple[str, str]]:
    """Create the output folders of the jobs still to do and prove each writable with a temporary file,
    before the model is loaded: a wrong ``-o`` is one clear error, not one failure per photo.
    Returns (folder, reason) for each folder that cannot be used."""
    folders = dict.fromkeys(p.parent for job in jobs if not job.skip for p in job.outputs.values())
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".skyforecast-check-"):
                pass
        except OSError as e:
            problems.append((str(folder), _folder_reason(folder, e)))
    return problems


def _folder_reason(folder: Path, e: OSError) -> str:
    if isinstance(e, (NotADirectoryError, FileExistsError)):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        return f"{blocker} is a file, not a folder"
    if isinstance(e, PermissionError):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if _out_of_space(e):
        return "no space left on the device"
    return e.strerror or str(e)


def _out_of_space(e: BaseException) -> bool:
    """Disk full, quota exceeded, or the file-size limit: the errors no later photo can get past."""
    codes = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
    if isinstance(e, OSError) and e.errno in codes:
        return True
    text = str(e)
    return any(os.strerror(c) in text for c in codes)  # ffmpeg reports them only in its message
