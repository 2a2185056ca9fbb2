# Headless Chromium for the browser tests and the screenshots: Debian's chromium and
# chromedriver, driven by Selenium with both paths given, so nothing is downloaded.
# Rules: every wait is WebDriverWait-bounded; every browser started is quit by its owner.
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable, Optional

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
WAIT = 10.0
PAGE_STATE_SCRIPT = """
const text = (id) => (document.getElementById(id) || {}).innerText;
const lines = Array.from(document.querySelectorAll('#messages li')).slice(-12);
return JSON.stringify({status: text('status'), room: text('room-title'),
  login_error: text('login-error'), lines: lines.map((li) => li.innerText)});
"""


def find(candidates: Any) -> Optional[str]:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return None


def missing_reason() -> Optional[str]:
    """Why browser tests cannot run here, or None if they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if find(CHROMIUM_CANDIDATES) is None:
        return "no chromium binary (apt-get install chromium chromium-driver)"
    if find(DRIVER_CANDIDATES) is None:
        return "no chromedriver (apt-get install chromium-driver)"
    return None


class Browser:
    """One headless Chromium; tabs are pages of the web client."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="ktnchat-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = find(CHROMIUM_CANDIDATES) or ""
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(flag)
        service = Service(executable_path=find(DRIVER_CANDIDATES) or "")
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        except TimeoutException as exc:
            raise TimeoutException(f"waited {timeout:g} s; the page: {self.describe()}") from exc

    def describe(self) -> str:
        """What the current tab shows (its status and last lines), for a failed wait."""
        try:
            return str(self.driver.execute_script(PAGE_STATE_SCRIPT))
        except Exception as exc:  # the page itself may be what broke
            return f"(could not read the page: {exc!r})"

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
