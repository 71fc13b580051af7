"""``journal_post_many``: a batch of entries posts exactly what as many ``journal_post`` calls
would (one entry per movement, each on its chain with its own key and hash), or nothing."""

import pytest
from django.conf import settings
from django.db import transaction

from core.errors import IdempotencyKeyReused
from escrow.errors import InsufficientFunds, UnbalancedEntry
from escrow.models import ChainHead, JournalEntry, Posting
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import Leg, NewEntry, journal_post_many
from tests.escrow.ledger_helpers import balance, custody, funded_card, key, merchant_account, refund_payable

pytestmark = pytest.mark.django_db


def refund_of(card, amount: int, idempotency_key: str | None = None) -> NewEntry:
    return NewEntry(
        code="refund",
        legs=[Leg(card.id, amount), Leg(refund_payable().id, -amount)],
        idempotency_key=idempotency_key or key(),
    )


def post_many(entries):
    with transaction.atomic():
        return journal_post_many(entries)


def test_a_batch_posts_one_entry_per_movement_each_on_its_cards_chain():
    cards = [funded_card(1_000 + n) for n in range(5)]
    entries = post_many([refund_of(card, 1_000 + n) for n, card in enumerate(cards)])
    assert [e.replayed for e in entries] == [False] * 5
    assert JournalEntry.objects.filter(code="refund").count() == 5
    for n, (card, entry) in enumerate(zip(cards, entries, strict=True)):
        assert balance(card) == 0
        stored = JournalEntry.objects.get(pk=entry.pk)
        assert (stored.chain, stored.seq, stored.hash) == (entry.chain, entry.seq, entry.hash)
        assert stored.chain == card.id % settings.LEDGER_CHAIN_STRIPES  # the chain of its first leg, as always
        assert dict(Posting.objects.filter(entry=stored).values_list("account_id", "amount")) == {
            card.id: 1_000 + n,
            refund_payable().id: -(1_000 + n),
        }
    assert balance(refund_payable()) == sum(1_000 + n for n in range(5))
    assert ledger_ok(ledger_verify())  # every chain links, every entry balances


def test_entries_of_one_chain_in_a_batch_take_consecutive_places_on_it():
    card = funded_card(900)
    merchant = merchant_account()
    head = ChainHead.objects.filter(chain=card.id % settings.LEDGER_CHAIN_STRIPES).values_list("seq", flat=True)
    head = head[0] if head else 0
    entries = post_many(
        [
            NewEntry(code="release", legs=[Leg(card.id, 100), Leg(merchant.id, -100)], idempotency_key=key()),
            NewEntry(code="release", legs=[Leg(card.id, 200), Leg(merchant.id, -200)], idempotency_key=key()),
            refund_of(card, 600),
        ]
    )
    assert [e.seq for e in entries] == [head + 1, head + 2, head + 3]
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert (balance(card), balance(merchant)) == (0, 300)
    assert ledger_ok(ledger_verify())


def test_a_batch_replays_entries_already_posted_under_their_keys_and_moves_them_once():
    first, second = funded_card(500), funded_card(700)
    (posted,) = post_many([refund_of(first, 500, "refund:first")])
    entries = post_many([refund_of(first, 500, "refund:first"), refund_of(second, 700, "refund:second")])
    assert [e.replayed for e in entries] == [True, False]
    assert entries[0].pk == posted.pk
    assert (balance(first), balance(second), balance(refund_payable())) == (0, 0, 1_200)
    assert JournalEntry.objects.filter(code="refund").count() == 2
    assert ledger_ok(ledger_verify())


def test_a_key_posted_before_with_other_postings_refuses_the_whole_batch():
    first, second = funded_card(500), funded_card(700)
    post_many([refund_of(first, 200, "refund:first")])
    with pytest.raises(IdempotencyKeyReused):
        post_many([refund_of(second, 700), refund_of(first, 300, "refund:first")])
    assert (balance(first), balance(second)) == (300, 700)
    assert JournalEntry.objects.filter(code="refund").count() == 1


def test_a_batch_that_would_overdraw_an_account_at_any_entry_writes_nothing():
    card, merchant = funded_card(1_000), merchant_account()
    entries_before = JournalEntry.objects.count()
    with pytest.raises(InsufficientFunds):
        post_many(
            [
                NewEntry(code="release", legs=[Leg(card.id, 800), Leg(merchant.id, -800)], idempotency_key=key()),
                # Overdraws the card here, even though the next entry would have brought it back.
                NewEntry(code="release", legs=[Leg(card.id, 300), Leg(merchant.id, -300)], idempotency_key=key()),
                NewEntry(code="purchase", legs=[Leg(custody().id, 500), Leg(card.id, -500)], idempotency_key=key()),
            ]
        )
    assert (balance(card), balance(merchant)) == (1_000, 0)
    assert JournalEntry.objects.count() == entries_before


def test_a_batch_naming_one_key_twice_is_refused():
    card = funded_card(1_000)
    with pytest.raises(UnbalancedEntry):
        post_many([refund_of(card, 100, "twice"), refund_of(card, 200, "twice")])
    assert balance(card) == 1_000


def test_an_unbalanced_entry_refuses_the_whole_batch():
    card = funded_card(1_000)
    with pytest.raises(UnbalancedEntry):
        post_many(
            [
                refund_of(card, 100),
                NewEntry(code="refund", legs=[Leg(card.id, 5), Leg(refund_payable().id, -4)], idempotency_key=key()),
            ]
        )
    assert balance(card) == 1_000


def test_a_batch_larger_than_a_case_statement_posts_through_arrays_as_singles_would():
    """Above ``CASE_ROWS_MAX`` rows the balances, entries and postings travel as arrays."""
    from escrow.statements import CASE_ROWS_MAX

    cards = [funded_card(500 + n) for n in range(CASE_ROWS_MAX + 6)]
    merchants = [merchant_account() for _ in range(CASE_ROWS_MAX + 3)]
    releases = [
        NewEntry(
            code="release",
            legs=[Leg(card.id, 500 + n), Leg(merchants[n % len(merchants)].id, -(500 + n))],
            idempotency_key=key(),
        )
        for n, card in enumerate(cards)
    ]
    entries = post_many(releases)
    assert len({entry.pk for entry in entries}) == len(cards) and all(entry.pk for entry in entries)
    for n, (card, entry) in enumerate(zip(cards, entries, strict=True)):
        assert balance(card) == 0
        assert dict(Posting.objects.filter(entry_id=entry.pk).values_list("account_id", "amount")) == {
            card.id: 500 + n,
            merchants[n % len(merchants)].id: -(500 + n),
        }
    assert sum(balance(merchant) for merchant in merchants) == sum(500 + n for n in range(len(cards)))
    assert all(entry.replayed for entry in post_many(releases))
    assert ledger_ok(ledger_verify())
