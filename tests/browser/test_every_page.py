"""Every page × role at a 390 px phone and a 1366 px desktop: nothing wider than the window, no text
wrapped a glyph a line, no serious or critical axe-core violation, and a screenshot of each.

The pages are the URL resolver's (``page_routes()`` of tests/security/test_csrf.py: everything
outside /api/, /admin/, the health checks and /i18n/), each object page with every object of the
city of tests/security/world.py that fits its URL parameter, so a new page is swept without a line
here. A path is a page for a role when Django's test client gets it as HTML with 200 for that role
(anonymous: the public pages); redirects, refusals, POST-only endpoints (405) and downloads (PDFs,
CSV) are left out. The city is built once; one Chromium page visits everything, a role at a time
(its session cookie swapped in), first at 390 × 844 then at 1366 × 768.

The checks, in the page (``SWEEP_JS``):

- overflow: ``document.documentElement.scrollWidth`` is at most the screen's width (+1 px for
  sub-pixel rounding; the screen's, not ``innerWidth``: a phone lays a page that is too wide out in
  a wider window); on failure the innermost elements past the right edge are named.
- glyph wrap: each visible text node of two or more characters (outside SVG, ``<select>`` and
  boxes clipped away or a few pixels small: visually hidden) is measured with
  ``Range.getClientRects()``, one rectangle per line fragment, the lines being the distinct rounded
  tops (element height against line height would miss a text beside others in its element, and
  be fooled by padding). A text is flagged when it takes two lines
  or more and its widest line is narrower than two glyphs (2 × its font size: a column squeezed
  to a character), or when a short text (at most 16 characters: a date, a badge, a button) takes
  three lines or more. A paragraph that wraps normally has a wide line and is never flagged.
- tables fit: no ``.table-wrap`` scrolls sideways (a phone shows cards, a desktop the whole table).
- axe-core (static/vendor/axe.min.js, injected by the test only): the violations of impact
  "serious" or "critical".

Failures are collected over the whole sweep and reported together, one line each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import time_machine
from django.test import Client
from playwright.sync_api import expect

from tests.browser.support import ROOT
from tests.factories import sign_in
from tests.security.test_csrf import page_paths
from tests.security.world import NOW, build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

logger = logging.getLogger(__name__)
AXE = ROOT / "static" / "vendor" / "axe.min.js"
ROLES = ("anonymous", "consumer", "merchant", "regulator")
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 768}}

SWEEP_JS = """(width) => {
  // width: the screen's (a phone lays a page that is too wide out in a wider window, and zooms out)
  const shown = el => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.display === "none" || style.visibility === "hidden") return false;
      // visually hidden (.visually-hidden, a phone's table header): clipped away
      if (style.position === "absolute" && style.clip && style.clip !== "auto") return false;
    }
    return el.getClientRects().length > 0;
  };
  const skipped = el => el.closest("svg, select, script, style, noscript, template, title, .visually-hidden");
  // Overflow, with the innermost elements past the right edge as hints.
  const past = new Set([...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 1 && shown(el)));
  const named = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const wide = [...past].filter(el => ![...el.children].some(child => past.has(child))).slice(0, 5).map(named);
  // Text wrapped a glyph a line.
  const squeezed = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if ([...text].length < 2 || !el || skipped(el) || !shown(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width < 4 || box.height < 4) continue;  // a deliberately hidden box
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    const lines = new Set(rects.map(r => Math.round(r.top))).size;
    if (lines < 2) continue;
    const widest = Math.max(...rects.map(r => r.width));
    const glyph = parseFloat(getComputedStyle(el).fontSize) || 16;
    if (widest < 2 * glyph || ([...text].length <= 16 && lines >= 3)) {
      squeezed.push(`${named(el)} "${text.slice(0, 30)}" on ${lines} lines, widest ${Math.round(widest)}px`);
    }
  }
  // A table wider than its .table-wrap: it fits neither a phone (cards) nor a 1366 px desktop.
  const scrolling = [...document.querySelectorAll(".table-wrap")]
    .filter(el => shown(el) && el.scrollWidth > el.clientWidth + 1)
    .map(el => `${(el.querySelector("table") || el).id || "table"} ${el.scrollWidth}px in ${el.clientWidth}px`);
  const scrollWidth = document.documentElement.scrollWidth;
  return {scrollWidth, width, wide, squeezed: squeezed.slice(0, 8), scrolling};
}"""

AXE_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
    `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}` +
    (v.nodes.length > 3 ? ` (+${v.nodes.length - 3})` : ""));
}"""


@pytest.fixture
def city(transactional_db) -> Iterator:
    """The security tests' city; the clock starts at its ``NOW`` and runs (the pages' countdowns)."""
    with time_machine.travel(NOW, tick=True):
        yield build_world()


def html_pages(world) -> dict[str, list[str]]:
    """role -> the paths that role gets as an HTML page (200)."""
    paths = page_paths(world)
    pages: dict[str, list[str]] = {}
    for role in ROLES:
        client = Client()
        if world.users[role] is not None:
            sign_in(client, world.users[role])
        pages[role] = [
            path
            for path in paths
            if (response := client.get(path)).status_code == 200
            and response["Content-Type"].startswith("text/html")
            and b"<html" in response.content  # a page, not an htmx fragment of one
        ]
    return pages


def session_cookie(world, role: str, base_url: str) -> list[dict]:
    if world.users[role] is None:
        return []
    client = Client()
    sign_in(client, world.users[role])
    return [{"name": name, "value": morsel.value, "url": base_url} for name, morsel in client.cookies.items()]


def shot_name(role: str, path: str, width: str) -> str:
    slug = path.strip("/").replace("/", "_") or "home"
    return f"{role}--{slug}--{width}.png"


def check(page) -> list[str]:
    """What is wrong with the page in the window: too wide, a table scrolling, text a glyph a
    line, serious or critical axe violations."""
    failures = []
    facts = page.evaluate(SWEEP_JS, page.viewport_size["width"])
    if facts["scrollWidth"] > facts["width"] + 1:
        failures.append(f"{facts['scrollWidth']}px wide; too wide: {facts['wide']}")
    if facts["scrolling"]:
        failures.append(f"a table scrolls sideways: {facts['scrolling']}")
    if facts["squeezed"]:
        failures.append(f"text a glyph a line: {facts['squeezed']}")
    page.add_script_tag(path=str(AXE))
    serious = page.evaluate(AXE_JS)
    if serious:
        failures.append(f"axe: {serious}")
    return failures


def test_every_page_fits_a_phone_and_a_desktop_wraps_no_glyph_and_passes_axe(browser, city, record_property):
    started = time.monotonic()
    pages = html_pages(city)
    assert pages["anonymous"], "no public page found"
    assert all(pages[role] for role in ROLES), {role: len(found) for role, found in pages.items()}

    page = browser.page(viewport=WIDTHS["phone"])
    failures: list[str] = []
    visits = 0
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        for role in ROLES:
            page.context.clear_cookies()
            page.context.add_cookies(session_cookie(city, role, browser.base_url))
            for path in pages[role]:
                where = f"{role} {path} @{viewport['width']}"
                response = page.goto(f"{browser.base_url}{path}", wait_until="load")
                visits += 1
                if response is None or not response.ok:
                    failures.append(f"{where}: answered {response and response.status}")
                    continue
                failures += [f"{where}: {failure}" for failure in check(page)]
                page.screenshot(path=str(browser.shots / shot_name(role, path, width)), full_page=True)

    elapsed = time.monotonic() - started
    record_property("page_visits", visits)
    record_property("sweep_seconds", round(elapsed))
    logger.info("swept %d page visits in %.0fs; screenshots in %s", visits, elapsed, browser.shots)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
    assert browser.page_errors == []
    assert len(list(browser.shots.glob("*.png"))) == visits


def test_elder_mode_is_remembered_large_and_clean_on_every_consumer_page(browser, city):
    """长辈版: the consumer turns it on from the header, it stays on after a reload and a log-out,
    the text is at least 20 px, the toggle a 44 px target, and every consumer page still fits a
    390 px phone, wraps no glyph and passes axe."""
    pages = html_pages(city)["consumer"]
    page = browser.page(viewport=WIDTHS["phone"])
    page.context.add_cookies(session_cookie(city, "consumer", browser.base_url))
    page.goto(f"{browser.base_url}/c/cards/")
    html = page.locator("html")
    toggle = page.get_by_test_id("elder-toggle")
    expect(html).not_to_have_class("elder")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(html).to_have_class("elder")
    assert page.url.endswith("/c/cards/")
    page.reload()
    expect(html).to_have_class("elder")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 20
    assert toggle.bounding_box()["height"] >= 44
    browser.shot(page, "elder-cards")

    failures = []
    for path in pages:
        response = page.goto(f"{browser.base_url}{path}")
        assert response is not None and response.ok, path
        expect(html).to_have_class("elder")
        failures += [f"elder {path} @390: {failure}" for failure in check(page)]
        page.screenshot(path=str(browser.shots / shot_name("elder", path, "phone")), full_page=True)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)

    # Remembered beyond the session: after logging out, the log-in page is still large.
    page.goto(f"{browser.base_url}/c/cards/")
    page.click("header form[action$='/logout/'] button")
    page.wait_for_url("**/login/")
    expect(html).to_have_class("elder")
    assert check(page) == [], "the log-in page in 长辈版"
    # And off again.
    page.get_by_test_id("elder-toggle").click()
    expect(html).not_to_have_class("elder")
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") < 20
    assert browser.page_errors == []
