"""A real browser for the tests of `ganzoo view`: Chromium headless under selenium, and the view itself started
as the command a user types, in a process whose home, temporary and working folders are the test's own.

Chromium and its driver come from the system (Debian: apt-get install chromium chromium-driver); selenium
never downloads a browser here. GANZOO_CHROMIUM and GANZOO_CHROMEDRIVER point at others.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1100"]


def executable(variable: str, *names: str) -> str:
    path = os.environ.get(variable) or next((p for p in map(shutil.which, names) if p), None)
    if not path:
        raise AssertionError(f"no {names[0]} found: install Chromium and its driver (Debian: apt-get install "
                             f"chromium chromium-driver) or set {variable}")
    return path


def chromium(folder: Path):
    """A fresh headless Chromium (its profile, downloads and home under `folder`) that keeps its console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    home, downloads = folder / "home", folder / "downloads"
    for d in (home, downloads):
        d.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = executable("GANZOO_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={folder / 'profile'}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable("GANZOO_CHROMEDRIVER", "chromedriver"),
                      env={**os.environ, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.downloads = downloads
    return driver


def wait_for(check, timeout: float, what: str, interval: float = 0.1):
    """Poll `check` until it returns something true; its value, or an AssertionError naming `what`."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


def decode(uri: str) -> np.ndarray:
    """The pixels of a data:image/png;base64 URI."""
    assert uri.startswith("data:image/png;base64,"), uri[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


class ViewServer:
    """`ganzoo view PATHS --port PORT` in its own process, with HOME, TMPDIR and the working folder under
    `sandbox` (all empty), so a test can see that it writes nothing anywhere."""

    def __init__(self, paths, sandbox: Path, port: int, log: Path):
        self.sandbox = sandbox
        self.paths = [Path(p) for p in paths]
        self.dirs = {name: sandbox / name for name in ("home", "tmp", "cwd")}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(self.dirs["home"]), "TMPDIR": str(self.dirs["tmp"]),
               "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "ganzoo", "view", *map(str, paths), "--port",
                                         str(port)], cwd=self.dirs["cwd"], env=env, stdout=open(log, "w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.url = wait_for(self._address, 300, "ganzoo view to print its address", interval=0.25)
        self.ready_s = time.monotonic() - self.started

    def _address(self):
        if self.process.poll() is not None:
            raise AssertionError(f"ganzoo view exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
        found = re.search(r"ganzoo view: (http://\S+)", self.log.read_text())
        return found and found.group(1)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def written(self) -> list[str]:
        """Every file and folder under the sandbox's home, temporary and working folders."""
        return sorted(str(p.relative_to(self.sandbox)) for d in self.dirs.values() for p in d.rglob("*"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tab(driver, name: str) -> None:
    """Open one of the app's tabs by its title."""
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.CSS_SELECTOR, "#tabs button[role=tab]")
    next(b for b in buttons if b.text == name).click()
    time.sleep(0.3)
