"""A 403 or a 404 is the client's affair: it logs one line, never a traceback."""

import io
import logging

import pytest
from django.test import override_settings

from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _logged(request) -> str:
    """What the configured handlers a ``django.request`` record reaches write while ``request()``
    runs (pytest's own capturing handlers, subclasses, are left out)."""
    out = io.StringIO()
    swapped = []
    logger: logging.Logger | None = logging.getLogger("django.request")
    while logger is not None:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                swapped.append((handler, handler.setStream(out)))
        logger = logger.parent if logger.propagate else None
    try:
        request()
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)
    return out.getvalue()


@pytest.mark.parametrize("debug", [False, True])
def test_a_404_and_a_403_under_the_api_log_one_line_each(debug):
    consumer = client_for(UserFactory())
    with override_settings(DEBUG=debug):
        missing = _logged(lambda: consumer.get("/api/v1/cards/00000000-0000-0000-0000-000000000000"))
        unrouted = _logged(lambda: consumer.get("/api/v1/no-such-thing"))
        refused = _logged(lambda: consumer.get("/api/v1/regulator/ledger/verify"))
    assert missing.splitlines() == ["Not Found: /api/v1/cards/00000000-0000-0000-0000-000000000000"]
    assert unrouted.splitlines() == ["Not Found: /api/v1/no-such-thing"]
    assert refused.splitlines() == ["Forbidden: /api/v1/regulator/ledger/verify"]


def test_a_page_refused_to_the_wrong_role_logs_one_line_without_its_traceback(client):
    client.force_login(UserFactory())
    logged = _logged(lambda: client.get("/r/"))
    assert logged.splitlines() == ["Forbidden (Permission denied): /r/"]
