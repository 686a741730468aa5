"""The admin in a real browser: Debian's Chromium driven by Selenium through Debian's
chromedriver, against the app served on loopback (pytest-django's ``live_server``).

``make test`` installs both packages (Makefile, ``install-browser``); without them these
tests fail rather than skip, so CI cannot pass without the proof. Each test saves
screenshots of the pages it sees into ``SCREENSHOTS_DIR`` (default
``test-artifacts/screenshots``, which CI keeps) for a person to look at.
"""

import base64
import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.apps import apps
from django.core.cache import cache
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "test-artifacts" / "screenshots")
WIDTH, HEIGHT = 1280, 900
WAIT = 10  # seconds for a page or a script to show what the test waits for

# The machine's network is closed: without these Chromium keeps calling Google's hosts.
# --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
FLAGS = (
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
    "--disable-default-apps",
    f"--window-size={WIDTH},{HEIGHT}",
)


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{' or '.join(names)} is not installed: the browser tests need Debian's chromium and "
        "chromium-driver (`make test` installs them; README, Tests)."
    )


@pytest.fixture(scope="session")
def chromium():
    options = Options()
    options.binary_location = _binary("chromium", "chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="velro-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    # The driver is given, so Selenium Manager never tries to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary("chromedriver")))
    driver.set_page_load_timeout(30)
    # The viewport itself is WIDTH x HEIGHT (a window of that size is smaller inside).
    metrics = {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """The test's view of Chromium: open a path of the live server, find, wait, and save a
    full-page screenshot."""

    def __init__(self, driver, base_url: str, test_name: str):
        self.driver = driver
        self.base_url = base_url
        self.test_name = test_name
        self.shots = 0

    def open(self, path: str):
        self.driver.get(self.base_url + path)
        return self

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def find(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, selector: str, timeout: float = WAIT):
        return WebDriverWait(self.driver, timeout).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector))
        )

    def wait_until(self, condition, timeout: float = WAIT, message: str = ""):
        return WebDriverWait(self.driver, timeout).until(lambda _driver: condition(), message)

    def fill(self, selector: str, text: str):
        field = self.find(selector)
        field.clear()
        field.send_keys(text)
        return field

    def submit(self, selector: str = "input[type=submit], button[type=submit]"):
        """Click a submit button and wait for the next page.

        The old page is marked on ``window`` before the click and the wait ends when a
        loaded document without the mark answers. (Waiting for the button to go stale
        polls a node of a document being torn down, and Chromium sometimes answers that
        with an inspector error instead of "stale element" — CI saw it once.)
        """
        button = self.find(selector)
        self.driver.execute_script("window.velroPageBeforeSubmit = true;")
        button.click()
        WebDriverWait(self.driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return window.velroPageBeforeSubmit === undefined && document.readyState === 'complete';"
            ),
            f"no new page after submitting {selector!r}",
        )

    def screenshot(self, name: str) -> Path:
        """The whole page, beyond the window (Chrome's DevTools protocol)."""
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{self.test_name}-{self.shots:02d}-{name}.png"
        width, height = self.driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 16_000), "scale": 1},
            },
        )
        target.write_bytes(base64.b64decode(shot["data"]))
        return target

    def too_tall(self, factor: float = 3.0) -> list[str]:
        """Elements taller than ``factor`` viewport heights (a layout glitch), as
        ``tag#id.class (height px)``."""
        return self.driver.execute_script(
            """
            const limit = window.innerHeight * arguments[0];
            return Array.from(document.querySelectorAll('body *'))
              .filter(e => e.getBoundingClientRect().height > limit)
              .map(e => {
                const height = Math.round(e.getBoundingClientRect().height);
                return `${e.tagName.toLowerCase()}#${e.id}.${e.className} (${height} px)`;
              });
            """,
            factor,
        )

    def login(self, email: str, password: str = PASSWORD):
        self.open("/admin/login/?next=/admin/")
        self.fill("#id_username", email)
        self.fill("#id_password", password)
        self.submit()


@pytest.fixture
def browser(chromium, live_server, request, settings):
    """Chromium on the live server, with no cookies from an earlier test."""
    settings.PASSWORD_BREACH_CHECK = False
    cache.clear()  # rate-limit counters and cached figures are committed rows
    chromium.delete_all_cookies()
    yield Browser(chromium, live_server.url, request.node.name)
    chromium.get("about:blank")
    cache.clear()


@pytest.fixture
def seeds(transactional_db):
    """The AI model catalog and the preset library as the migrations seed them. A live
    server needs committed rows, and the flush after an earlier transactional test has
    emptied those tables: the seed migrations' own functions put them back."""
    from generations.models import AIModel
    from stylestacks.models import StylePreset

    if not AIModel.objects.exists():
        for name in (
            "generations.migrations.0003_seed_catalog",
            "generations.migrations.0009_parameter_defaults_within_limits",
        ):
            module = importlib.import_module(name)
            (module.seed if hasattr(module, "seed") else module.fix_defaults)(apps, None)
    if not StylePreset.objects.exists():
        importlib.import_module("stylestacks.migrations.0004_seed_presets").seed(apps, None)
