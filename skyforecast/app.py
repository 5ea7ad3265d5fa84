"""``skyforecast app``: a local web page for people who do not live in a terminal. Drop a photo, pick what
``predict`` offers, watch the time-lapse play in the page and download it.

The page is a thin face over the same one-call API the command line uses: ``Studio.render`` calls
``skyforecast.animate`` (the model loaded once, ``api.load_pipeline``) and writes the file with
``media.write_mp4``/``write_gif``, as ``predict`` does. Gradio is an optional extra
(``pip install "skyforecast[app]"``) imported here only, inside functions, so ``import skyforecast`` and the
rest of the command line never load it.

Files: every upload and output lives in one temporary folder the app owns (Gradio's cache is pointed at
it, and so is Python's ``tempfile`` in the app's process). After each request only that request's files
stay (the photo on the page, its mask, the video it plays); the folder is removed when the app stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .api import animate, load_pipeline
from .io.constants import FRAMES, MAX_FRAMES, ArgumentError
from .io.media import InputError, Photo, load_photo, write_gif, write_mp4
from .render.frames import Frames
from .render.postprocess import PostProcess

INSTALL_HINT = 'the web app needs Gradio, which is not installed: pip install "skyforecast[app]"'
FPS = 8  # as predict's default
MAX_UPLOAD = "200mb"  # per file; bigger uploads are refused by the page before they reach the model
DIRECTIONS = ("auto", "left", "right", "up", "down")
# (label, value of animate's ``resolution``); "auto" is predict's default (the photo's size up to 1080p)
RESOLUTIONS = (
    ("the photo's size, up to 1080p", "auto"),
    ("1080p", "1080"),
    ("720p", "720"),
    ("480p", "480"),
    ("the model's own 128 px", "model"),
)
Progress = Callable[..., object]  # gr.Progress: progress(fraction or (done, total), desc=...)


class AppError(Exception):
    """Why the app cannot start: one line for the command line."""


@dataclass
class Result:
    """What one request gives the page: an MP4 to play or a GIF to show, the file to download (None after
    a failure), a status line (the error, or what was made) and whether it worked."""

    video: str | None
    gif: str | None
    download: str | None
    status: str
    ok: bool


@dataclass
class Options:
    """The page's controls, with ``predict``'s defaults."""

    speed: float = 1.0
    direction: str = "auto"
    loop: bool = False
    loop_style: str = "fade"
    frames: int = FRAMES
    resolution: str = "auto"
    fmt: str = "mp4"
    compare: bool = False


class Studio:
    """One model, one request at a time, and the folder that holds every file of the app.

    ``weights``/``device`` as for ``predict``; the model is loaded here, so bad weights stop the app before
    it serves a page (``weights.WeightsError``). ``folder``: an empty folder for the app's files, which the
    studio then owns and ``close`` removes (default: a new one in the system's temporary folder)."""

    def __init__(
        self, weights: str | os.PathLike | None = None, device: str = "auto", folder: str | None = None
    ):
        self.weights = None if weights is None else os.fspath(weights)
        self.device = device
        self.folder = Path(folder or tempfile.mkdtemp(prefix="skyforecast-app-")).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._served = 0
        self._last_end = time.time()  # when the previous request ended
        try:
            load_pipeline(self.weights, device)  # the one model: animate finds it in the same cache
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the app's folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def render(
        self, photo: str | None, mask: str | None = None, options: Options | None = None,
        progress: Progress | None = None,
    ) -> Result:  # fmt: skip
        """Animate ``photo`` (an uploaded file's path) and write the video into the app's folder. Every
        problem with the upload or the options becomes the status line, never an exception. Afterwards
        the files of earlier requests are removed (``_prune``)."""
        options = options or Options()
        with self._lock:
            result = self._render(photo, mask, options, progress or _no_progress)
            self._prune([p for p in (photo, mask, result.download) if p])
            self._last_end = time.time()
            return result

    def _render(self, photo: str | None, mask: str | None, options: Options, progress: Progress) -> Result:
        if not photo:
            return _failed("choose a photo first (drop it on the photo box or click to pick one)")
        name = Path(photo).name
        for path in (photo, mask):
            if path and not Path(path).exists():  # removed after another tab's request: see _prune
                return _failed(f"{Path(path).name}: no longer on the server; drop it on the page again")
        try:
            _check(options)
            progress(0.0, desc="reading the photo")
            source = load_photo(photo)  # predict's reader and reasons; animate takes the decoded photo
            resolution = _resolution(source, options)
            progress(0.05, desc="predicting the sky")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                frames = animate(
                    source, resolution=resolution, loop=options.loop, loop_style=options.loop_style,
                    frames=int(options.frames), mask=mask or None, speed=f"{float(options.speed):g}x",
                    direction=None if options.direction == "auto" else options.direction,
                    compare=bool(options.compare), weights=self.weights, device=self.device, lazy=True,
                )  # fmt: skip
            path = self._write(frames, Path(name).stem, options.fmt, progress)
        except InputError as e:
            return _failed(f"{Path(e.path).name}: {e.reason}")
        except ArgumentError as e:
            return _failed(str(e))
        except MemoryError:
            return _failed(f"{name}: not enough memory for this video; choose a smaller size or fewer frames")
        except OSError as e:
            return _failed(f"cannot write the video ({e.strerror or e})")
        except Exception as e:  # a bug: the page says so in one line, the console keeps the traceback
            traceback.print_exc()
            return _failed(f"{name}: failed unexpectedly ({type(e).__name__}: {e})")
        notes = "".join(f"; note: {w.message}" for w in caught)
        t, h, w = frames.shape[:3]
        status = f"{path.name}: {t} frames of {w}x{h} at {FPS} fps{notes}"
        is_mp4 = options.fmt == "mp4"
        return Result(str(path) if is_mp4 else None, None if is_mp4 else str(path), str(path), status, True)

    def _write(self, frames: Frames, stem: str, fmt: str, progress: Progress) -> Path:
        """The video in a new folder of the app's (so a download keeps the photo's name), each frame rendered
        as the writer asks for it: an MP4 from planes made straight in yuv420p, as ``predict`` writes it."""
        self._served += 1
        out = self.folder / f"video-{self._served:05d}" / f"{stem}.{fmt}"
        out.parent.mkdir()
        writer = write_mp4 if fmt == "mp4" else write_gif
        desc = f"rendering and writing the {fmt.upper()}"
        progress((0, len(frames)), desc=desc)
        writer(frames.counted(lambda done, total: progress((done, total), desc=desc)), out, fps=FPS)
        return out

    def _prune(self, keep: list[str]) -> None:
        """Remove what earlier requests left in the app's folder. Kept: the entries holding ``keep`` (this
        request's photo and mask, still on the page, and the video it shows) and the uploads made since
        the previous request ended (a photo another tab dropped, waiting in the queue, or one dropped
        during this request). Gradio puts each upload in a folder of its own."""
        kept = set()
        for path in keep:
            with contextlib.suppress(ValueError):
                kept.add(Path(path).resolve().relative_to(self.folder).parts[0])
        for entry in list(self.folder.iterdir()):
            try:
                recent = entry.stat().st_mtime >= self._last_end
            except FileNotFoundError:
                continue
            recent_upload = recent and not entry.name.startswith("video-")
            if entry.name in kept or recent_upload:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _no_progress(*args, **kwargs) -> None:
    return None


def _failed(message: str) -> Result:
    return Result(None, None, None, f"error: {message}", False)


def _check(options: Options) -> None:
    """The page's own limits, which a call through Gradio's API could otherwise pass (animate checks the
    rest): at most ``predict``'s ``MAX_FRAMES`` frames and the page's listed sizes."""
    if not 1 <= int(options.frames) <= MAX_FRAMES:
        raise ArgumentError("frames", f"must be 1..{MAX_FRAMES} in the app, got {options.frames}")
    sizes = [value for _, value in RESOLUTIONS]
    if options.resolution not in sizes:
        raise ArgumentError("resolution", f"must be one of {', '.join(sizes)}, got {options.resolution!r}")
    if options.fmt not in ("mp4", "gif"):
        raise ArgumentError("format", f"must be mp4 or gif, got {options.fmt!r}")


def _resolution(photo: Photo, options: Options) -> str:
    """animate's ``resolution`` for the page's choice; for a GIF at the default size, the height
    ``predict`` gives GIFs (480 px at most: palette encoding makes big GIFs slow and heavy)."""
    if options.resolution != "auto" or options.fmt != "gif":
        return options.resolution
    (_, height), _ = PostProcess(compare=bool(options.compare)).format_size(photo.size, "gif")
    return str(height)


# ---- the page --------------------------------------------------------------------------------------


def require_gradio():
    """The ``gradio`` module, or ``AppError`` with the line that says how to install it."""
    try:
        import gradio
    except ImportError:
        raise AppError(INSTALL_HINT) from None
    return gradio


def _gradio_installed() -> bool:
    """Whether ``import gradio`` can work, without the seconds it takes."""
    import importlib.util

    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):
        return False


def build_page(studio: Studio):
    """The Gradio Blocks page over ``studio``: inputs on the left, the video on the right."""
    gr = require_gradio()
    with gr.Blocks(title="skyforecast", analytics_enabled=False) as page:
        gr.Markdown(
            "# skyforecast\nOne outdoor photo in, a short time-lapse of what its sky does next out "
            "(MD-GAN). Drop a photo, choose the options, press **Animate**."
        )
        with gr.Row():
            with gr.Column():
                photo = gr.File(
                    label="Photo: drop it here or click to pick", type="filepath", elem_id="photo"
                )
                go = gr.Button("Animate", variant="primary", elem_id="animate")
                controls = _controls(gr)
            with gr.Column():
                video = gr.Video(
                    label="Time-lapse", autoplay=True, loop=True, interactive=False, elem_id="video"
                )
                gif = gr.Image(label="Time-lapse (GIF)", type="filepath", interactive=False, visible=False)
                status = gr.Textbox(label="Status", interactive=False, lines=2, elem_id="status")
                download = gr.File(label="Download", interactive=False, elem_id="download")

        def run(photo_path, mask_path, *values, progress=gr.Progress()):  # noqa: B008 - Gradio reads it
            result = studio.render(photo_path, mask_path, Options(*values), progress=progress)
            return (
                gr.Video(value=result.video, visible=result.gif is None),
                gr.Image(value=result.gif, visible=result.gif is not None),
                result.download,
                result.status,
            )

        mask = controls.pop()
        go.click(run, [photo, mask, *controls], [video, gif, download, status], concurrency_limit=1)
    return page


def _controls(gr) -> list:
    """The options, in ``Options``' field order, then the mask upload."""
    with gr.Accordion("Options", open=True):
        speed = gr.Slider(0.25, 4, value=1, step=0.25, label="Speed (x real time-lapse speed)")
        direction = gr.Dropdown(list(DIRECTIONS), value="auto", label="Direction the sky drifts")
        with gr.Row():
            loop = gr.Checkbox(label="Seamless loop", value=False)
            loop_style = gr.Radio(["fade", "pingpong"], value="fade", label="Loop style")
        frames = gr.Slider(8, MAX_FRAMES, value=FRAMES, step=1, label=f"Length in frames ({FPS} per second)")
        resolution = gr.Dropdown(
            [(label, value) for label, value in RESOLUTIONS], value="auto", label="Output size"
        )
        fmt = gr.Radio([("MP4", "mp4"), ("GIF", "gif")], value="mp4", label="Format")
        compare = gr.Checkbox(label="Compare: photo | Stage I | Stage II side by side", value=False)
        mask = gr.File(
            label="Mask (optional): white = sky that may move, black = still", type="filepath", elem_id="mask"
        )
    return [speed, direction, loop, loop_style, frames, resolution, fmt, compare, mask]


# ---- serving -------------------------------------------------------------------------------------


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    weights: str | None = None,
    device: str = "auto",
    share: bool = False,
) -> None:
    """Serve the page until Ctrl-C (or SIGTERM), then remove every file the app made. Raises ``AppError``
    (one line) when Gradio is missing, the weights cannot be loaded or the port cannot be used."""
    from .model.weights import WeightsError

    root = Path(tempfile.mkdtemp(prefix="skyforecast-app-")).resolve()
    try:
        # before Gradio is imported: some of its modules read the cache folder once, at import
        os.environ["GRADIO_TEMP_DIR"] = str(root)
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        tempfile.tempdir = str(root)  # nothing of this process lands in the system's temporary folder
        if not _gradio_installed():  # said before the model loads
            raise AppError(INSTALL_HINT)
        try:
            studio = Studio(weights, device, folder=str(root))
        except (WeightsError, ValueError) as e:
            raise AppError(str(e)) from None
        page = build_page(studio)
        page.queue(default_concurrency_limit=1, max_size=32)
        _launch(page, host, port, share)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _launch(page, host: str, port: int, share: bool) -> None:
    try:
        page.launch(
            server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True,
            max_file_size=MAX_UPLOAD, ssr_mode=False, show_error=False, mcp_server=False,
        )  # fmt: skip
    except OSError as e:
        reason = "the port is in use or not allowed; choose another with --port" if "port" in str(e) else e
        raise AppError(f"cannot serve on {host}:{port}: {reason}") from None
    where = f"http://{'127.0.0.1' if host in ('127.0.0.1', 'localhost') else host}:{port}/"
    print(f"skyforecast app: {where}  (Ctrl-C stops it)", flush=True)
    if share and getattr(page, "share_url", None):
        print(f"public link (anyone who has it can use the app): {page.share_url}", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(Exception):
            page.close()
        print("skyforecast app: stopped", file=sys.stderr, flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
