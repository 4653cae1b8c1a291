"""Open a report in a real headless Chromium (Selenium with Debian's ``chromium`` and ``chromium-driver``),
wait for every plot, read what the browser drew, and take a full-page screenshot.

Used by the browser test and by analyses/report_screenshot.py (the README's picture). Selenium is a
development dependency (``pip install -e '.[dev]'``); the browser comes from the system
(``apt-get install -y chromium chromium-driver``), never downloaded.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import time
from pathlib import Path

from workbench.errors import WorkbenchError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAME = "chromedriver"

# Per plotly div: whether plotly drew it (its layout exists and an SVG is in it), and per trace whether it is
# shown (a slider hides all layers but one: plotly computes only what it shows) and the number
# of points (x/y), rows (z) or table columns (cells), read from the data plotly decoded (``_fullData``).
READ_PLOTS = """
const size = v => (v && v.length) || 0;
return Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => ({
  id: div.id,
  drawn: Boolean(div._fullLayout) && div.querySelector('svg.main-svg') !== null,
  traces: (div._fullData || []).map(t => ({type: t.type, visible: t.visible === true,
    size: Math.max(size(t.x), size(t.y), size(t.z), t.cells ? size(t.cells.values) : 0)}))
}));
"""
READ_SECTIONS = "return Array.from(document.querySelectorAll('section')).map(s => s.id);"


@dataclasses.dataclass
class Rendered:
    sections: list[str]  # section ids in page order
    plots: list[dict]  # READ_PLOTS per plotly div
    errors: list[str]  # console messages at level SEVERE (errors and uncaught exceptions)


def missing_browser() -> str | None:
    """Why no check can run here (None when Chromium, its driver and Selenium are all installed)."""
    if not any(shutil.which(name) for name in CHROMIUM_NAMES) or not shutil.which(DRIVER_NAME):
        return "no Chromium or chromedriver on PATH: `apt-get install -y chromium chromium-driver`"
    if importlib.util.find_spec("selenium") is None:
        return "Selenium is not installed: `pip install -e '.[dev]'`"
    return None


class Browser:
    """A headless Chromium; ``open`` a page file, read it, ``screenshot`` it."""

    def __init__(self, width: int = 1400):
        reason = missing_browser()
        if reason:
            raise WorkbenchError(f"cannot open a browser: {reason}")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = next(shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n))
        # No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={width},1000", "--hide-scrollbars"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.width = width
        self.driver = webdriver.Chrome(service=Service(shutil.which(DRIVER_NAME)), options=options)

    def open(self, page: Path, timeout: float = 60.0) -> Rendered:
        """Load ``page`` and wait until plotly has drawn every figure (or ``timeout`` seconds have passed)."""
        self.driver.get(Path(page).resolve().as_uri())
        deadline = time.monotonic() + timeout
        while True:
            plots = self.driver.execute_script(READ_PLOTS)
            if all(plot["drawn"] for plot in plots) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        errors = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        return Rendered(self.driver.execute_script(READ_SECTIONS), plots, errors)

    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        """The whole page (up to ``max_height`` pixels) as a PNG."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(self.width, min(height, max_height))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return Path(path)

    def close(self) -> None:
        self.driver.quit()
