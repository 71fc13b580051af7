"""The platform's public surface: health, schema, docs."""

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["broker"] == ("embedded" if settings.BROKER_EMBEDDED else "ok")


def test_healthz_reports_an_unreachable_broker_as_degraded(client, settings):
    settings.BROKER_EMBEDDED = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {**response.json(), "status": "degraded", "broker": "unavailable"}


def test_openapi_schema_is_served_and_documents_the_endpoints(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/auth/token" in text and "/api/v1/regulator/ledger/verify" in text


def test_docs_page_is_served_with_vendored_assets(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger" in page.lower()
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page


def test_settings_use_beijing_time_and_chinese_with_english():
    assert settings.TIME_ZONE == "Asia/Shanghai" and settings.USE_TZ
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "en"]
