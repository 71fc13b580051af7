"""Migration consumers/0005 moves the consumers' notices into notifications.Notification, rows kept."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core import clock
from tests.cards import builders

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("consumers", "0004_card_card_paid_at_idx")]
AFTER = [("consumers", "0005_move_notifications")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_kept_notices_move_to_their_users_and_back():
    consumer, gym = builders.consumer(), builders.merchant()
    try:
        old = migrate(BEFORE).get_model("consumers", "Notification")
        read_at = clock.now()
        old.objects.create(
            consumer_id=consumer.pk, kind="merchant_closing", merchant_id=gym.pk, title="Gym is closing",
            body="Gym will close.", created_at=clock.now(), read_at=read_at,
        )  # fmt: skip

        new = migrate(AFTER).get_model("notifications", "Notification")
        moved = new.objects.get(user_id=consumer.user_id, kind="merchant_closing")
        assert (moved.title, moved.body, moved.merchant_id, moved.read_at) == (
            "Gym is closing", "Gym will close.", gym.pk, read_at,
        )  # fmt: skip
        assert moved.event_key == f"merchant_closing:{gym.pk}" and moved.channels == ["in_app"]

        old = migrate(BEFORE).get_model("consumers", "Notification")
        assert old.objects.get(consumer_id=consumer.pk).title == "Gym is closing"
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
