"""A dispute from end to end in Chromium: the merchant contests a service its consumer rejected and
attaches a sign-in sheet, the consumer adds their side from the card page (where refunds now wait),
the regulator upholds it, and the card page shows the release: the escrow, the dispute and the
statement's line with its journal entry's hash."""

import pytest
from playwright.sync_api import expect

from consumers.models import Dispute
from consumers.services import redemption_reject, redemption_request
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from tests.browser.support import DESKTOP, PHONE, assert_accessible
from tests.cards import builders
from tests.cards.builders import PASSWORD as SHOP_PASSWORD
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def test_the_regulator_upholds_a_dispute_and_the_card_page_shows_the_release(browser):
    gym = builders.merchant(name="望京动感健身")
    card = builders.paid_card(builders.session_pack(gym, price=100_000, sessions=4))
    started = redemption_request(merchant=gym, card_id=card.pk)
    redemption_reject(consumer=card.consumer, redemption_id=started.pk)

    # The merchant contests it from its disputes page, with the sign-in sheet.
    shop = browser.page(viewport=PHONE)
    browser.log_in(shop, gym.user.username, SHOP_PASSWORD)
    shop.click("header nav a[href$='/m/disputes/']")
    shop.locator(f"[data-testid=contestable-row][data-redemption-id='{started.pk}'] [data-testid=contest-link]").click()
    assert_accessible(shop, fits=True)
    shop.fill("#id_reason", "会员当天 18:02 已在前台签到并上课。")
    shop.set_input_files("#id_files", files=[{"name": "签到表.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    shop.get_by_test_id("dispute-open-submit").click()
    shop.wait_for_url("**/m/disputes/*/")
    expect(shop.get_by_test_id("dispute-state")).to_have_attribute("data-state", "open")
    expect(shop.get_by_test_id("evidence-file")).to_have_text("签到表.pdf")
    browser.shot(shop, "merchant-dispute-open")
    dispute = Dispute.objects.get()

    # The consumer sees it on the card, cannot refund meanwhile, and adds their side.
    holder = browser.page(viewport=PHONE)
    browser.log_in(holder, card.consumer.user.username, SHOP_PASSWORD)
    holder.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    expect(holder.get_by_test_id("refund-in-dispute")).to_be_visible()
    expect(holder.get_by_test_id("refund-form")).to_have_count(0)
    holder.locator(f"[data-testid=card-dispute][data-dispute-id='{dispute.pk}'] a").click()
    holder.fill("#id_text", "我记得那天我在外地，但签到表确实有我的签名。")
    holder.get_by_test_id("evidence-submit").click()
    expect(holder.locator("[data-testid=evidence-item][data-party=consumer]")).to_have_count(1)
    assert_accessible(holder, fits=True)
    browser.shot(holder, "consumer-dispute")

    # The regulator upholds it.
    inspector = UserFactory(role="regulator", username="dispute-inspector")
    desk = browser.page(viewport=DESKTOP, mobile=False)
    browser.log_in(desk, inspector.username, PASSWORD)
    desk.click("header nav a[href$='/r/disputes/']")
    desk.locator(f"[data-testid=dispute-row][data-dispute-id='{dispute.pk}'] a").click()
    expect(desk.get_by_test_id("evidence-item")).to_have_count(2)  # the sign-in sheet and the consumer's text
    desk.fill("#id_note", "签到表与门店监控一致。")
    desk.get_by_test_id("dispute-uphold").click()
    desk.wait_for_url(f"**/r/disputes/{dispute.pk}/")
    expect(desk.get_by_test_id("dispute-state")).to_have_attribute("data-state", "upheld")
    expect(desk.get_by_test_id("dispute-released")).to_contain_text("¥250.00")
    assert_accessible(desk)
    browser.shot(desk, "regulator-upheld")

    # The card page shows the release: less in escrow, the dispute upheld, the statement's line.
    holder.goto(f"{browser.base_url}/c/cards/{card.pk}/")
    expect(holder.get_by_test_id("card-escrow")).to_have_text("¥750.00")
    expect(holder.get_by_test_id("card-released")).to_have_text("¥250.00")
    expect(holder.get_by_test_id("card-dispute-released")).to_contain_text("¥250.00")
    entry = JournalEntry.objects.get(idempotency_key=f"dispute:{dispute.pk}")
    line = holder.locator(f"[data-testid=statement-line][data-entry-id='{entry.pk}']")
    expect(line).to_have_attribute("data-kind", "dispute")
    expect(line.get_by_test_id("statement-hash")).to_have_text(entry.hash)
    expect(holder.get_by_test_id("refund-form")).to_be_visible()  # refunds are open again
    assert_accessible(holder, fits=True)
    browser.shot(holder, "consumer-card-after-dispute")
    assert browser.page_errors == []
    assert ledger_ok(ledger_verify())
