"""The people to contact on an inspection case's page: the complainants of the case's merchant,
masked; a form per person, with a reason, shows that one's full name and phone number on the page
it answers with, and the audit log records it. Outside the jurisdiction, of another merchant or on
a closed case, nothing is shown and nothing is written."""

from __future__ import annotations

import pytest
from django.test import Client

from consumers.services import consumer_register
from regulator.models import AuditEvent
from regulator.services import cases as services
from regulator.services.jurisdiction import regulator_scope_set
from regulator.web_cases import CONTACTS_SHOWN
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db

PHONE = "13912345678"


@pytest.fixture
def inspector(db):
    return UserFactory(role="regulator", username="inspector")


@pytest.fixture
def gym(db):
    return builders.merchant(name="阳光健身", district="朝阳区")


@pytest.fixture
def complainant(gym):
    person = consumer_register(username="wangxiaoming", password=builders.PASSWORD, display_name="王小明", phone=PHONE)
    app_complaint(person, gym)
    return person


@pytest.fixture
def case(inspector, gym):
    return services.case_open(regulator=inspector, merchant_id=gym.pk, reason="投诉集中")


def browser(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def reveal(client, case, consumer, reason="核实投诉情况，需电话回访"):
    return client.post(f"/r/cases/{case.pk}/contacts/{consumer.pk}/", {"reason": reason})


def reveals():
    return AuditEvent.objects.filter(verb="contact_reveal")


def test_the_case_page_lists_the_complainants_masked_only(inspector, case, complainant):
    page = browser(inspector).get(f"/r/cases/{case.pk}/").content.decode()

    assert 'data-testid="contacts"' in page
    assert "王**" in page and "139****5678" in page
    assert "王小明" not in page and PHONE not in page
    assert f'action="/r/cases/{case.pk}/contacts/{complainant.pk}/#contacts"' in page
    assert not reveals().exists()


def test_a_reveal_with_a_reason_shows_the_full_contact_once_and_is_audited(inspector, case, complainant):
    client = browser(inspector)

    response = reveal(client, case, complainant)

    page = response.content.decode()
    assert response.status_code == 200
    assert "王小明" in page and PHONE in page
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    (event,) = reveals()
    assert event.actor == inspector and event.merchant_id == case.merchant_id
    assert event.target == f"case:{case.pk}"
    assert event.changes == {"consumer": [None, str(complainant.pk)]}
    assert event.reason == "核实投诉情况，需电话回访"

    again = client.get(f"/r/cases/{case.pk}/").content.decode()
    assert PHONE not in again and "王小明" not in again
    assert "139****5678" in again and 'data-verb="contact_reveal"' in again  # the timeline, masked
    timeline = again.split('data-testid="timeline"')[1]
    assert "王**" in timeline and str(complainant.pk) not in timeline  # whose, masked; no internal key


def test_a_reveal_without_a_reason_is_refused_and_writes_nothing(inspector, case, complainant):
    response = reveal(browser(inspector), case, complainant, reason="   ")

    assert response.status_code == 400
    assert PHONE not in response.content.decode()
    assert not reveals().exists()


def test_there_is_no_get_that_reveals(inspector, case, complainant):
    response = browser(inspector).get(f"/r/cases/{case.pk}/contacts/{complainant.pk}/")

    assert response.status_code == 405 and not reveals().exists()


def test_a_consumer_who_did_not_complain_about_the_merchant_is_not_found(inspector, case, gym):
    elsewhere = builders.consumer()
    app_complaint(elsewhere, builders.merchant(name="别家健身"))

    response = reveal(browser(inspector), case, elsewhere)

    assert response.status_code == 404 and not reveals().exists()


def test_a_regulator_of_another_district_is_told_the_case_does_not_exist(case, complainant):
    outsider = UserFactory(role="regulator", username="haidian")
    regulator_scope_set(user=outsider, districts=["海淀区"])
    client = browser(outsider)

    assert client.get(f"/r/cases/{case.pk}/").status_code == 404
    assert reveal(client, case, complainant).status_code == 404
    assert not reveals().exists()


def test_a_closed_case_lists_no_contacts_and_refuses_a_reveal(inspector, case, complainant):
    services.case_close(regulator=inspector, case_id=case.pk, conclusion="结案")
    client = browser(inspector)

    page = client.get(f"/r/cases/{case.pk}/").content.decode()
    response = reveal(client, case, complainant)

    assert 'data-testid="contacts"' not in page
    assert response.status_code == 302 and response["Location"] == f"/r/cases/{case.pk}/"
    assert PHONE not in client.get(response["Location"]).content.decode()
    assert not reveals().exists()


def test_the_list_is_bounded_to_the_most_recent_complainants(inspector, case, gym, complainant):
    for _ in range(CONTACTS_SHOWN):
        app_complaint(builders.consumer(), gym)

    page = browser(inspector).get(f"/r/cases/{case.pk}/").content.decode()

    assert page.count('data-testid="contact"') == CONTACTS_SHOWN
    assert f'data-consumer="{complainant.pk}"' not in page  # the oldest complaint
    assert "另有 1 人未列出。" in page
