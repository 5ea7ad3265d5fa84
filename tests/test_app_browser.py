"""``skyforecast app`` in a real browser: the command started as a subprocess on a free port of 127.0.0.1,
driven by headless Chromium through Selenium. Skips where Chromium, chromedriver, Selenium or Gradio is
missing (``.ci/run`` installs Debian's chromium and chromium-driver, so CI runs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from videos import read_video

pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
PHOTO = Path(__file__).parent / "data" / "photos" / "cumulus.jpg"
HOST = "127.0.0.1"  # only loopback: the test never listens on or talks to anything else
START_S, RENDER_S = 180, 180  # bounds: the app's start (Gradio + torch imports) and one prediction

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium/chromedriver not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``skyforecast app`` as a real subprocess, with its own temporary folder (TMPDIR) and working folder,
    so that what it leaves behind can be seen."""

    def __init__(self, weights: Path, root: Path):
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.tmp, self.cwd, self.log = root / "tmp", root / "cwd", root / "app.log"
        self.tmp.mkdir()
        self.cwd.mkdir()
        script = Path(sys.executable).with_name("skyforecast")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "skyforecast"]
        args = ["app", "--port", str(self.port), "--host", HOST, "--weights", str(weights), "--device", "cpu"]
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command + args, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the app exited ({self.proc.returncode}): {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"the app did not answer within {START_S} s: {self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM (as a service manager stops it), then SIGKILL if it does not end within 30 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tiny_weights, tmp_path_factory):
    app = Server(tiny_weights, tmp_path_factory.mktemp("app"))
    try:
        app.wait_until_serving()
        yield app
    finally:
        app.stop()  # always: a failed test never leaves the app running


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):  # fmt: skip
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as e:
        pytest.skip(f"headless Chromium does not start here: {e.msg}")
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open_and_upload(browser, server: Server, photo: Path) -> None:
    """A fresh page, ``photo`` given to the photo box (what picking it in the file dialog does), then
    Animate once the upload shows in the box."""
    browser.get(server.url)
    wait = WebDriverWait(browser, 60)
    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photo input[type=file]"))
    box.send_keys(str(photo))
    wait.until(lambda d: photo.stem in d.find_element(By.ID, "photo").text)  # shown once uploaded
    browser.find_element(By.ID, "animate").click()


def _status(browser) -> str:
    return browser.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value") or ""


def test_a_photo_plays_as_a_32_frame_video_in_the_page(server, browser, tmp_path):
    _open_and_upload(browser, server, PHOTO)
    wait = WebDriverWait(browser, RENDER_S, poll_frequency=0.5)
    video = wait.until(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "#video video[src]")), None))
    assert _status(browser) == "cumulus.mp4: 32 frames of 320x180 at 8 fps"
    # playable: the browser decoded it (its size, its length at 8 fps) and no media error
    state = wait.until(
        lambda d: d.execute_script(
            "const v = arguments[0]; return v.readyState >= 2 ? "
            "{w: v.videoWidth, h: v.videoHeight, s: v.duration, error: v.error && v.error.code} : null",
            video,
        )
    )
    assert state == {"w": 320, "h": 180, "s": pytest.approx(4.0, abs=0.2), "error": None}, state
    src = video.get_attribute("src")
    assert src.startswith(server.url), src  # served by the app itself, on the loopback address
    downloaded = tmp_path / "downloaded.mp4"
    with urllib.request.urlopen(src, timeout=30) as response:
        downloaded.write_bytes(response.read())
    frames = read_video(downloaded)
    assert frames.shape == (32, 180, 320, 3)
    links = browser.find_element(By.ID, "download").find_elements(By.CSS_SELECTOR, "a[href]")
    assert any(a.get_attribute("href").split("?")[0].endswith("cumulus.mp4") for a in links)
    # the page loaded nothing from anywhere but the app (no fonts, scripts or analytics from the web)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in loaded if not u.startswith((server.url, "data:", "blob:"))] == []


def test_a_text_file_as_the_photo_shows_an_error_in_the_page(server, browser, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are words, not pixels\n")
    _open_and_upload(browser, server, notes)
    WebDriverWait(browser, RENDER_S, poll_frequency=0.5).until(lambda d: _status(d).startswith("error:"))
    assert _status(browser) == "error: notes.txt: not an image file Pillow can read"
    assert browser.find_elements(By.CSS_SELECTOR, "#video video[src]") == []


def test_a_photo_over_the_size_limit_is_refused_by_the_page(server, browser, tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(210 * 1024 * 1024)  # sparse: 210 MB that cost no disk
    browser.get(server.url)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#photo input[type=file]")).send_keys(str(huge))
    message = 'exceed the maximum allowed size of 200.0 Mb: "huge.jpg"'
    wait.until(lambda d: message in d.find_element(By.TAG_NAME, "body").text)
    assert list(server.tmp.glob("*/*/huge.jpg")) == []  # never uploaded


def test_stopping_the_app_leaves_no_files(server):
    """Last in this file: SIGTERM ends the app cleanly, and neither its temporary folder nor its working
    folder keeps anything (uploads, videos, Gradio's cache)."""
    assert server.stop() == 0, server.log.read_text()
    assert list(server.tmp.iterdir()) == []
    assert list(server.cwd.iterdir()) == []
    assert "skyforecast app: stopped" in server.log.read_text()
