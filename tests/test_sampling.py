"""The renderer's sample maps: the pixel grid folded into the coarse grid before upsampling must give the
same map as upsampling the displacement and adding the pixel grid afterwards."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skyforecast.render.sampling import SampleMap


def unfolded(disp, scale, size, box, offset):
    w, h = size
    y0, y1, x0, x1 = box
    big = cv2.resize(disp * scale, (w, h), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
    bx, by = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    return big + np.dstack([bx + offset[0], by + offset[1]])


@pytest.mark.parametrize(
    "grid, size, box, offset",
    [
        ((171, 96), (1920, 1080), (0, 893, 0, 1920), (255, 49)),  # a 1080p sky box across the top
        ((171, 96), (960, 540), (0, 447, 0, 960), (127, 24)),  # its chroma at half size
        ((96, 96), (500, 500), (120, 380, 7, 493), (0, 0)),  # a box inside the frame, no pad
        ((60, 40), (60, 40), (0, 40, 0, 60), (3, 1)),  # grid as large as the frame: no upsampling
        ((37, 21), (811, 459), (0, 459, 0, 811), (10.0, 0.0)),  # odd sizes, scale not whole
    ],
)
def test_folded_map_equals_the_map_made_at_full_size(grid, size, box, offset):
    rng = np.random.default_rng(1)
    gw, gh = grid
    disp = rng.normal(0, 3, (gh, gw, 2)).astype(np.float32)
    scale = np.array([size[0] / gw, size[1] / gh], np.float32)
    sampler = SampleMap(grid, size, box, offset)
    got = sampler.sample(disp, scale)
    want = unfolded(disp, scale, size, box, offset)
    assert got.shape == (box[1] - box[0], box[3] - box[2], 2)
    # float32 rounding of positions up to ~2500 px; cv2.remap itself resolves 1/32 px
    assert np.abs(got - want).max() < 2e-3
    # zero displacement: exactly each pixel's own position plus the offset, edges included
    still = sampler.sample(np.zeros_like(disp), scale)
    assert np.abs(still - unfolded(np.zeros_like(disp), scale, size, box, offset)).max() < 2e-3
    assert still[0, 0, 0] == pytest.approx(box[2] + offset[0], abs=2e-3)
    assert still[-1, -1, 1] == pytest.approx(box[1] - 1 + offset[1], abs=2e-3)


def test_a_map_is_a_view_of_the_buffer_given():
    buffer = np.empty((100, 200, 2), np.float32)
    sampler = SampleMap((20, 10), (200, 100), (10, 90, 0, 200), buffer=buffer)
    m = sampler.sample(np.zeros((10, 20, 2), np.float32), np.array([10, 10], np.float32))
    assert np.shares_memory(m, buffer)
