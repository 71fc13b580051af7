"""The database's own guards and the ledger's locking, on a real PostgreSQL server."""

import threading

import pytest
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from core import sql
from escrow.errors import InsufficientFunds
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import Leg, journal_post, ledger_transfer
from tests.escrow.ledger_helpers import balance, funded_card, key, merchant_account

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _sql(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def release():
    card, merchant = funded_card(1_000), merchant_account()
    return ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=10, idempotency_key=key()
    )


def test_trigger_refuses_update_of_a_journal_entry(release):
    with pytest.raises(DatabaseError, match="append-only"):
        _sql("UPDATE escrow_journalentry SET memo = 'x' WHERE id = %s", [release.id])


def test_trigger_refuses_delete_of_a_journal_entry(release):
    with pytest.raises(DatabaseError, match="append-only"):
        _sql("DELETE FROM escrow_journalentry WHERE id = %s", [release.id])


def test_trigger_refuses_update_of_a_posting(release):
    with pytest.raises(DatabaseError, match="append-only"):
        _sql("UPDATE escrow_posting SET amount = amount + 1 WHERE entry_id = %s", [release.id])


def test_trigger_refuses_delete_of_a_posting(release):
    with pytest.raises(DatabaseError, match="append-only"):
        _sql("DELETE FROM escrow_posting WHERE entry_id = %s", [release.id])


def _insert_entry(cursor, postings):
    cursor.execute(
        "INSERT INTO escrow_journalentry "
        "(code, idempotency_key, actor_label, memo, created_at, chain, seq, prev_hash, hash) "
        "VALUES ('correction', %s, '', '', now(), 1023, "
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM escrow_journalentry WHERE chain = 1023), "
        "repeat('0', 64), repeat('0', 64)) RETURNING id",
        [key("raw")],
    )
    entry_id = cursor.fetchone()[0]
    for account_id, amount in postings:
        cursor.execute(
            "INSERT INTO escrow_posting (entry_id, account_id, amount) VALUES (%s, %s, %s)",
            [entry_id, account_id, amount],
        )
    return entry_id


def test_trigger_refuses_an_unbalanced_entry_at_commit():
    card, merchant = funded_card(1_000), merchant_account()
    entries = JournalEntry.objects.count()
    with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic(), connection.cursor() as cursor:
        _insert_entry(cursor, [(card.id, 10), (merchant.id, -9)])
    assert JournalEntry.objects.count() == entries


def test_trigger_refuses_an_entry_with_a_single_posting_at_commit():
    card = funded_card(1_000)
    with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic(), connection.cursor() as cursor:
        _insert_entry(cursor, [(card.id, 10)])


def test_trigger_refuses_a_posting_added_later_to_a_posted_entry(release):
    card_posting = release.postings.order_by("amount").last()
    with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO escrow_posting (entry_id, account_id, amount) VALUES (%s, %s, 5)",
            [release.id, card_posting.account_id],
        )


def test_trigger_accepts_a_balanced_raw_entry():
    card, merchant = funded_card(1_000), merchant_account()
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = _insert_entry(cursor, [(card.id, 10), (merchant.id, -10)])
    assert JournalEntry.objects.filter(pk=entry_id).exists()


def test_check_constraint_refuses_a_negative_balance_even_through_raw_sql():
    card = funded_card(100)
    with pytest.raises(IntegrityError, match="account_balance_non_negative"):
        _sql("UPDATE escrow_account SET balance = -1 WHERE id = %s", [card.id])


def _in_threads(count, work):
    errors = []

    def run(index):
        try:
            work(index)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_racing_releases_never_overdraw_a_card_and_conserve_every_fen():
    funded, amount, threads, per_thread = 50_000, 37, 8, 200
    card, merchant = funded_card(funded), merchant_account()
    outcomes = {"released": 0, "refused": 0}
    lock = threading.Lock()

    def work(index):
        for n in range(per_thread):
            try:
                ledger_transfer(
                    code="release",
                    debit_account_id=card.id,
                    credit_account_id=merchant.id,
                    amount=amount,
                    idempotency_key=f"race-{index}-{n}",
                )
                outcome = "released"
            except InsufficientFunds:
                outcome = "refused"
            with lock:
                outcomes[outcome] += 1

    _in_threads(threads, work)
    assert outcomes["released"] == funded // amount  # 1351: every release that fit, and no more
    assert outcomes["refused"] == threads * per_thread - funded // amount
    assert balance(card) == funded - outcomes["released"] * amount >= 0
    assert balance(card) + balance(merchant) == funded
    assert ledger_ok(ledger_verify())


def test_racing_calls_with_one_idempotency_key_post_once():
    card, merchant = funded_card(10_000), merchant_account()
    barrier = threading.Barrier(8)
    entry_ids = []

    def work(index):
        barrier.wait()
        entry = ledger_transfer(
            code="release",
            debit_account_id=card.id,
            credit_account_id=merchant.id,
            amount=250,
            idempotency_key="the-one-key",
        )
        entry_ids.append(entry.id)

    _in_threads(8, work)
    assert len(set(entry_ids)) == 1
    assert balance(merchant) == 250
    assert JournalEntry.objects.filter(idempotency_key="the-one-key").count() == 1
    assert ledger_ok(ledger_verify())


def _release_while_chain_is_held(*, held_card, card, merchant, wait_seconds):
    """Hold ``held_card``'s chain head in one transaction; try a release of ``card`` meanwhile.

    Returns whether the release finished while the chain was still held."""
    held_chain = held_card.id % settings.LEDGER_CHAIN_STRIPES
    holder_ready, stop_holding, released = threading.Event(), threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM escrow_chainhead WHERE chain = %s FOR UPDATE", [held_chain])
                holder_ready.set()
                stop_holding.wait(timeout=60)
        finally:
            connections.close_all()

    def release():
        try:
            ledger_transfer(
                code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=5, idempotency_key=key()
            )
            released.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holder_ready.wait(timeout=10)
    releaser = threading.Thread(target=release)
    releaser.start()
    finished_while_held = released.wait(timeout=wait_seconds)
    stop_holding.set()
    holder.join()
    releaser.join()
    assert released.is_set()
    return finished_while_held


def test_a_card_on_another_chain_is_not_blocked_by_a_held_chain():
    card_a, card_b, merchant = funded_card(100), funded_card(100), merchant_account()
    assert card_a.id % settings.LEDGER_CHAIN_STRIPES != card_b.id % settings.LEDGER_CHAIN_STRIPES
    assert _release_while_chain_is_held(held_card=card_a, card=card_b, merchant=merchant, wait_seconds=10)


def test_with_a_single_chain_every_release_waits_for_the_held_chain(settings):
    settings.LEDGER_CHAIN_STRIPES = 1
    card_a, card_b, merchant = funded_card(100), funded_card(100), merchant_account()
    assert not _release_while_chain_is_held(held_card=card_a, card=card_b, merchant=merchant, wait_seconds=1.5)


def test_a_post_without_its_id_is_written_in_front_of_the_transactions_next_statement():
    card, merchant = funded_card(1_000), merchant_account()
    legs = [Leg(card.id, 10), Leg(merchant.id, -10)]
    with transaction.atomic():
        journal_post(code="release", legs=legs, idempotency_key=key())  # prepares this session's statements
    posted = key()
    with transaction.atomic(), sql.writes_ahead():
        with CaptureQueriesContext(connection) as sent:
            entry = journal_post(code="release", legs=legs, idempotency_key=posted, need_id=False)
        assert entry.id is None and entry.balances[card.id] == 980
        assert len(sent) == 2  # the accounts' lock, then the balances with the chain head's lock
        stored = JournalEntry.objects.get(idempotency_key=posted)  # this statement carries the entry
        assert stored.hash == entry.hash and stored.seq == entry.seq
    assert balance(card) == 980 and balance(merchant) == 20
    assert ledger_ok(ledger_verify())


def test_a_deferred_post_the_database_refuses_fails_the_next_statement_and_nothing_of_it_is_kept():
    card, merchant = funded_card(1_000), merchant_account()
    refused = key()
    with pytest.raises(DatabaseError, match="too long"), transaction.atomic(), sql.writes_ahead():
        entry = journal_post(
            code="release",
            legs=[Leg(card.id, 5), Leg(merchant.id, -5)],
            idempotency_key=refused,
            memo="x" * 201,  # longer than the column: the entry's INSERT fails where it is sent
            need_id=False,
        )
        assert entry.id is None
        JournalEntry.objects.filter(idempotency_key=refused).exists()  # the next statement
    assert balance(card) == 1_000 and balance(merchant) == 0
    assert not JournalEntry.objects.filter(idempotency_key=refused).exists()
    assert ledger_ok(ledger_verify())
