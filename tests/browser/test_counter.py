"""At the counter, on two phones (390 px): the holder opens their card page, which shows a QR code
and the counter code; the merchant types the code (or scans the QR code with the phone's camera),
sees whose card it is and starts the service; the holder then sees the service to confirm.

The camera path runs for real: Chromium's fake camera plays a Y4M video of the card page's QR code
(``--use-file-for-fake-video-capture``), and the merchant's page decodes it with the vendored jsQR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consumers.models import Redemption
from core.qr import QUIET_ZONE, qr_modules
from merchants.services.merchants import product_create
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, PHONE, TIMEOUT_MS, assert_accessible
from tests.cards import builders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIDEO_WIDTH, VIDEO_HEIGHT = 640, 480


def qr_video(text: str, path: Path, *, module_px: int = 8, frames: int = 10) -> Path:
    """A Y4M video (4:2:0, grey) of the QR code of ``text``, black on white, in the middle of the frame."""
    modules = qr_modules(text)
    side = (len(modules) + 2 * QUIET_ZONE) * module_px
    assert side <= VIDEO_HEIGHT, "the QR code does not fit the frame"
    luma = bytearray(b"\xeb" * (VIDEO_WIDTH * VIDEO_HEIGHT))  # white (video range)
    left, top = (VIDEO_WIDTH - side) // 2, (VIDEO_HEIGHT - side) // 2
    for row, cells in enumerate(modules):
        for col, dark in enumerate(cells):
            if not dark:
                continue
            x0, y0 = left + (col + QUIET_ZONE) * module_px, top + (row + QUIET_ZONE) * module_px
            for y in range(y0, y0 + module_px):
                luma[y * VIDEO_WIDTH + x0 : y * VIDEO_WIDTH + x0 + module_px] = b"\x10" * module_px  # black
    chroma = b"\x80" * (VIDEO_WIDTH // 2 * VIDEO_HEIGHT // 2)
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{VIDEO_WIDTH} H{VIDEO_HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + bytes(luma) + chroma + chroma)
    return path


def holder_with_a_card():
    gym = builders.merchant(name="阳光健身 Sunshine Gym")
    product = product_create(merchant=gym, name="10次私教课", kind="session_pack", price=100_000, sessions=10)
    holder = builders.consumer()
    card = builders.paid_card(product, holder)
    return gym, holder, card


def open_card_page(browser, holder, card):
    phone = browser.page(viewport=PHONE)
    browser.log_in(phone, holder.user.username, builders.PASSWORD)
    phone.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    expect(phone.locator("#counter-qr")).to_be_visible()
    code = phone.get_by_test_id("counter-code")
    expect(code).to_have_attribute("data-code", card.counter_code)
    expect(code).to_contain_text(f"{card.counter_code[:4]}-{card.counter_code[4:]}")
    phone.locator("#counter").scroll_into_view_if_needed()
    assert_accessible(phone, fits=True)
    return phone


def confirm_and_start(browser, till, holder, card, shot: str) -> None:
    expect(till.locator("#counter-card")).to_have_attribute("data-card-id", str(card.pk))
    expect(till.get_by_test_id("counter-holder")).to_have_text(holder.display_name)
    expect(till.get_by_test_id("counter-phone")).to_have_text("****" + holder.phone[-4:])
    expect(till.get_by_test_id("counter-product")).to_contain_text("10次私教课")
    expect(till.get_by_test_id("card-remaining")).to_contain_text("10")
    expect(till.get_by_test_id("card-state")).to_have_attribute("data-state", "cooling_off")
    assert not Redemption.objects.filter(card=card).exists()
    assert_accessible(till, fits=True)
    browser.shot(till, shot)
    till.click("#counter-start")
    till.wait_for_url(re.compile(r"/m/redemptions/$"))
    expect(
        till.locator("#redemptions-live [data-testid=redemption-row][data-state=awaiting_confirmation]")
    ).to_have_count(1)


def holder_sees_the_service(browser, phone, card) -> None:
    phone.reload()
    row = phone.locator("[data-testid=redemption-row][data-state=awaiting_confirmation]")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("redemption-confirm-button")).to_be_visible()
    assert_accessible(phone, fits=True)
    browser.shot(phone, "holder-service-to-confirm")
    assert Redemption.objects.get(card=card).state == Redemption.State.AWAITING_CONFIRMATION


def test_the_merchant_types_the_counter_code_sees_the_holder_and_starts_the_service(browser):
    gym, holder, card = holder_with_a_card()
    phone = open_card_page(browser, holder, card)
    browser.shot(phone, "holder-card-at-the-counter")
    shown = phone.get_by_test_id("counter-code").inner_text().split(":")[-1].strip()

    till = browser.page(viewport=PHONE)
    browser.log_in(till, gym.user.username, builders.PASSWORD)
    till.goto(f"{browser.base_url}/m/redemptions/")
    assert_accessible(till, fits=True)
    browser.shot(till, "merchant-counter-form")
    till.fill("#id_code", shown.lower())  # as typed on a phone keyboard
    till.click("#counter-find")
    confirm_and_start(browser, till, holder, card, "merchant-sees-the-holder")
    holder_sees_the_service(browser, phone, card)
    assert not browser.page_errors, browser.page_errors


def test_the_merchant_scans_the_qr_code_with_the_camera(browser, tmp_path):
    gym, holder, card = holder_with_a_card()
    phone = open_card_page(browser, holder, card)
    qr_text = phone.locator("#counter-qr").get_attribute("data-qr-text")
    assert qr_text and qr_text.startswith(browser.base_url)
    video = qr_video(qr_text, tmp_path / "qr.y4m")

    # The merchant's phone: a Chromium whose camera plays the video of the holder's QR code.
    camera_args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    chromium = browser.browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args)
    try:
        context = chromium.new_context(
            viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", is_mobile=True, has_touch=True
        )
        context.grant_permissions(["camera"], origin=browser.base_url)
        context.set_default_timeout(TIMEOUT_MS)
        till = context.new_page()
        errors: list[str] = []
        till.on("pageerror", lambda error: errors.append(str(error)))
        browser.log_in(till, gym.user.username, builders.PASSWORD)
        till.goto(f"{browser.base_url}/m/redemptions/")
        scan = till.locator("#counter-scan")
        expect(scan).to_be_visible()  # a camera can be asked for
        scan.click()
        till.wait_for_url(re.compile(r"/m/redemptions/counter/\?code="))
        confirm_and_start(browser, till, holder, card, "merchant-scanned-the-holder")
        assert not errors, errors
    finally:
        chromium.close()
    holder_sees_the_service(browser, phone, card)


def test_the_scanners_decoder_reads_the_card_pages_qr_code(browser):
    """The decoding step alone, on the QR code as the card page draws it (an SVG turned into an image)."""
    gym, holder, card = holder_with_a_card()
    phone = open_card_page(browser, holder, card)
    svg = phone.locator("#counter-qr").evaluate("el => el.outerHTML")
    qr_text = phone.locator("#counter-qr").get_attribute("data-qr-text")
    till = browser.page(viewport=PHONE)
    browser.log_in(till, gym.user.username, builders.PASSWORD)
    till.goto(f"{browser.base_url}/m/redemptions/")
    decoded = till.evaluate(
        """async (svg) => {
            const image = new Image();
            image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
            await image.decode();
            return window.counterScan.decode(image, 480, 480);
        }""",
        svg,
    )
    assert decoded == qr_text
