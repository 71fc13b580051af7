"""Every form a page posts, sent empty, answers in the page's language: in Chinese,
no English sentence (Django's stock messages or ours) and no English full stop after Chinese text."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

from tests.security.test_csrf import ROLES, rendered_forms
from tests.words.test_no_machine_text import client_for, visible_text

ENGLISH_SENTENCE = re.compile(r"\b[A-Z][a-z]+(?: [a-z']+){2,}[.!?]")
CHINESE_THEN_PERIOD = re.compile(r"[\u4e00-\u9fff）]\.(?:\s|$)")


@pytest.mark.django_db
def test_form_errors_on_chinese_pages_are_chinese(world):
    problems = []
    pages = rendered_forms(world)
    for role in ROLES:
        client = client_for(world, role, "zh-hans")
        targets = {
            urljoin(path, form["action"] or path) for (r, path), forms in pages.items() if r == role for form in forms
        }
        for target in sorted(targets):
            response = client.post(target, {}, follow=True)
            if not response["Content-Type"].startswith("text/html"):
                continue
            text = visible_text(response.content.decode())
            for pattern in (ENGLISH_SENTENCE, CHINESE_THEN_PERIOD):
                problems += [f"{role} {target}: {m.group(0)!r}" for m in pattern.finditer(text)]
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.django_db
def test_the_refund_fee_is_typed_as_a_percentage_and_kept_in_basis_points(world):
    from django.urls import reverse

    from merchants.models import Product

    client = client_for(world, "merchant", "zh-hans")
    form = visible_text(client.get(reverse("web-merchant-home")).content.decode())
    assert "退款手续费（%）" in form and "基点" not in form
    fields = {"name": "五次课", "kind": "session_pack", "price": "500", "sessions": "5"}
    refused = client.post(reverse("web-merchant-product-create"), {**fields, "refund_fee_bps": "5.555"})
    text = visible_text(refused.content.decode())
    assert "小数不能超过 2 位。" in text and not CHINESE_THEN_PERIOD.search(text)
    client.post(reverse("web-merchant-product-create"), {**fields, "refund_fee_bps": "5.5"})
    assert Product.objects.get(merchant=world.merchant, name="五次课").refund_fee_bps == 550
