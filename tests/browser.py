"""Debian's chromium driven through its chromedriver with Selenium, for the demo web chat's tests.

Why it exists: the page must be tried in a real browser at a phone's size, and only a browser
the system provides can run here (a tool that downloads a browser of its own cannot). When
chromium or chromedriver is missing, root with apt-get installs them (bounded); anyone else gets
a skip that says what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_SECONDS = 300  # each apt-get step
PHONE = {"width": 390, "height": 844, "pixelRatio": 2.0}  # an iPhone 12-14's screen in CSS pixels


def _missing() -> list[str]:
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]


def need_chromium() -> None:
    """Chromium and chromedriver are there (installed now if root can), else the test is skipped."""
    pytest.importorskip("selenium", reason="selenium is in the test extra: python run.py test installs it")
    if _missing() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]
        for command in (install, ["apt-get", "update", "-qq"], install):
            try:
                done = subprocess.run(command, env=env, capture_output=True, timeout=INSTALL_SECONDS, check=False)
            except subprocess.TimeoutExpired:
                break
            if command is install and done.returncode == 0:
                break
    missing = _missing()
    if missing:
        pytest.skip(f"needs Debian's chromium and chromedriver ({', '.join(missing)} missing): "
                    "apt-get install chromium chromium-driver")


def phone_browser(profile: Path) -> Any:
    """A headless chromium with a phone's viewport, nothing of its own on the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=500,900"):
        options.add_argument(argument)
    # headless chromium's window is 500 px wide at least: the phone's width comes from device metrics
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
