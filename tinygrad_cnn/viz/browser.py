"""Headless Chromium for viz's HTML pages: the DOM after the page's script ran, and screenshots.

The tests check the backprop page in a real browser with these, and the docs' screenshots are taken
with them (Debian's `chromium` package; `apt-get install chromium`). Each call starts a browser
(a second or two) with a profile folder of its own, so calls may run side by side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) program on PATH, or None."""
    return next((path for path in map(shutil.which, _NAMES) if path), None)


def page_url(page: str | os.PathLike, step: int | None = None) -> str:
    """file:///.../page.html, with #step=K when `step` is given."""
    url = Path(page).resolve().as_uri()
    return url if step is None else f"{url}#step={step}"


def dump_dom(page: str | os.PathLike, step: int | None = None, timeout: float = 60) -> str:
    """The page's DOM as HTML once it has loaded and its script has run, opened at `#step=step`."""
    return _run(["--dump-dom", page_url(page, step)], timeout)


def screenshot(page: str | os.PathLike, png: str | os.PathLike, step: int | None = None,
               size: tuple[int, int] = (1200, 800), timeout: float = 60) -> Path:
    """A PNG of the page in a window of `size` (width, height) pixels, opened at `#step=step`."""
    png = Path(png).resolve()
    _run([f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", page_url(page, step)], timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def _run(args: list[str], timeout: float) -> str:
    program = find_chromium()
    if program is None:
        raise FileNotFoundError("no chromium on PATH; install it (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="tinygrad-cnn-chromium-") as profile:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                 "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}"]
        done = subprocess.run([program, *flags, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed (exit status {done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout
