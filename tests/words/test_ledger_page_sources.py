"""The regulator's ledger page shows the newest ledger check from any source: the page's "verify
now", the nightly job, or ``manage.py verify_ledger``."""

import io
from datetime import datetime

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from core import clock
from escrow.models import LedgerCheck
from escrow.tasks import ledger_check_daily_task
from tests.escrow.ledger_helpers import funded_card
from tests.factories import UserFactory, sign_in
from tests.words.test_no_machine_text import visible_text

pytestmark = pytest.mark.django_db


def _page() -> str:
    client = Client(headers={"accept-language": "zh-hans"})
    sign_in(client, UserFactory(role="regulator"))
    return client.get(reverse("web-regulator-ledger")).content.decode()


def test_after_verify_ledger_the_page_shows_that_check():
    funded_card(5_000)
    assert "账本尚未核验" in visible_text(_page())
    with time_machine.travel(datetime(2026, 3, 10, 4, 5, tzinfo=clock.BEIJING), tick=False):
        call_command("verify_ledger", stdout=io.StringIO())
    check = LedgerCheck.objects.get()
    assert check.ok and check.entries == 1
    html = _page()
    assert 'data-testid="ledger-ok" data-ok="true"' in html
    assert "2026年3月10日 04:05" in visible_text(html)


def test_the_newest_check_wins_whatever_its_source():
    funded_card(5_000)
    with time_machine.travel(datetime(2026, 3, 10, 3, 20, tzinfo=clock.BEIJING), tick=False):
        ledger_check_daily_task()
    with time_machine.travel(datetime(2026, 3, 10, 9, 30, tzinfo=clock.BEIJING), tick=False):
        call_command("verify_ledger", stdout=io.StringIO())
    assert "2026年3月10日 09:30" in visible_text(_page())
    with time_machine.travel(datetime(2026, 3, 10, 11, 0, tzinfo=clock.BEIJING), tick=False):
        client = Client(headers={"accept-language": "zh-hans"})
        sign_in(client, UserFactory(role="regulator"))
        client.post(reverse("web-regulator-ledger"))
    assert LedgerCheck.objects.count() == 3
    assert "2026年3月10日 11:00" in visible_text(_page())
