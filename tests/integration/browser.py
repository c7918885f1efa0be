"""Headless Chromium for the browser tests: Debian's ``chromium`` and ``chromedriver``, which
``./dev`` installs, driven by Selenium."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (./dev installs them)",
)
"""Checked before any fixture starts the broker or Argilla."""


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium WebDriver with its profile in ``profile``; on the way out it saves
    ``last-page.png`` beside the profile, for whoever debugs a failure."""
    assert CHROMIUM and CHROMEDRIVER  # or the test is skipped
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.save_screenshot(str(profile.parent / "last-page.png"))
        driver.quit()
