"""The sky's light stays where it is while its clouds move (``skyforecast.render.light``): a glow that does
not slide, no pale outline of the still parts in the moving sky, and clouds on clear sky that keep their own
shading."""

from __future__ import annotations

import cv2
import numpy as np

from skyforecast.render import light, steady

STILL = (slice(60, 200), slice(200, 280))  # rows, columns of the still part standing in the sky


def prediction(vx: float, frames: int = 32, size: int = 128) -> np.ndarray:
    """A synthetic prediction: a texture drifting right ``vx`` model pixels per frame."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((size * 2, size * 2)).astype(np.float32), (0, 0), 4)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    base = np.dstack([base] * 3)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, vx * t - size / 2], [0, 1, -size / 2]])
        frame = cv2.warpAffine(base, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(frame)
    return np.stack(out)


def glow_photo(h: int = 270, w: int = 480) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A hazy sky brightening towards a glow behind a still part standing in it (``STILL``), a few small
    dark clouds and ground below: (photo, sky mask, cloud mask)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    glow = 80.0 * np.exp(-((x - 250) ** 2 + (y - 120) ** 2) / (2 * 150.0**2))
    photo = np.dstack([120 + glow, 140 + glow, 190 + 0.6 * glow])
    clouds = np.zeros((h, w), np.float32)
    rng = np.random.default_rng(5)
    for cx, cy in zip(rng.uniform(20, w - 20, 14), rng.uniform(15, 0.75 * h - 15, 14), strict=True):
        cv2.circle(clouds, (int(cx), int(cy)), 6, 1.0, -1)
    clouds = cv2.GaussianBlur(clouds, (0, 0), 2)
    photo = photo * (1 - 0.5 * clouds[..., None])
    ground = int(0.8 * h)
    photo[ground:] = (60, 70, 40)
    photo[STILL] = photo[STILL] * 0.98  # the sky held still around a tree's branches
    photo = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
    sky = np.zeros((h, w), bool)
    sky[:ground] = True
    sky[STILL] = False
    return photo, sky, clouds > 0.5


def render(photo: np.ndarray, sky: np.ndarray, keep: bool, monkeypatch, frames: int = 32) -> list[np.ndarray]:
    if not keep:
        monkeypatch.setattr(steady.SteadyRenderer, "light_offset", lambda self, *a: None)
    renderer, _ = steady.animate_frames(
        photo, prediction(0.8, frames), sky.astype(np.float32), frames=frames, speed=steady.parse_speed("2px")
    )
    out = [renderer[t] for t in range(len(renderer))]
    monkeypatch.undo()
    return out


def test_a_glow_stays_where_it_is_while_the_clouds_move(monkeypatch):
    """Moved as a whole, the glow slid with the haze, and the sky held still (``STILL``) stood out of the
    moving sky beside it as a pale shape."""
    photo, sky, clouds = glow_photo()
    kept = render(photo, sky, True, monkeypatch)
    slid = render(photo, sky, False, monkeypatch)
    inner = cv2.erode(sky.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0  # away from the soft edges
    clear = inner & ~cv2.dilate(clouds.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)

    def light_change(frame: np.ndarray) -> float:  # levels from the photo in its clear sky (median: a
        return float(np.median(np.abs(frame.astype(float) - photo).mean(axis=2)[clear]))  # cloud passing

    def outline(frame: np.ndarray) -> float:  # the step from the moving sky into the still part, left side
        grey = frame.astype(float).mean(axis=2)
        return float(np.median(grey[70:190, 205:215]) - np.median(grey[70:190, 175:190]))

    assert light_change(slid[31]) > 10 and abs(outline(slid[31]) - outline(photo)) > 8  # 13.3 and 13.2
    assert light_change(kept[31]) < 4 and abs(outline(kept[31]) - outline(photo)) < 4.5  # 2.3 and 1.7
    # the clouds moved all the same: where they were, the sky is clear again
    dark = clouds & inner
    for frames in (kept, slid):
        assert (photo[dark].astype(float) - frames[31][dark]).mean() < -30


def cloud_photo(h: int = 270, w: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """A clear blue sky with one large white cloud of fine texture, ground below: (photo, sky mask)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    photo = np.dstack([90 + 0.1 * y, 130 + 0.1 * y, 220 + 0 * y])
    rng = np.random.default_rng(7)
    shape = np.zeros((h, w), np.float32)
    cv2.ellipse(shape, (200, 100), (110, 50), 0, 0, 360, 1.0, -1)
    shape = cv2.GaussianBlur(shape, (0, 0), 6)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5) * 60
    cloud = np.clip(205 + grain, 120, 255)[..., None]
    photo = photo * (1 - shape[..., None]) + cloud * shape[..., None]
    ground = int(0.8 * h)
    photo[ground:] = (60, 70, 40)
    sky = np.zeros((h, w), bool)
    sky[:ground] = True
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), sky


def test_clouds_on_clear_sky_keep_their_own_shading(monkeypatch):
    """The light is made from the smooth sky only: made from all of it, a white cloud's own brightness
    stayed behind as a pale patch in the blue it left, and the cloud darkened where it came to blue."""
    photo, sky = cloud_photo()
    inner = cv2.erode(sky.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    slid = render(photo, sky, False, monkeypatch)[31].astype(float)
    kept = render(photo, sky, True, monkeypatch)[31].astype(float)
    monkeypatch.setattr(light, "SMOOTH", 1e9)  # every part of the sky counted as smooth
    all_of_it = render(photo, sky, True, monkeypatch)[31].astype(float)
    changed = [float(np.abs(frame - slid).mean(axis=2)[inner].mean()) for frame in (kept, all_of_it)]
    assert changed[0] < 2.5 and changed[1] > 5  # 0.8 and 7.2 levels on average


def test_a_long_videos_sky_meets_the_still_part_at_the_photos_light(monkeypatch):
    """In a long video's later cycles the sky is rolled from far away: its light, moved back with the wide
    blur and within its limits, stayed up to 12 levels darker than the sky held still beside a tree (a
    pale outline of the tree from frame 64 on, village-dusk.jpg). Next to a still part the sky takes the
    light of its place exactly (``light.NEAR``)."""
    photo, sky, _ = glow_photo()

    def steps(frame: np.ndarray) -> tuple[float, float]:  # into the still part from its left and its right
        grey = frame.astype(float).mean(axis=2)
        left = np.median(grey[70:190, 205:215]) - np.median(grey[70:190, 175:190])
        right = np.median(grey[70:190, 265:275]) - np.median(grey[70:190, 290:305])
        return float(left), float(right)

    def worst(near: float) -> float:
        monkeypatch.setattr(light, "NEAR", near)
        renderer, _ = steady.animate_frames(
            photo, prediction(0.8, 160), sky.astype(np.float32), frames=160, speed=steady.parse_speed("2px")
        )
        home = steps(photo)
        later = range(32, 160, 4)  # the second cycle on
        return max(abs(a - b) for t in later for a, b in zip(steps(renderer[t]), home, strict=True))

    assert worst(light.NEAR) <= 6  # 5.0
    assert worst(1e-9) > 10  # the wide light alone: 12.3
