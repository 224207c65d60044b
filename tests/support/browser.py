"""Open a page in headless Chromium (Debian's package) through Selenium and Debian's chromedriver:
wait for it to load, ask whether every image decoded, collect console errors, and take a screenshot.

Both binaries come from Debian (``make browser``). Selenium is given their paths, so it never starts
Selenium Manager, which would try to download a driver (there is no network on the build machines).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WINDOW = (1200, 3400)  # tall enough for a report's screenshot in one piece
SYSTEM_CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromedriver() -> str | None:
    """Debian's chromium-driver, which matches Debian's chromium; else any chromedriver on PATH."""
    return SYSTEM_CHROMEDRIVER if Path(SYSTEM_CHROMEDRIVER).is_file() else shutil.which("chromedriver")


def browser_missing() -> str | None:
    """Why the browser test cannot run here (one sentence), or None when it can."""
    if chromium() is None or chromedriver() is None:
        return ("Chromium or its driver is not installed here; `make test` installs Debian's chromium and "
                "chromium-driver when it runs as root (make browser)")
    try:
        import selenium  # noqa: F401
    except ModuleNotFoundError:
        return "Selenium is not installed: pip install -e '.[dev]'"
    return None


@dataclass
class PageCheck:
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    title: str = ""


IMAGES_SCRIPT = "return Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))"


def open_page(path: Path, screenshot: Path) -> PageCheck:
    """Load ``path`` (a local HTML file) and report on it; a screenshot of the window goes to ``screenshot``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="automl-tl-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium())
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, for get_log
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver()), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(path.resolve().as_uri())  # returns once the load event has fired
        images = driver.execute_script(IMAGES_SCRIPT)
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        screenshot.write_bytes(driver.get_screenshot_as_png())
        return PageCheck(images=len(images), broken_images=[i["alt"] for i in images if not i["ok"]],
                         console_errors=errors, title=driver.title)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
