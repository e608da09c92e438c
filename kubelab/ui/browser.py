"""Headless Chromium for the UI's tests, benchmarks and doc screenshots: Debian's `chromium`
and `chromium-driver` packages driven by Selenium, never a downloaded browser.

Why here and not in tests/: the doc screenshots (docs/img/ui-*.png) are made with the same
driver as the e2e tests, by `python -m kubelab.ui.browser URL PNG`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
WINDOW = (1366, 768)  # the classroom projector


def binaries() -> tuple[str, str] | None:
    browser = next((b for b in CHROMIUM if os.path.exists(b)), None)
    driver = next((d for d in CHROMEDRIVER if os.path.exists(d)), None)
    return (browser, driver) if browser and driver else None


def chromium(*, width: int = WINDOW[0], height: int = WINDOW[1]):
    """A headless Chromium WebDriver (caller quits it). Its profile lives in a temp dir removed
    by `quit` (Selenium's service cleans its own; ours is removed by the caller's `close`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    found = binaries()
    if not found:
        raise RuntimeError("Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    browser, driver = found
    profile = tempfile.mkdtemp(prefix="kubelab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--disable-default-apps", "--hide-scrollbars",
              f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    d._kubelab_profile = profile  # type: ignore[attr-defined]
    return d


def close(d) -> None:
    try:
        d.quit()
    finally:
        shutil.rmtree(getattr(d, "_kubelab_profile", ""), ignore_errors=True)


def screenshot(url: str, path: str, *, width: int = WINDOW[0], height: int = WINDOW[1], wait_css: str | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    d = chromium(width=width, height=height)
    try:
        d.get(url)
        if wait_css:
            WebDriverWait(d, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, wait_css)))
        d.save_screenshot(path)
    finally:
        close(d)


if __name__ == "__main__":
    screenshot(sys.argv[1], sys.argv[2], wait_css=sys.argv[3] if len(sys.argv) > 3 else None)
