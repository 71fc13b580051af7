"""A merchant that moves gives notice, every holder is told once and may take a fee-free refund from
the notice until the move and the profile's days after it; on the moving day the address changes."""

from datetime import date

import pytest
import time_machine
from django.test import Client

from consumers.models import Card
from core.rules import rule
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import MerchantNotActive, RelocationNotPending, RelocationPending
from merchants.models import Merchant, Relocation
from merchants.selectors import merchant_particulars_on
from merchants.services.closure import merchant_closure_announce
from merchants.services.relocation import merchant_relocation_announce, merchant_relocation_cancel, relocations_due
from notifications.models import FanOut, Notification
from refunds.models import Refund
from refunds.selectors import merchant_default_reasons
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

NOTICE_DAY = "2026-03-10 12:00 +0800"
MOVES_ON = date(2026, 4, 15)  # 36 days on: more than the 30 the Beijing profile asks
REFUND_UNTIL = date(2026, 5, 15)  # the moving day + relocation_refund_days_after (30)


def at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def gym():
    """A gym with four cards: two of one holder, one used up, one in use."""
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=100_000, sessions=4)
    with at("2026-03-01 10:00 +0800"):
        regular = builders.consumer()
        cards = [builders.paid_card(pack, regular), builders.paid_card(pack, regular)]
        cards += [builders.paid_card(pack) for _ in range(2)]
        use(cards[2])
        for _ in range(4):
            use(cards[3])  # used up: exhausted, nothing left in escrow
    return gym, [builders.fresh(card) for card in cards]


def announce(gym, **changes):
    values = {"moves_on": MOVES_ON, "address": "望京街 9 号", "district": "朝阳区", **changes}
    return merchant_relocation_announce(merchant=gym, **values)


def refund(card, reason="merchant_default"):
    return client_for(card.consumer.user).post(f"/api/v1/cards/{card.pk}/refunds", {"reason": reason}, format="json")


def test_a_move_named_sooner_than_the_profiles_notice_is_400_notice_too_short_with_rule_and_basis(gym):
    shop, _cards = gym
    notice = rule("relocation_notice_days")
    with at(NOTICE_DAY):
        response = client_for(shop.user).post(
            "/api/v1/merchant/relocation",
            {"moves_on": "2026-04-08", "address": "望京街 9 号", "district": "110105"},
            format="json",
            headers={"accept-language": "en"},
        )
    body = response.json()
    assert response.status_code == 400 and body["code"] == "notice_too_short"
    assert body["rule"] == "relocation_notice_days" and body["basis"] == notice.basis_en
    assert "moves_on" in body["errors"] and "April 9, 2026" in body["detail"]  # the earliest day, in words
    assert not Relocation.objects.exists()
    with at(NOTICE_DAY):
        ok = client_for(shop.user).post(
            "/api/v1/merchant/relocation",
            {"moves_on": "2026-04-09", "address": "望京街 9 号", "district": "110105"},
            format="json",
        )
    assert ok.status_code == 201, ok.content
    assert ok.json()["refund_until"] == "2026-05-09" and ok.json()["state"] == "notified"


def test_an_unknown_district_or_the_present_address_is_400(gym):
    shop, _cards = gym
    with at(NOTICE_DAY):
        bad = client_for(shop.user).post(
            "/api/v1/merchant/relocation",
            {"moves_on": "2026-04-15", "address": "望京街 9 号", "district": "浦东新区"},
            format="json",
        )
        same = client_for(shop.user).post(
            "/api/v1/merchant/relocation",
            {"moves_on": "2026-04-15", "address": shop.address, "district": shop.district},
            format="json",
        )
    assert (bad.status_code, bad.json()["code"], list(bad.json()["errors"])) == (400, "invalid", ["district"])
    assert (same.status_code, list(same.json()["errors"])) == (400, ["address"])


def test_every_holder_with_escrow_is_told_once_in_the_background(gym, django_capture_on_commit_callbacks):
    shop, cards = gym
    with at(NOTICE_DAY), django_capture_on_commit_callbacks(execute=True):
        relocation = announce(shop)
    # The regular (two cards) is told once, the holder of the used-up card not at all.
    told = list(Notification.objects.filter(kind="merchant_relocating").values_list("user_id", flat=True))
    assert sorted(told) == sorted({cards[0].consumer.user_id, cards[2].consumer.user_id})
    assert relocation.consumers_notified == 2
    notice = Notification.objects.get(user_id=cards[2].consumer.user_id, kind="merchant_relocating")
    assert "朝阳区望京街 9 号" in notice.body and "2026年4月15日" in notice.body and "2026年5月15日" in notice.body
    assert notice.merchant_id == shop.pk and notice.about_money
    job = FanOut.objects.get(event_key=f"merchant_relocating:{relocation.pk}")
    assert (job.state, job.done, job.total) == ("done", 2, 2)


def test_a_holder_takes_a_full_merchant_default_refund_from_the_notice_to_the_last_day_and_not_after(gym):
    shop, cards = gym
    with at(NOTICE_DAY):
        assert refund(cards[2]).json()["code"] == "merchant_not_in_default"  # before the notice: good standing
        announce(shop)
        first = refund(cards[2])
    assert first.status_code == 201, first.content
    assert (first.json()["reason"], first.json()["amount"], first.json()["fee"]) == ("merchant_default", 75_000, 0)
    with at("2026-05-15 23:59 +0800"):  # the window's last day
        last = refund(cards[0])
    assert last.status_code == 201 and last.json()["amount"] == 100_000
    with at("2026-05-16 00:00 +0800"):
        late = client_for(cards[1].consumer.user).post(
            f"/api/v1/cards/{cards[1].pk}/refunds",
            {"reason": "merchant_default"},
            format="json",
            headers={"accept-language": "en"},
        )
    body = late.json()
    assert late.status_code == 409 and body["code"] == "merchant_not_in_default"
    assert body["rule"] == "relocation_refund_days_after" and "May 15, 2026" in body["detail"]
    assert body["basis"] == rule("relocation_refund_days_after").basis_en
    assert Refund.objects.filter(card=cards[1]).count() == 0
    assert all(builders.invariant_holds(card) for card in cards)
    assert ledger_ok(ledger_verify())


def test_the_default_reason_is_relocating_and_the_card_page_offers_the_refund_first(gym):
    shop, cards = gym
    with at(NOTICE_DAY):
        announce(shop)
        assert merchant_default_reasons(merchant=Merchant.objects.get(pk=shop.pk), card_id=cards[2].pk) == [
            "relocating"
        ]
        browser = Client()
        browser.force_login(cards[2].consumer.user)
        page = browser.get(f"/c/cards/{cards[2].pk}/").content.decode()
    assert 'data-testid="merchant-notice"' in page
    assert "朝阳区望京街 9 号" in page and "2026年5月15日" in page
    # The fee-free refund is the first option of the refund form.
    assert page.index('data-reason="merchant_default"') < page.index('data-reason="voluntary"')


def test_on_the_moving_day_the_new_address_and_district_become_the_merchants(gym):
    shop, _cards = gym
    with at(NOTICE_DAY):
        relocation = announce(shop, district="东城区")
    with at("2026-04-14 23:30 +0800"):
        assert relocations_due() == 0
    assert Merchant.objects.get(pk=shop.pk).address == "1 Test Road"
    with at("2026-04-15 00:20 +0800"):
        assert relocations_due() == 1
        assert relocations_due() == 0  # once
    moved = Merchant.objects.get(pk=shop.pk)
    assert (moved.address, moved.district) == ("望京街 9 号", "110101")
    relocation.refresh_from_db()
    assert relocation.state == "moved" and relocation.moved_at is not None
    # A statement of a day before the move still names the old premises.
    before = merchant_particulars_on(merchant=moved, day=date(2026, 4, 14))
    on_the_day = merchant_particulars_on(merchant=moved, day=date(2026, 4, 15))
    assert (before.address, before.district) == ("1 Test Road", "110105")
    assert (on_the_day.address, on_the_day.district) == ("望京街 9 号", "110101")


def test_one_notice_at_a_time_and_a_withdrawn_notice_closes_its_window_and_never_moves(gym):
    shop, cards = gym
    with at(NOTICE_DAY):
        announce(shop)
        with pytest.raises(RelocationPending):
            announce(shop, address="酒仙桥路 1 号")
        withdrawn = merchant_relocation_cancel(merchant=shop)
        with pytest.raises(RelocationNotPending):
            merchant_relocation_cancel(merchant=shop)
        assert refund(cards[2]).json()["code"] == "merchant_not_in_default"
    assert withdrawn.state == "cancelled"
    with at("2026-04-15 01:00 +0800"):
        assert relocations_due() == 0
    assert Merchant.objects.get(pk=shop.pk).address == "1 Test Road"


def test_a_closing_merchant_gives_no_notice_of_moving(gym):
    shop, _cards = gym
    with at(NOTICE_DAY):
        merchant_closure_announce(merchant=shop, closes_on=date(2026, 4, 30), reason="lease ends")
        with pytest.raises(MerchantNotActive):
            announce(shop)


def test_the_merchants_page_gives_notice_and_then_shows_it(gym):
    shop, _cards = gym
    browser = Client()
    browser.force_login(shop.user)
    with at(NOTICE_DAY):
        short = browser.post(
            "/m/relocation/", {"moves_on": "2026-03-20", "address": "望京街 9 号", "district": "110105"}
        )
        assert short.status_code == 200 and "notice_too_short" not in short.content.decode()
        assert Relocation.objects.count() == 0
        sent = browser.post(
            "/m/relocation/", {"moves_on": "2026-04-15", "address": "望京街 9 号", "district": "110105"}, follow=True
        )
    page = sent.content.decode()
    assert 'data-testid="relocation-notice"' in page and "2026年4月15日" in page
    assert Relocation.objects.get().state == "notified"
    with at(NOTICE_DAY):
        browser.post("/m/relocation/cancel/")
    assert Relocation.objects.get().state == "cancelled"


def test_cards_left_untouched_by_a_move_keep_their_money(gym):
    """A move refunds nobody by itself: only the holders who ask are refunded."""
    shop, cards = gym
    with at(NOTICE_DAY):
        announce(shop)
    with at("2026-04-15 00:20 +0800"):
        relocations_due()
    assert Refund.objects.count() == 0
    assert Card.objects.filter(pk__in=[c.pk for c in cards], state="refunded").count() == 0
