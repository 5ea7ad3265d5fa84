"""The bundled default model must be found after a non-editable install, not only in a source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_wheel_ships_the_weights_folder_as_package_data(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheel_dir), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("skyforecast-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)

    code = "import skyforecast.weights as w; print(w.bundled_weights_dir())"
    env = dict(os.environ, PYTHONPATH=str(site))
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    bundled = Path(found)
    assert bundled.is_relative_to(site), found
    shipped = sorted(p.name for p in (REPO / "weights").iterdir() if p.is_file())
    assert shipped and sorted(p.name for p in bundled.iterdir() if p.is_file()) == shipped
