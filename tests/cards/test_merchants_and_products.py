import pytest

from core.errors import InvalidInput
from merchants.errors import CardLimitExceeded, InvalidLicenseNumber
from merchants.registry import uscc_is_valid
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_codes_with_the_right_check_character_validate_and_a_changed_one_does_not():
    code = builders.license_number(42)
    assert uscc_is_valid(code)
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    assert not uscc_is_valid(wrong)
    assert not uscc_is_valid(code[:16] + "I" + code[17])  # I is not in the alphabet
    assert not uscc_is_valid(code[:17])  # 17 characters


def test_published_sample_code_is_valid():
    # The code on a public licence: 91350100M000100Y43 (check character 3).
    assert uscc_is_valid("91350100M000100Y43")


def test_merchant_sign_up_via_api_returns_active_with_district_name(api):
    body = {
        "username": "salon",
        "password": builders.PASSWORD,
        "name": "Salon",
        "license_number": builders.license_number(7),
        "category": "beauty",
        "district": "haidian",
        "address": "2 Road",
    }
    response = api.post("/api/v1/merchants", body, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "active" and response.json()["district"] == "海淀区"


def test_bad_license_number_is_400_invalid_license_number(api):
    body = {
        "username": "salon",
        "password": builders.PASSWORD,
        "name": "Salon",
        "license_number": "91110108MA01XYZ120",
        "category": "beauty",
        "district": "110108",
        "address": "2 Road",
    }
    response = api.post("/api/v1/merchants", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_license_number"


@pytest.mark.parametrize("district", ["110105", "朝阳区", "朝阳", "chaoyang", "Chaoyang"])
def test_district_is_accepted_by_code_or_name_and_stored_as_code(district):
    assert builders.merchant(district=district).district == "110105"


def test_unknown_district_is_refused():
    with pytest.raises(InvalidInput):
        builders.merchant(district="Pudong")


def test_invalid_license_raises_domain_error():
    with pytest.raises(InvalidLicenseNumber):
        from merchants.services.merchants import merchant_register

        merchant_register(
            username="x", password=builders.PASSWORD, name="x", license_number="123", category="other",
            district="110101", address="x",
        )  # fmt: skip


def test_price_above_the_national_cap_is_refused_naming_the_rule():
    m = builders.merchant()
    with pytest.raises(CardLimitExceeded) as excinfo:
        builders.session_pack(m, price=500_001)
    assert excinfo.value.rule.key == "max_price" and excinfo.value.errors["price"]
    assert builders.session_pack(m, price=500_000).price == 500_000


@pytest.mark.parametrize(("kind", "field", "over"), [("session_pack", "sessions", 61), ("period_pass", "days", 93)])
def test_education_limits_name_the_rule(kind, field, over):
    m = builders.merchant(category="education")
    from merchants.services.merchants import product_create

    with pytest.raises(CardLimitExceeded) as excinfo:
        product_create(merchant=m, name="x", kind=kind, price=10_000, **{field: over})
    assert excinfo.value.rule.key == f"education_max_{field}" and excinfo.value.errors[field]
    assert product_create(merchant=m, name="x", kind=kind, price=10_000, **{field: over - 1})


def test_education_limits_do_not_apply_to_a_gym():
    m = builders.merchant(category="fitness")
    assert builders.session_pack(m, sessions=100).sessions == 100


def test_card_limit_exceeded_over_api_is_400_with_code():
    m = builders.merchant(category="education")
    response = client_for(m.user).post(
        "/api/v1/products", {"name": "x", "kind": "session_pack", "price": 10_000, "sessions": 61}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "card_limit_exceeded" and "sessions" in body["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "stored_value", "price": 100, "unit_price": 10}, "face_value"),
        ({"kind": "stored_value", "price": 100, "face_value": 99, "unit_price": 10}, "face_value"),
        ({"kind": "stored_value", "price": 100, "face_value": 100}, "unit_price"),
        ({"kind": "session_pack", "price": 100}, "sessions"),
        ({"kind": "period_pass", "price": 100}, "days"),
        ({"kind": "period_pass", "price": 100, "days": 5, "refund_fee_bps": 2001}, "refund_fee_bps"),
        ({"kind": "lifetime", "price": 100}, "kind"),
    ],
)
def test_product_terms_each_kind_requires_are_checked(body, field):
    m = builders.merchant()
    response = client_for(m.user).post("/api/v1/products", {"name": "x", **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_stored_value_may_carry_a_bonus():
    product = builders.stored_value(builders.merchant(), price=90_000, face_value=100_000)
    assert product.face_value > product.price


def test_products_are_listed_for_anyone_with_risk_warning_null_until_flagged(api):
    m = builders.merchant()
    builders.session_pack(m)
    other = builders.merchant()
    builders.session_pack(other)
    response = api.get(f"/api/v1/products?merchant={m.pk}")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["merchant"] for r in results] == [str(m.pk)]
    assert results[0]["risk_warning"] is None and results[0]["currency"] == "cny"
    m.risk_warning = "Flagged by the regulator: many complaints"
    m.save(update_fields=["risk_warning"])
    assert api.get(f"/api/v1/products?merchant={m.pk}").json()["results"][0]["risk_warning"].startswith("Flagged")


def test_only_merchants_create_products():
    c = builders.consumer()
    response = client_for(c.user).post(
        "/api/v1/products", {"name": "x", "kind": "session_pack", "price": 1, "sessions": 1}, format="json"
    )
    assert response.status_code == 403
