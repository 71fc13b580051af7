"""The API docs page (/api/v1/docs/) carries Chinese and English descriptions: the API's own and
each tag's, every tag an operation uses."""

import json
import re

import pytest

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[A-Za-z']{3,} [A-Za-z]{2,}")

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_api_is_described_in_chinese_and_english(schema):
    info = schema["info"]
    for text in (info["title"], info["description"]):
        assert CJK.search(text) and ENGLISH.search(text), text
    assert "存管" in info["description"] and "escrow" in info["description"]


def test_every_tag_an_operation_uses_is_described_in_both_languages(schema):
    used = {tag for operations in schema["paths"].values() for op in operations.values() for tag in op.get("tags", [])}
    described = {tag["name"]: tag.get("description", "") for tag in schema.get("tags", [])}
    assert used and used <= set(described), used - set(described)
    for name in used:
        assert CJK.search(described[name]) and ENGLISH.search(described[name]), (name, described[name])


def test_the_docs_page_is_served(client):
    assert client.get("/api/v1/docs/").status_code == 200
