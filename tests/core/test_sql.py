"""``core.sql``: rows read and written in plain SQL are the ones the ORM reads and writes."""

import uuid
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.models import Card, Payment
from core import clock
from core import sql as rows
from escrow.models import Account
from tests.cards import builders

pytestmark = pytest.mark.django_db


def _values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def _read(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def test_a_row_read_in_plain_sql_is_the_instance_the_orm_reads():
    card = builders.paid_card(builders.stored_value(builders.merchant()))
    row = _read(
        f"SELECT {rows.columns(Card, 'c')} FROM {rows.table(Card)} c WHERE c.id = %s", [rows.param(Card, "pk", card.pk)]
    )
    built = rows.build(Card, row)
    assert _values(built) == _values(Card.objects.get(pk=card.pk))
    assert isinstance(built.id, uuid.UUID) and built.paid_at.tzinfo is not None
    assert not built._state.adding and built._state.db == "default"


def test_the_missing_side_of_an_outer_join_is_none_and_can_be_cached_as_absent(django_assert_num_queries):
    account = Account.objects.create(kind=Account.Kind.CARD_ESCROW, name="loose", created_at=clock.now())
    row = _read(
        f"SELECT {rows.columns(Account, 'a')}, {rows.columns(Card, 'c')} FROM {rows.table(Account)} a "
        f"LEFT JOIN {rows.table(Card)} c ON c.escrow_account_id = a.id WHERE a.id = %s",
        [account.pk],
    )
    built = rows.build(Account, row)
    assert rows.build(Card, row, rows.width(Account)) is None
    rows.set_cached(built, "card", None)
    with django_assert_num_queries(0), pytest.raises(Card.DoesNotExist):
        built.card  # noqa: B018


def test_insert_writes_what_create_writes_and_takes_the_new_auto_key():
    account = Account(kind=Account.Kind.CARD_ESCROW, name="plain", created_at=clock.now())
    with transaction.atomic():
        rows.insert(account)
    assert account.pk is not None and not account._state.adding
    assert _values(Account.objects.get(pk=account.pk)) == _values(account)


def test_update_writes_the_named_fields_and_adds_to_columns_on_the_row():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=60_000, sessions=3))
    before = Card.objects.get(pk=card.pk)
    card.paid_at = None  # a field not named is not written
    card.refund_fee_bps = 7
    rows.update(card, ["refund_fee_bps"], add={"released_total": 20_000, "sessions_remaining": -1})
    after = Card.objects.get(pk=card.pk)
    assert (after.refund_fee_bps, after.released_total, after.sessions_remaining) == (7, 20_000, 2)
    assert after.paid_at == before.paid_at


@pytest.mark.parametrize("value", ["not-a-uuid", "12345"])
def test_a_malformed_key_raises_what_the_orm_raises(value):
    with pytest.raises(ValidationError):
        rows.param(Payment, "pk", value)
    with pytest.raises(ValidationError):
        Payment.objects.filter(pk=value).first()


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


@pytest.mark.postgres
def test_a_hot_read_is_prepared_once_per_session_and_survives_a_rollback():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    sql = f"SELECT c.price FROM {rows.table(Card)} c WHERE c.id = %s AND c.kind = %s"
    params = [rows.param(Card, "pk", card.pk), "session_pack"]
    assert rows.fetch(sql, params) == [(card.price,)]
    prepared = [statement for statement in _prepared_statements() if "c.kind = $2" in statement]
    assert len(prepared) == 1
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        assert rows.fetch(sql, params) == [(card.price,)]
        raise ZeroDivisionError  # the transaction rolls back; the session keeps the statement
    assert rows.fetch(sql, params, limit=1) == [(card.price,)]
    assert [statement for statement in _prepared_statements() if "c.kind = $2" in statement] == prepared


@pytest.mark.postgres
def test_prepared_statements_can_be_turned_off(settings):
    settings.DB_PREPARED_STATEMENTS = False
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    sql = f"SELECT c.days, c.price FROM {rows.table(Card)} c WHERE c.id = %s"
    assert rows.fetch(sql, [rows.param(Card, "pk", card.pk)]) == [(None, card.price)]
    assert not [statement for statement in _prepared_statements() if "c.days, c.price" in statement]


def test_writes_run_together_in_order_and_a_failing_one_raises_and_stops_the_rest():
    from django.db import IntegrityError

    card = builders.paid_card(builders.session_pack(builders.merchant(), price=60_000, sessions=3))
    card.refund_fee_bps = 9
    rows.execute_all([rows.update_statement(card, ["refund_fee_bps"]), None, rows.update_statement(card)])
    assert Card.objects.get(pk=card.pk).refund_fee_bps == 9

    card.refund_fee_bps = 11
    overdrawn = rows.update_statement(card, add={"released_total": card.price + 1})  # breaks a check constraint
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.execute_all([overdrawn, rows.update_statement(card, ["refund_fee_bps"])])
    assert Card.objects.get(pk=card.pk).refund_fee_bps == 9


def test_rows_inserted_together_are_all_written_and_marked_saved():
    account = Account(kind=Account.Kind.CARD_ESCROW, name="first", created_at=clock.now())
    other = Account(kind=Account.Kind.CARD_ESCROW, name="second", created_at=clock.now())
    with transaction.atomic():
        rows.insert(account, other)
    assert account.pk and other.pk and account.pk != other.pk
    assert not account._state.adding and not other._state.adding
    assert [a.name for a in Account.objects.filter(pk__in=[account.pk, other.pk]).order_by("pk")] == [
        "first",
        "second",
    ]


@pytest.mark.postgres
def test_writes_ahead_wait_for_the_next_statement_and_travel_in_its_round_trip():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    sent = []

    def record(execute, sql, params, many, context):  # inside writes_ahead's wrapper: sees what is sent
        sent.append(sql)
        return execute(sql, params, many, context)

    card.refund_fee_bps = 7
    with transaction.atomic(), rows.writes_ahead(), connection.execute_wrapper(record):
        rows.execute_all([rows.update_statement(card, ["refund_fee_bps"])])
        assert sent == []  # nothing sent yet
        seen = _read(f"SELECT refund_fee_bps FROM {rows.table(Card)} WHERE id = %s", [rows.param(Card, "pk", card.pk)])
    assert seen == (7,)  # the read saw the write that went in front of it
    assert len(sent) == 1 and sent[0].endswith('; SELECT refund_fee_bps FROM "consumers_card" WHERE id = %s')


@pytest.mark.postgres
def test_a_write_left_waiting_is_sent_when_the_block_ends_and_a_failing_one_raises_at_the_next_statement():
    from django.db import IntegrityError

    card = builders.paid_card(builders.session_pack(builders.merchant()))
    card.refund_fee_bps = 5
    with transaction.atomic(), rows.writes_ahead():
        rows.execute_all([rows.update_statement(card, ["refund_fee_bps"])])
    assert Card.objects.get(pk=card.pk).refund_fee_bps == 5

    overdrawn = rows.update_statement(card, add={"released_total": card.price + 1})  # breaks a check constraint
    with pytest.raises(IntegrityError), transaction.atomic(), rows.writes_ahead():
        rows.execute_all([overdrawn])
        _read("SELECT 1", [])
    assert Card.objects.get(pk=card.pk).released_total == card.released_total


@pytest.mark.postgres
def test_writes_are_prepared_once_per_session_and_a_failed_round_trip_prepares_afresh():
    from django.db import IntegrityError

    def session_statements() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements")
            return {name for (name,) in cursor.fetchall()}

    card = builders.paid_card(builders.session_pack(builders.merchant()))
    card.refund_fee_bps = 3
    update_fee = rows.update_statement(card, ["refund_fee_bps"])
    rows.execute_all([update_fee])
    name = rows._prepared[connection.connection][update_fee[0]]
    rows.execute_all([update_fee])
    assert rows._prepared[connection.connection][update_fee[0]] == name and name in session_statements()

    # A PREPARE that travels behind a failing statement never runs: the session must not
    # believe it has that statement afterwards.
    card.days = 30
    update_days = rows.update_statement(card, ["days"])
    overdrawn = rows.update_statement(card, add={"released_total": card.price + 1})
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.execute_all([overdrawn, update_days])
    assert update_days[0] not in rows._prepared[connection.connection]
    rows.execute_all([update_days])
    assert Card.objects.get(pk=card.pk).days == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_fresh_connection_prepares_its_first_statement():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    connection.close()  # as in a new worker process: the first read opens the session
    sql = f"SELECT c.price FROM {rows.table(Card)} c WHERE c.id = %s"
    assert rows.fetch(sql, [rows.param(Card, "pk", card.pk)]) == [(card.price,)]
    connection.close()
    card.refund_fee_bps = 4
    rows.execute_all([rows.update_statement(card, ["refund_fee_bps"])])
    assert Card.objects.get(pk=card.pk).refund_fee_bps == 4


def _claim_world():
    """A claimed account row (a unique primary key) and a statement to travel with."""
    taken = Account.objects.create(kind=Account.Kind.CARD_ESCROW, name="taken", created_at=clock.now())
    claim = rows.insert_statement(
        Account(pk=taken.pk, kind=Account.Kind.CARD_ESCROW, name="again", created_at=clock.now())
    )
    return taken, claim


@pytest.mark.postgres
def test_a_claim_travels_first_in_the_round_trip_of_the_next_statement_without_a_savepoint():
    free = rows.insert_statement(Account(pk=10**9, kind=Account.Kind.CARD_ESCROW, name="free", created_at=clock.now()))
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), rows.writes_ahead(), connection.execute_wrapper(record):
        rows.claim_ahead([free], refused=lambda error: True)
        assert sent == []
        assert _read(f"SELECT name FROM {rows.table(Account)} WHERE id = %s", [10**9]) == ("free",)
    assert len(sent) == 1 and "INSERT INTO" in sent[0] and sent[0].endswith("WHERE id = %s")
    assert sent[0].index("INSERT INTO") < sent[0].index("SELECT name") and "SAVEPOINT" not in sent[0]


@pytest.mark.parametrize("deferred", [True, False], ids=["in front of the next statement", "at once"])
def test_a_refused_claim_stops_the_statement_before_it_runs_and_leaves_the_transaction_to_roll_back(deferred):
    if deferred and connection.vendor != "postgresql":
        pytest.skip("writes wait only on PostgreSQL")
    taken, claim = _claim_world()
    ran = []
    before = Account.objects.count()
    with (
        pytest.raises(rows.ClaimRefused) as refused,
        transaction.atomic(),
        rows.writes_ahead() if deferred else transaction.atomic(),
    ):
        rows.claim_ahead([claim], refused=lambda error: rows.unique_violated(error, Account))
        try:  # an ``except Exception`` of the code whose statement the claim stopped does not see it
            Account.objects.create(kind=Account.Kind.CARD_ESCROW, name="never", created_at=clock.now())
        except Exception:  # noqa: BLE001
            ran.append("caught")
    assert rows.unique_violated(refused.value.error, Account)
    assert ran == []
    assert Account.objects.count() == before and not Account.objects.filter(name="never").exists()
    assert Account.objects.get(pk=taken.pk).name == "taken"


@pytest.mark.postgres
def test_another_error_in_the_claims_round_trip_is_the_statements_own():
    _, claim = _claim_world()
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic(), rows.writes_ahead():
        rows.claim_ahead([claim], refused=lambda error: False)
        _read("SELECT 1", [])


def test_rows_inserted_in_bulk_keep_each_value_its_constants_and_defaults_and_skip_taken_keys(monkeypatch):
    """``rows_insert``: JSON, text, a constant timestamp and a constant NULL, defaults filled in;
    on PostgreSQL a batch of arrays per ``ARRAY_ROWS`` rows (three here, so seven rows take three
    statements); with ``ignore_conflicts`` a key already written keeps its first row."""
    from core.models import OutboxMessage

    monkeypatch.setattr(rows, "ARRAY_ROWS", 3)
    now = clock.now()
    OutboxMessage.objects.create(
        topic="payout.send", payload={"n": "first"}, idempotency_key="k2", next_attempt_at=now, created_at=now
    )
    items = [({"n": n, "name": f"商户 {n}", "nested": [n, None]}, f"k{n}") for n in range(7)]
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(record):
        rows.rows_insert(
            model=OutboxMessage,
            fields=["payload", "idempotency_key"],
            rows=items,
            constants={"topic": "payout.send", "next_attempt_at": now, "created_at": now, "sent_at": None},
            ignore_conflicts=True,
        )
    stored = {m.idempotency_key: m for m in OutboxMessage.objects.all()}
    assert set(stored) == {f"k{n}" for n in range(7)}
    assert stored["k2"].payload == {"n": "first"}  # taken before: skipped
    assert stored["k5"].payload == {"n": 5, "name": "商户 5", "nested": [5, None]}
    assert {(m.topic, m.state, m.attempts, m.last_error, m.created_at, m.sent_at) for m in stored.values()} == {
        ("payout.send", "pending", 0, "", now, None)
    }
    assert len(sent) == (3 if connection.vendor == "postgresql" else 1)


# Any text PostgreSQL stores (no NUL, no lone surrogate).
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@pytest.mark.postgres
@given(
    texts=st.lists(st.none() | ANY_TEXT),
    numbers=st.lists(st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_an_array_sent_as_its_text_form_reads_back_as_the_same_values(texts, numbers):
    """``sql.array_param``: quotes, backslashes, braces, commas, the word NULL, spaces and any
    other character come back as sent; None as NULL; integers to the edges of bigint."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's array input")
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[]", [rows.array_param(texts), rows.array_param(numbers)])
        assert cursor.fetchone() == (texts, numbers)


@pytest.mark.postgres
def test_an_array_of_uuids_dates_datetimes_and_booleans_reads_back_typed_and_other_values_go_as_a_list():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's array input")
    ids = [uuid.uuid4(), None, uuid.uuid4()]
    moments = [clock.now(), clock.now().astimezone(clock.BEIJING)]
    days = [date(2026, 3, 2), date(1999, 12, 31)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::uuid[], %s::timestamptz[], %s::date[], %s::boolean[]",
            [rows.array_param(v) for v in (ids, moments, days, [True, None, False])],
        )
        assert cursor.fetchone() == (ids, moments, days, [True, None, False])
    assert rows.array_param([1.5, 2]) == [1.5, 2]  # a float has no text form here: psycopg2 adapts the list
