"""Migration consumers/0007 gives every existing card its own counter code, then makes it required and unique."""

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from consumers.models import COUNTER_CODE_ALPHABET
from tests.cards import builders

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("consumers", "0006_card_rules_version")]
AFTER = [("consumers", "0007_card_counter_code")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_existing_cards_each_get_their_own_code():
    pack = builders.session_pack(builders.merchant())
    ids = {builders.paid_card(pack).pk for _ in range(5)}
    try:
        migrate(BEFORE)
        cards = migrate(AFTER).get_model("consumers", "Card")
        codes = dict(cards.objects.values_list("pk", "counter_code"))
        assert set(codes) == ids
        assert len(set(codes.values())) == len(ids)
        assert all(re.fullmatch(f"[{COUNTER_CODE_ALPHABET}]{{8}}", code) for code in codes.values())
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
