"""Size, quality and write time of a GIF of the default video, against the MP4 of the same frames and
against Pillow's own GIF writer (a palette per frame, dithered: what ``write_gif`` did before).

    python bench/gif.py                         # examples/sky.jpg at 480 px high (854x480, 32 frames)
    python bench/gif.py my.jpg other.png --height 360

Per photo: the frames ``skyforecast.animate(photo, resolution=HEIGHT)`` renders (the bundled model), written
as a GIF by ``media.write_gif``, by Pillow's writer (the baseline, same run), and as an MP4 by
``media.write_mp4`` (H.264, CRF 18). Printed: file size, PSNR of each against the rendered frames and of the
GIF against the decoded MP4, and the share of still pixels (those equal in every rendered frame) that are not
equal in every frame of the GIF.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def pillow_gif(frames: np.ndarray, path: Path) -> None:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0, disposal=1, duration=125)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="*", default=[str(ROOT / "examples" / "sky.jpg")])
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()

    from videos import read_video

    import skyforecast
    from skyforecast.io.media import write_gif, write_mp4

    with tempfile.TemporaryDirectory() as tmp:
        for photo in args.photos:
            frames = skyforecast.animate(photo, resolution=args.height)
            still = (frames == frames[0]).all(axis=(0, 3))
            t, h, w, _ = frames.shape
            print(f"{Path(photo).name}: {t} frames of {w}x{h}, {still.mean():.0%} of the pixels still")
            mp4 = Path(tmp) / "v.mp4"
            write_mp4(frames, mp4)
            decoded_mp4 = read_video(mp4)
            size = mp4.stat().st_size / 1e6
            print(f"  mp4 (H.264 CRF 18)    {size:5.2f} MB  {psnr(decoded_mp4, frames):5.2f} dB")
            for name, writer in (("write_gif", write_gif), ("Pillow per-frame", pillow_gif)):
                gif = Path(tmp) / f"{name[:6]}.gif"
                start = time.perf_counter()
                writer(frames, gif)
                seconds = time.perf_counter() - start
                decoded = read_video(gif)
                moved = (decoded[:, still] != decoded[0, still]).any(-1).mean()
                print(
                    f"  gif {name:18s}{gif.stat().st_size / 1e6:5.2f} MB  {psnr(decoded, frames):5.2f} dB"
                    f"  ({psnr(decoded, decoded_mp4):5.2f} dB against the MP4)  still pixels changed"
                    f" {moved:.1%}  written in {seconds:.1f} s"
                )


if __name__ == "__main__":
    main()
