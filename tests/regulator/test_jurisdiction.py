"""A regulator's jurisdiction: made by ``createregulator --district/--category`` (or the admin), told
by ``GET /api/v1/regulator/me``, and applied to what the regulator sees and does."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from core.models import User
from regulator.models import AuditEvent, RegulatorAction, RegulatorScope, RiskAssessment
from regulator.selectors.jurisdiction import CITY, NOWHERE, Jurisdiction, jurisdiction_of, jurisdiction_of_actor
from regulator.services.jurisdiction import regulator_scope_set
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db

CHAOYANG, HAIDIAN, XICHENG = "110105", "110108", "110102"


def _create(monkeypatch, *args: str) -> User:
    monkeypatch.setenv("REG_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD", *args)
    return User.objects.get(username="inspector")


def _regulator(*, districts=(), categories=()) -> User:
    user = UserFactory(role="regulator")
    regulator_scope_set(user=user, districts=districts, categories=categories)
    return user


@pytest.fixture
def city():
    """A gym and a school in Chaoyang, a gym in Haidian, each with a card holding escrow."""
    shops = {
        "chaoyang_gym": builders.merchant(district="朝阳区", category="fitness", name="朝阳健身"),
        "chaoyang_school": builders.merchant(district="朝阳区", category="education", name="朝阳英语"),
        "haidian_gym": builders.merchant(district="海淀区", category="fitness", name="海淀健身"),
    }
    for shop in shops.values():
        builders.paid_card(builders.session_pack(shop, price=60_000, sessions=6))
    return shops


# --- createregulator ---------------------------------------------------------------------------------------


def test_createregulator_takes_districts_by_code_or_name_and_categories(monkeypatch):
    user = _create(
        monkeypatch, "--district", "朝阳区", "--district", HAIDIAN, "--district", "Chaoyang", "--category", "education"
    )
    assert user.role == User.Role.REGULATOR
    scope = RegulatorScope.objects.get(user=user)
    assert (scope.districts, scope.categories) == ([CHAOYANG, HAIDIAN], ["education"])
    assert jurisdiction_of(User.objects.get(pk=user.pk)) == Jurisdiction(
        districts=(CHAOYANG, HAIDIAN), categories=("education",)
    )


def test_createregulator_without_a_district_or_category_makes_a_city_wide_regulator(monkeypatch):
    user = _create(monkeypatch)
    assert not RegulatorScope.objects.filter(user=user).exists()
    assert jurisdiction_of(user) == CITY


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--district", "火星区", "unknown district '火星区'"), ("--category", "casino", "unknown category 'casino'")],
)
def test_createregulator_refuses_an_unknown_district_or_category_in_one_line_before_asking_a_password(
    monkeypatch, option, value, message
):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)  # the password would fail too, but later
    with pytest.raises(CommandError, match=message) as refused:
        call_command("createregulator", "inspector", "--password-from-env", "NO_SUCH_VAR", option, value)
    assert "\n" not in str(refused.value)
    assert not User.objects.filter(username="inspector").exists()


def test_createregulator_with_a_weak_password_leaves_no_regulator_nor_jurisdiction(monkeypatch):
    monkeypatch.setenv("REG_PASSWORD", "123")
    with pytest.raises(CommandError, match="password"):
        call_command("createregulator", "inspector", "--password-from-env", "REG_PASSWORD", "--district", "朝阳区")
    assert not User.objects.filter(username="inspector").exists() and not RegulatorScope.objects.exists()


# --- GET /api/v1/regulator/me ------------------------------------------------------------------------------


def test_me_tells_a_district_regulator_its_districts_and_all_categories(monkeypatch):
    user = _create(monkeypatch, "--district", "海淀区", "--district", "朝阳区")
    body = client_for(user).get("/api/v1/regulator/me").json()
    assert body == {"username": "inspector", "districts": [HAIDIAN, CHAOYANG], "categories": "all"}


def test_me_tells_a_city_wide_regulator_all_and_all():
    user = UserFactory(role="regulator", username="chief")
    assert client_for(user).get("/api/v1/regulator/me").json() == {
        "username": "chief",
        "districts": "all",
        "categories": "all",
    }


def test_me_is_for_regulators_only():
    assert client_for(UserFactory(role="merchant")).get("/api/v1/regulator/me").status_code == 403


def test_the_schema_describes_me_as_all_or_a_list():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/regulator/me"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][ref]["properties"]
    for name in ("districts", "categories"):
        kinds = [choice["type"] for choice in properties[name]["oneOf"]]
        assert kinds == ["string", "array"] and properties[name]["oneOf"][0]["enum"] == ["all"]


# --- the jurisdiction, applied -----------------------------------------------------------------------------


def test_a_regulator_token_brings_its_jurisdiction_in_the_same_query(django_assert_num_queries):
    from rest_framework.authtoken.models import Token

    from core.authentication import TokenAuthentication

    user = _regulator(districts=["朝阳区"])
    token = Token.objects.create(user=user)
    with django_assert_num_queries(1):
        authenticated, _token = TokenAuthentication().authenticate_credentials(token.key)
    with django_assert_num_queries(0):
        assert jurisdiction_of(authenticated) == Jurisdiction(districts=(CHAOYANG,))


def test_a_user_who_is_no_regulator_oversees_nothing_and_a_job_the_whole_city():
    assert jurisdiction_of(UserFactory(role="merchant")) == NOWHERE
    assert jurisdiction_of_actor(None) == CITY
    assert jurisdiction_of_actor(_regulator(categories=["education"]).pk) == Jurisdiction(categories=("education",))


def test_the_merchant_list_of_a_district_and_category_regulator_is_their_intersection(city):
    chaoyang_schools = _regulator(districts=["朝阳区"], categories=["education"])
    rows = client_for(chaoyang_schools).get("/api/v1/regulator/merchants").json()
    assert [row["id"] for row in rows["results"]] == [str(city["chaoyang_school"].pk)]
    gyms = _regulator(categories=["fitness"])
    names = {row["name"] for row in client_for(gyms).get("/api/v1/regulator/merchants").json()["results"]}
    assert names == {"朝阳健身", "海淀健身"}


def test_an_action_on_a_merchant_outside_is_404_and_not_taken(city):
    haidian = _regulator(districts=["海淀区"])
    target = city["chaoyang_gym"]
    response = client_for(haidian).post(
        f"/api/v1/regulator/merchants/{target.pk}/actions", {"action": "order_refunds", "reason": "gone"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    target.refresh_from_db()
    assert not target.sales_frozen
    assert not RegulatorAction.objects.exists() and not AuditEvent.objects.exists()
    # The same regulator's order on its own merchant is taken.
    own = city["haidian_gym"]
    response = client_for(haidian).post(
        f"/api/v1/regulator/merchants/{own.pk}/actions", {"action": "flag", "reason": "complaints"}, format="json"
    )
    assert response.status_code == 202
    own.refresh_from_db()
    assert own.flagged


def test_an_action_service_called_for_a_merchant_outside_the_actors_jurisdiction_is_not_found(city):
    from core.errors import NotFound
    from regulator.services.actions import merchant_action_take

    haidian = _regulator(districts=["海淀区"])
    with pytest.raises(NotFound):
        merchant_action_take(merchant_id=city["chaoyang_gym"].pk, actor_id=haidian.pk, action="flag", reason="x")
    assert not RegulatorAction.objects.exists()


def test_recomputing_every_merchant_scores_only_the_regulators_merchants(city):
    haidian = _regulator(districts=["海淀区"])
    assert client_for(haidian).post("/api/v1/regulator/risk/compute").status_code == 202  # eager in tests
    scored = set(RiskAssessment.objects.values_list("merchant_id", flat=True))
    assert scored == {city["haidian_gym"].pk}


def test_the_dashboard_names_the_jurisdiction_and_charts_its_districts_alone(city):
    client = Client()
    sign_in(client, _regulator(districts=["海淀区"]))
    page = client.get("/r/")
    assert page.context["jurisdiction"].startswith("海淀区")
    assert page.context["escrow"] == {"escrow": 60_000, "cards": 1}
    assert [row["name"] for row in page.context["district_rows"]] == ["海淀区"]
    filters = client.get("/r/merchants/").context["form"].fields["district"].choices
    assert [code for code, _name in filters] == ["", HAIDIAN]


def test_the_admin_sets_a_regulators_jurisdiction_through_the_service():
    staff = User.objects.create_superuser(username="admin", password="a-long-and-unusual-passphrase")
    inspector = UserFactory(role="regulator")
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/regulator/regulatorscope/add/",
        {"user": inspector.pk, "districts": [XICHENG], "categories": ["beauty", "fitness"]},
    )
    assert response.status_code == 302, response.content[:500]
    assert jurisdiction_of(User.objects.get(pk=inspector.pk)) == Jurisdiction(
        districts=(XICHENG,), categories=("beauty", "fitness")
    )
    changed = client.post(
        f"/admin/regulator/regulatorscope/{inspector.pk}/change/", {"districts": [], "categories": []}
    )
    assert changed.status_code == 302, changed.content[:500]
    assert jurisdiction_of(User.objects.get(pk=inspector.pk)) == CITY  # nothing ticked: the whole city


def test_a_district_regulator_sees_its_merchants_refund_paid_out_and_no_other(city, django_capture_on_commit_callbacks):
    from escrow.models import JournalEntry
    from refunds.services import refund_request
    from regulator.selectors.audit import journal_entries_within

    for shop in ("chaoyang_gym", "haidian_gym"):
        card = builders.paid_card(builders.session_pack(city[shop], price=30_000, sessions=3))
        with django_capture_on_commit_callbacks(execute=True):  # the gateway pays it, as in production
            refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    paid = {
        entry.pk: entry.postings.values_list("account_id", flat=True)
        for entry in JournalEntry.objects.filter(code="refund_paid")
    }
    assert len(paid) == 2
    chaoyang = _regulator(districts=[CHAOYANG])
    seen = set(
        journal_entries_within(jurisdiction_of(chaoyang)).filter(code="refund_paid").values_list("pk", flat=True)
    )
    gym = city["chaoyang_gym"]
    assert seen == {
        pk for pk, accounts in paid.items() if set(accounts) == {gym.custody_account_id, gym.refund_payable_account_id}
    }
    response = client_for(chaoyang).get("/api/v1/regulator/audit-log", {"kind": "journal", "merchant": str(gym.pk)})
    assert response.status_code == 200, response.content
    verbs = [row["verb"] for row in response.json()["results"]]
    assert verbs.count("refund_paid") == 1 and "purchase" in verbs
