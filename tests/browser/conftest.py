"""Headless Chromium for the console tests: Debian's ``/usr/bin/chromium`` (or
``C2M_SYNC_CHROMIUM``) driven by the Playwright driver; no browser download. A missing browser
skips the browser tests, except under ``CI=true`` where it fails them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, sync_playwright

from tests.conftest import unavailable

CHROMIUM = os.environ.get("C2M_SYNC_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        unavailable("Chromium", f"{CHROMIUM} not found (set C2M_SYNC_CHROMIUM)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Error as error:
            unavailable("Chromium", f"{CHROMIUM} does not start: {error.message}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)  # every wait in the browser is bounded
    try:
        yield context.new_page()
    finally:
        context.close()
