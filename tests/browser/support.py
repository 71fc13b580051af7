"""What the browser tests share: the Chromium they launch, a person's page, screenshots, the
accessibility facts of a page, and a Celery worker in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "var" / "screenshots")

PHONE = {"width": 390, "height": 844}
NARROW_PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
TIMEOUT_MS = 15_000


def unavailable(reason: str) -> None:
    """No browser here: skip, or fail under REQUIRE_BROWSER=1."""
    if REQUIRE_BROWSER:
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Browser:
    """One test's Chromium: a page per person, screenshots, and what went wrong in the pages."""

    browser: Any
    base_url: str
    shots: Path
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    _count: int = 0

    def page(self, *, viewport: dict[str, int], locale: str = "zh-CN", mobile: bool = True):
        """A new person (own cookies) on a new page. Confirm dialogs are accepted and recorded."""
        context = self.browser.new_context(
            viewport=viewport, locale=locale, timezone_id="Asia/Shanghai", is_mobile=mobile, has_touch=mobile
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("dialog", self._accept)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        return page

    def _accept(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def shot(self, page, name: str) -> Path:
        """Save a full-page screenshot, numbered in the order the test takes them."""
        self._count += 1
        path = self.shots / f"{self._count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def log_in(self, page, username: str, password: str) -> None:
        """Log in on the login page; a regulator then types its authenticator's current code."""
        page.goto(f"{self.base_url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/((c|m|r)/|login/code/)"))
        if page.url.endswith("/login/code/"):
            from core.models import User
            from tests.factories import totp_code

            page.fill("#id_code", totp_code(User.objects.get(username=username)))
            page.click("main form button[type=submit]")
            page.wait_for_url(re.compile(r"/r/"))


# What a page offers to assistive technology and to a narrow screen: its language, the form
# controls a person can see that have no label, and whether anything is wider than the window.
PAGE_FACTS_JS = """(screenWidth) => {
  const seen = el => {
    const style = getComputedStyle(el);
    return style.visibility !== "hidden" && style.display !== "none" && el.getClientRects().length > 0;
  };
  const named = el => {
    if ([...(el.labels || [])].some(label => label.textContent.trim())) return true;
    if ((el.getAttribute("aria-label") || "").trim()) return true;
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    return ids.some(id => ((document.getElementById(id) || {}).textContent || "").trim());
  };
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter(el => el.type !== "hidden" && seen(el) && !named(el))
    .map(el => el.outerHTML.slice(0, 160));
  // Hints for a failure: the innermost elements that reach past the screen's edge outside a
  // scrolling table (or escape it, being absolutely positioned).
  const past = new Set([...document.querySelectorAll("body *")]
    .filter(el => seen(el) && el.getBoundingClientRect().right > screenWidth + 1)
    .filter(el => !el.closest(".table-wrap") || ["absolute", "fixed"].includes(getComputedStyle(el).position)));
  const wide = [...past].filter(el => ![...el.children].some(child => past.has(child)))
    .slice(0, 5)
    .map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + el.className : ""));
  return {
    lang: document.documentElement.getAttribute("lang") || "",
    unlabelled,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    wide,
  };
}"""


def assert_accessible(page, *, fits: bool = False) -> dict[str, Any]:
    """The page has ``<html lang>`` and a label on every visible form control; with ``fits``,
    nothing makes it scroll sideways at the window's width."""
    width = page.viewport_size["width"]
    facts = page.evaluate(PAGE_FACTS_JS, width)
    assert facts["lang"], f"{page.url}: <html> has no lang"
    assert not facts["unlabelled"], f"{page.url}: form controls without a label: {facts['unlabelled']}"
    if fits:
        # A phone lays a page that is too wide out in a wider window (and zooms it out): compare
        # with the screen's width too, not only with the window's.
        assert facts["scrollWidth"] <= facts["innerWidth"] == width, (
            f"{page.url}: {facts['scrollWidth']}px wide, laid out {facts['innerWidth']}px wide on a "
            f"{width}px screen; too wide: {facts['wide']}"
        )
    return facts


def wait_until(check, *, timeout: float, interval: float = 0.25, message=None) -> None:
    """Poll ``check()`` until it is true; after ``timeout`` seconds fail with ``message`` (a callable's result)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(message() if callable(message) else message or f"still false after {timeout}s")
        time.sleep(interval)


# --- a real Celery worker --------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen
    queue: str
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Warm shutdown (the task in hand finishes), then wait; kill it if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
