"""Headless Chromium for the console's tests, driven by selenium (Debian's chromium and
chromium-driver; .ci/run installs them where apt-get exists). Every call blocks, so tests make
them from a worker thread (`in_browser`) while the bot runs on the trio loop."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

T = TypeVar("T")

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium",
                             shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p and Path(p).exists()), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver")
               if p and Path(p).exists()), None)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1100")

needs_chromium = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                    reason="no chromium / chromedriver on this machine")


@contextmanager
def open_chromium() -> Iterator[Any]:
    """A fresh headless Chromium with its own profile directory, quit on exit."""
    from selenium import webdriver

    assert CHROMIUM is not None and DRIVER is not None
    profile = tempfile.mkdtemp(prefix="crucible-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def in_browser(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


async def wait_page(driver: Any, predicate: Callable[[Any], bool], what: str,
                    timeout: float = 30.0) -> None:
    """Poll the page (through the driver, in a thread) until `predicate(driver)` holds."""
    with trio.move_on_after(timeout):
        while not await in_browser(lambda: predicate(driver)):
            await trio.sleep(0.2)
        return
    pytest.fail(f"the page never showed {what}")


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return str(driver.find_element(By.ID, element_id).text)


def click(driver: Any, by: str, value: str, attempts: int = 5) -> None:
    """Click an element, finding it again if the page re-rendered it meanwhile (stale), or
    once more a moment later if it is not on the page right now."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )
    for attempt in range(attempts):
        try:
            driver.find_element(by, value).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
