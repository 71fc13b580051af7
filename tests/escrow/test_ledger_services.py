import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import IdempotencyKeyReused
from escrow.errors import InsufficientFunds, UnbalancedEntry, UnknownAccount
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import Leg, account_open, journal_post, ledger_post, ledger_transfer
from tests.escrow.ledger_helpers import balance, custody, funded_card, key, merchant_account, refund_payable

pytestmark = pytest.mark.django_db


def test_purchase_puts_money_in_card_escrow_and_custody():
    card = funded_card(10_000)
    assert balance(card) == 10_000
    assert balance(custody()) == 10_000
    assert ledger_ok(ledger_verify())


def test_release_moves_exactly_the_amount_from_escrow_to_merchant():
    card, merchant = funded_card(10_000), merchant_account()
    ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=3_333, idempotency_key=key()
    )
    assert (balance(card), balance(merchant), balance(custody())) == (6_667, 3_333, 10_000)


def test_entry_postings_are_signed_and_sum_to_zero():
    card, merchant = funded_card(500), merchant_account()
    entry = ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=200, idempotency_key=key()
    )
    amounts = dict(Posting.objects.filter(entry_id=entry.id).values_list("account_id", "amount"))
    assert amounts == {card.id: 200, merchant.id: -200}


def test_overdrawing_card_escrow_is_refused_and_moves_nothing():
    card, merchant = funded_card(1_000), merchant_account()
    entries_before = JournalEntry.objects.count()
    with pytest.raises(InsufficientFunds):
        ledger_transfer(
            code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=1_001, idempotency_key=key()
        )
    assert (balance(card), balance(merchant)) == (1_000, 0)
    assert JournalEntry.objects.count() == entries_before


def test_paying_out_more_than_merchant_settlement_is_refused():
    merchant = merchant_account()
    with pytest.raises(InsufficientFunds):
        ledger_transfer(
            code="payout", debit_account_id=merchant.id, credit_account_id=custody().id, amount=1, idempotency_key=key()
        )


def test_same_idempotency_key_posts_once():
    card, merchant = funded_card(1_000), merchant_account()
    first = ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=100, idempotency_key="once"
    )
    again = ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=100, idempotency_key="once"
    )
    assert again.pk == first.pk
    assert balance(merchant) == 100


def test_same_idempotency_key_with_other_postings_is_a_conflict():
    card, merchant = funded_card(1_000), merchant_account()
    ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=100, idempotency_key="k1"
    )
    with pytest.raises(IdempotencyKeyReused):
        ledger_transfer(
            code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=101, idempotency_key="k1"
        )
    assert balance(merchant) == 100


@pytest.mark.parametrize(
    "legs",
    [
        [Leg(1, 100)],
        [Leg(1, 100), Leg(2, -99)],
        [Leg(1, 100), Leg(1, -100)],
        [Leg(1, 0), Leg(2, 0)],
        [Leg(1, 1.5), Leg(2, -1.5)],
        [Leg(1, True), Leg(2, -1)],
    ],
    ids=["one-leg", "unbalanced", "same-account-twice", "zero", "float", "bool"],
)
def test_malformed_entries_are_refused_before_any_write(legs):
    with pytest.raises(UnbalancedEntry):
        ledger_post(code="correction", legs=legs, idempotency_key=key())
    assert JournalEntry.objects.count() == 0


def test_transfer_of_non_positive_amount_is_refused():
    card, merchant = funded_card(100), merchant_account()
    with pytest.raises(UnbalancedEntry):
        ledger_transfer(
            code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=-5, idempotency_key=key()
        )


def test_posting_to_an_unknown_account_is_refused():
    with pytest.raises(UnknownAccount):
        ledger_transfer(
            code="purchase", debit_account_id=custody().id, credit_account_id=999_999, amount=5, idempotency_key=key()
        )


def test_multi_leg_refund_with_fee_balances():
    card, merchant = funded_card(10_000), merchant_account()
    ledger_post(
        code="refund",
        legs=[Leg(card.id, 10_000), Leg(refund_payable().id, -9_500), Leg(merchant.id, -500)],
        idempotency_key=key(),
    )
    assert (balance(card), balance(refund_payable()), balance(merchant)) == (0, 9_500, 500)
    assert ledger_ok(ledger_verify())


def test_journal_post_requires_the_callers_transaction():
    card, merchant = funded_card(100), merchant_account()
    with pytest.raises(RuntimeError):
        # pytest-django's test transaction counts as one; leave it to prove the guard.
        connection.in_atomic_block = False
        try:
            journal_post(code="release", legs=[Leg(card.id, 1), Leg(merchant.id, -1)], idempotency_key=key())
        finally:
            connection.in_atomic_block = True


def test_journal_post_joins_the_callers_transaction_and_rolls_back_with_it():
    card, merchant = funded_card(100), merchant_account()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        journal_post(code="release", legs=[Leg(card.id, 40), Leg(merchant.id, -40)], idempotency_key=key())
        1 / 0  # noqa: B018 (the caller fails after posting)
    assert (balance(card), balance(merchant)) == (100, 0)


def test_entries_of_one_card_share_a_chain_and_number_it_without_gaps():
    card, merchant = funded_card(1_000), merchant_account()
    for _ in range(3):
        ledger_transfer(
            code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=1, idempotency_key=key()
        )
    releases = JournalEntry.objects.filter(code="release").order_by("seq")
    assert len({entry.chain for entry in releases}) == 1
    seqs = [entry.seq for entry in releases]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    links = list(releases.values_list("prev_hash", "hash"))
    assert all(links[i + 1][0] == links[i][1] for i in range(2))


def test_a_merchant_custody_account_opens_beside_the_city_wide_one_but_a_second_city_wide_is_refused():
    city = custody()
    own = account_open(kind=Account.Kind.CUSTODY, name="a merchant's custody")
    assert (own.kind, own.city_wide, city.city_wide) == (Account.Kind.CUSTODY, False, True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(
            kind=Account.Kind.CUSTODY, name="second city custody", city_wide=True, created_at=own.created_at
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(
            kind=Account.Kind.CARD_ESCROW, name="a city-wide card?", city_wide=True, created_at=own.created_at
        )


def test_a_replayed_post_says_so_and_a_new_one_reports_balances():
    card, merchant = funded_card(1_000), merchant_account()
    first = ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=300, idempotency_key="r"
    )
    again = ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=300, idempotency_key="r"
    )
    assert (first.replayed, again.replayed) == (False, True)
    assert first.balances == {card.id: 700, merchant.id: 300}
