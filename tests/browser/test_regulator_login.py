"""A regulator signs in on a phone and a desktop in two steps, the password then the authenticator's
code; the code page and (debug mode only) the login page with the demo regulator's QR code fit the
screen, wrap no glyph and pass axe, like every page of the sweep (test_every_page.check)."""

import re

import pytest
from playwright.sync_api import expect

from core.services import user_totp_set
from demo.seed import DEMO_TOTP_SECRET, REGULATOR
from tests.browser.support import DESKTOP, NARROW_PHONE
from tests.browser.test_every_page import check
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [NARROW_PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_regulator_signs_in_with_the_password_then_the_code(browser, viewport):
    inspector = UserFactory(role="regulator", username="inspector")
    page = browser.page(viewport=viewport, mobile=viewport is NARROW_PHONE)
    page.goto(f"{browser.base_url}/login/?next=/r/complaints/")
    page.fill("#id_username", inspector.username)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/login/code/$"))
    expect(page.get_by_test_id("login-code-user")).to_have_text("inspector")
    expect(page.locator("#id_code")).to_have_attribute("autocomplete", "one-time-code")
    assert check(page) == []
    browser.shot(page, "code-page")

    page.fill("#id_code", totp_code(inspector, offset_steps=10))  # five minutes away: wrong
    page.click("main form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("动态验证码错误或已被使用")
    assert check(page) == []
    browser.shot(page, "wrong-code")

    page.wait_for_timeout(1100)  # the authenticator's slow-down after a wrong code: one second
    page.fill("#id_code", totp_code(inspector))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/r/complaints/$"))
    browser.shot(page, "signed-in")
    assert browser.page_errors == []


def test_in_debug_mode_the_login_page_shows_the_demo_authenticator_and_still_fits(browser, settings):
    regulator = UserFactory(role="regulator", username=REGULATOR)
    user_totp_set(user=regulator, secret=DEMO_TOTP_SECRET)
    settings.DEBUG = True
    page = browser.page(viewport=NARROW_PHONE)
    page.goto(f"{browser.base_url}/login/")
    hint = page.get_by_test_id("debug-login-hint")
    expect(hint).to_be_visible()
    expect(hint.locator("svg.qr")).to_be_visible()
    expect(page.get_by_test_id("debug-login-uri")).to_contain_text(DEMO_TOTP_SECRET)
    assert check(page) == []
    browser.shot(page, "login-debug-demo-qr")

    settings.DEBUG = False
    page.goto(f"{browser.base_url}/login/")
    expect(page.get_by_test_id("debug-login-hint")).to_have_count(0)
