"""``skyforecast.io.constants``: the shared numbers and suffixes are the ones the modules use, and the one
``WxH`` parser accepts and refuses what the two it replaces did."""

from __future__ import annotations

import pytest

from skyforecast.io import constants, media
from skyforecast.io.constants import IMAGE_SUFFIXES, parse_wxh
from skyforecast.model import fast, pipeline
from skyforecast.model import networks as models


def test_the_clip_shape_is_defined_once():
    assert (constants.FRAMES, constants.SIZE) == (32, 128)
    assert models.FRAMES is constants.FRAMES
    assert pipeline.FRAMES is constants.FRAMES and pipeline.SIZE is constants.SIZE
    assert fast.FastMDGAN.__init__.__kwdefaults__["frames"] == constants.FRAMES


def test_image_suffixes_are_the_union_of_the_two_old_sets():
    training_data = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}  # data.IMAGE_EXTS had these
    assert training_data <= IMAGE_SUFFIXES
    assert set(media.IMAGE_SUFFIXES) <= IMAGE_SUFFIXES  # what predict lists in a folder
    assert len(IMAGE_SUFFIXES) == 15 and all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("640x360", (640, 360)),
        ("64", (64, 64)),
        ("64*32", (64, 32)),
        ("64X32", (64, 32)),
        ("3x8192", (3, 8192)),
    ],
)
def test_parse_wxh_reads_sizes(text, size):
    assert parse_wxh(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "--size must be N or WxH, got 'abc'"),
        ("64x", "--size must be N or WxH, got '64x'"),
        ("1x64", "with sides 2..8192, got '1x64'"),
        ("64x8193", "with sides 2..8192"),
        ("2x3x4", "with sides 2..8192"),
    ],
)
def test_parse_wxh_refuses_with_the_flag_named(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_wxh(text)


def test_parse_wxh_keeps_the_limits_of_each_caller():
    with pytest.raises(ValueError, match="--size must be N or WxH with sides 8..8192, got '7x64'"):
        parse_wxh("7x64", smallest=8)  # synth's lower limit
    with pytest.raises(ValueError, match="^--resolution must"):
        parse_wxh("big", flag="--resolution")
    # predict's parser (media.parse_size) is this one with even sides for H.264
    for text in ("640x360", "65x33", "2", "8192x2"):
        assert media.parse_size(text) == tuple(s - s % 2 for s in parse_wxh(text))
    for text in ("abc", "1x64", "64x8193", "2x3x4"):
        with pytest.raises(ValueError, match="--size must be N or WxH"):
            media.parse_size(text)


def test_no_module_defines_the_shared_names_again():
    """The small ints 32 and 128 are the same object wherever they are written, so ``is`` above cannot
    tell a copy from an import: read the source instead. No module but ``constants`` assigns these names
    at its top level or defines its own ``WxH`` parser."""
    import ast
    from pathlib import Path

    shared = {"FRAMES", "SIZE", "MODEL_SIZE", "IMAGE_SUFFIXES", "MAX_SIDE"}
    copies = []
    for path in sorted(Path(constants.__file__).parent.glob("*.py")):
        if path.name == "constants.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            copies += [f"{path.name}: {name}" for name in names & shared]
            if isinstance(node, ast.FunctionDef) and "wxh" in node.name.lower():
                copies.append(f"{path.name}: {node.name}()")
    assert copies == []
