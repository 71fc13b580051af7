"""``seed_demo`` loads a believable Beijing once, through the real services: the ledger it leaves
verifies, the runaways it plays are the ones the regulator's risk score ranks high, its logins
work, and running it again changes nothing.

The demo is loaded once for the module (it takes tens of seconds) into the test database, outside
any test transaction so that its services commit for real, and the database is flushed afterwards.
"""

import io
import re

import pytest
from django.core.management import call_command
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from complaints.models import Complaint
from consumers.models import Card, Consumer, Redemption
from core import clock
from demo import city
from demo import seed as demo
from demo.history import CARDS, CONSUMERS, HISTORY_DAYS
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant, Product, Settlement
from merchants.registry import DISTRICTS, uscc_is_valid
from refunds.models import Refund
from regulator.models import AuditEvent, RiskAssessment

# One process runs the whole module (make test hands out a file at a time): the demo loads once.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The command's output; the demo stays in the database for the module's tests. The demo
    password is hashed with the suite's fast hasher, as every password of the suite is."""
    out = io.StringIO()
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        call_command("flush", interactive=False, verbosity=0)


def _counts() -> dict[str, int]:
    models = (Merchant, Product, Consumer, Card, Redemption, Refund, Complaint, Settlement, JournalEntry)
    return {
        **{model.__name__: model.objects.count() for model in (*models, RiskAssessment, AuditEvent)},
        "paid payouts": Settlement.objects.filter(payout_state="paid").count(),
    }


def test_the_city_has_merchants_in_every_district_and_category_with_valid_licences(seeded):
    merchants = Merchant.objects.all()
    assert merchants.count() >= 40
    assert set(merchants.values_list("district", flat=True)) == set(DISTRICTS)
    assert set(merchants.values_list("category", flat=True)) == set(Merchant.Category.values)
    assert all(uscc_is_valid(code) for code in merchants.values_list("license_number", flat=True))
    assert all(name and address.startswith("北京市") for name, address in merchants.values_list("name", "address"))
    assert set(Product.objects.values_list("kind", flat=True)) == set(Product.Kind.values)
    assert not Product.objects.filter(price__gt=500_000).exists()
    education = Product.objects.filter(merchant__category="education")
    assert not education.filter(sessions__gt=60).exists() and not education.filter(days__gt=92).exists()


def test_consumers_hold_2000_cards_bought_over_90_days_in_every_state(seeded):
    assert Consumer.objects.count() == CONSUMERS
    assert Card.objects.count() == CARDS
    paid = sorted(Card.objects.exclude(paid_at=None).values_list("paid_at", flat=True))
    assert (paid[-1] - paid[0]).days >= HISTORY_DAYS - 3
    assert set(Card.objects.values_list("state", flat=True)) >= {
        "pending_payment",
        "cooling_off",
        "active",
        "exhausted",
        "refunded",
        "cancelled",
    }
    assert set(Redemption.objects.values_list("state", flat=True)) == set(Redemption.State.values)
    assert set(Refund.objects.values_list("reason", flat=True)) >= {"cooling_off", "small_balance", "voluntary"}


def test_complaints_come_from_the_hotline_and_the_app_in_every_state(seeded):
    assert set(Complaint.objects.values_list("source", flat=True)) == {"app", "hotline"}
    hotline = Complaint.objects.filter(source="hotline")
    assert not hotline.filter(hotline_reference=None).exists()
    assert not Complaint.objects.filter(source="app", consumer=None).exists()
    assert set(Complaint.objects.values_list("state", flat=True)) == set(Complaint.State.values)


def test_the_ledger_verifies_and_merchants_were_settled_and_paid(seeded):
    result = ledger_verify()
    assert ledger_ok(result), result["problems"]
    demo_merchant = Merchant.objects.get(user__username=demo.DEMO_MERCHANT)
    settlements = Settlement.objects.filter(merchant=demo_merchant)
    assert settlements.count() >= 10
    assert (clock.local_date() - settlements.latest("date").date).days <= 3  # settled daily lately
    assert not Settlement.objects.exclude(payout_state="paid").exists()
    assert not Refund.objects.exclude(state="paid").exists()


def test_the_runaways_rank_first_high_and_flagged(seeded):
    top = Merchant.objects.order_by("-risk_score")[: len(city.RUNAWAYS)]
    assert {m.name.split("（")[0] for m in top} == set(city.RUNAWAYS)
    assert all(m.risk_level == "high" and m.flagged for m in top)
    assert Merchant.objects.filter(risk_level="high").count() == len(city.RUNAWAYS)
    assert "Highest risk" in seeded and city.RUNAWAYS[0] in seeded


def test_the_risk_trend_has_a_score_a_day_and_the_runaways_rise(seeded):
    """The nightly risk run played through the history: every runaway has an assessment on at least
    80 distinct Beijing days, and its score climbs from the history's start to its end."""
    for name in city.RUNAWAYS:
        merchant = Merchant.objects.get(name__startswith=name)
        scores = list(
            RiskAssessment.objects.filter(merchant=merchant).order_by("computed_at").values_list("computed_at", "score")
        )
        days = {clock.local_date(at) for at, _score in scores}
        assert len(days) >= 80, (name, len(days))
        first, last = [score for _at, score in scores[:30]], [score for _at, score in scores[-7:]]
        assert sum(last) / len(last) >= sum(first) / len(first) + 20, (name, first, last)
        assert scores[-1][1] >= 60
    # Only the runaways were ever flagged by the nightly runs.
    flagged = {m.name.split("（")[0] for m in Merchant.objects.filter(flagged=True)}
    assert flagged == set(city.RUNAWAYS)


def test_every_stored_value_name_says_its_price_and_face_value(seeded):
    products = Product.objects.filter(kind="stored_value")
    assert products.count() >= 10
    for product in products:
        match = re.search(r"充(\d+)(送|得|抵)(\d+)", product.name)
        assert match, product.name
        paid, word, other = int(match[1]) * 100, match[2], int(match[3]) * 100
        face = paid + other if word == "送" else other
        assert (product.price, product.face_value) == (paid, face), product.name


TRADE_WORDS = {
    "教练": "fitness",
    "私教": "fitness",
    "健身": "fitness",
    "美容": "beauty",
    "护理": "beauty",
    "孩子": "education",
    "课时": "education",
    "衣服": "laundry",
    "干洗": "laundry",
    "菜": "catering",
}


def test_complaints_are_in_the_words_of_the_merchants_trade(seeded):
    complaints = Complaint.objects.select_related("merchant")
    assert complaints.count() >= 40
    for complaint in complaints:
        text = complaint.description.removeprefix("12345来电：")
        merchant = complaint.merchant
        assert text in city.complaint_texts(merchant.category, complaint.category), (merchant.name, text)
        for word, category in TRADE_WORDS.items():
            assert word not in text or merchant.category == category, (merchant.name, text)


def test_the_demo_logins_get_tokens_with_their_roles(seeded, api):
    for login in demo.demo_logins():
        body = {"username": login.username, "password": demo.DEMO_PASSWORD}
        if login.role == "regulator":  # and the demo authenticator's code (demo_totp_code prints it)
            body["otp"] = demo.demo_regulator_code()
        response = api.post("/api/v1/auth/token", body, format="json")
        assert response.status_code == 200, (login.username, response.content)
        assert Token.objects.get(key=response.json()["token"]).user.role == login.role
        assert login.username in seeded
    me = Consumer.objects.get(user__username=demo.DEMO_CONSUMER)
    assert set(me.cards.values_list("state", flat=True)) == {"cooling_off", "active", "exhausted", "refunded"}
    assert Redemption.objects.filter(card__consumer=me, state="awaiting_confirmation").exists()
    shop = Merchant.objects.get(user__username=demo.DEMO_MERCHANT)
    assert Complaint.objects.filter(merchant=shop, state="open").count() >= 2


def test_the_output_says_how_to_get_the_demo_regulators_codes(seeded):
    uri = re.search(r"otpauth://totp/\S+", seeded)[0]
    assert f"secret={demo.DEMO_TOTP_SECRET}" in uri and "regulator" in uri
    assert "demo_totp_code" in seeded


def test_a_second_run_changes_nothing(seeded):
    before = _counts()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "already loaded" in out.getvalue() and demo.DEMO_CONSUMER in out.getvalue()
    assert _counts() == before
