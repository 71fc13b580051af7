"""The regulator's page of the rules in force, and the dashboard's warning when China's holiday
calendar lacks a year deadlines are being set in."""

import html as markup
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from core.rules import RULE_LABELS, rules_active
from tests.factories import sign_in

pytestmark = pytest.mark.django_db


def page(user, url: str, language: str = "en") -> tuple[int, str]:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    sign_in(client, user)
    response = client.get(url)
    return response.status_code, response.content.decode()


def test_the_regulator_reads_every_rule_in_words_with_its_basis(regulator):
    status, html = page(regulator, reverse("web-regulator-rules"))
    assert status == 200
    profile = rules_active()
    assert profile.name_en in html and profile.version in html
    rows = re.findall(r'data-testid="rule-row"', html)
    assert len(rows) == len(profile.all_rules())
    for found in profile.all_rules():
        assert str(RULE_LABELS[found.key]) in html  # every shipped rule has words, not its key
        assert markup.escape(found.basis_en) in html
    assert "¥5,000.00" in html and "500000" not in html  # the card cap in yuan, never fen
    assert "7 days" in html and "48 hours" in html
    assert "cooling_off_days" not in html


def test_the_page_speaks_chinese_to_a_chinese_browser(regulator):
    _status, html = page(regulator, reverse("web-regulator-rules"), language="zh-hans")
    assert rules_active().name_zh in html
    assert "《北京市单用途预付卡管理条例》" in html


def test_only_regulators_see_the_rules_page(consumer, merchant_user):
    for user in (consumer, merchant_user):
        status, _html = page(user, reverse("web-regulator-rules"))
        assert status == 403


@pytest.mark.parametrize("url_name", ["web-regulator-dashboard", "web-regulator-rules"])
def test_a_missing_holiday_year_is_announced_until_the_calendar_has_it(regulator, url_name):
    with time_machine.travel("2026-12-07 10:00 +0800", tick=False):
        _status, html = page(regulator, reverse(url_name))
    assert 'data-testid="calendar-gap"' in html and "2027" in html
    with time_machine.travel("2025-06-01 10:00 +0800", tick=False):
        _status, html = page(regulator, reverse(url_name))
    assert 'data-testid="calendar-gap"' not in html
