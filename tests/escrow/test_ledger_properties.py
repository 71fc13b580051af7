"""Random sequences of ledger movements keep every invariant of escrow/models.py after each step."""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from escrow.errors import InsufficientFunds
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import ledger_verify
from escrow.services import Leg, account_open, ledger_check_run, ledger_post, ledger_transfer
from tests.escrow.ledger_helpers import (
    balance,
    checkpoint_totals,
    custody,
    key,
    merchant_account,
    posting_totals,
    refund_payable,
)

amounts = st.integers(min_value=1, max_value=50_000)


class LedgerMachine(RuleBasedStateMachine):
    """Drives purchases, releases, fees, refunds, refund payments and payouts through the services,
    including ones that must be refused, and mirrors the expected balances in plain integers."""

    cards = Bundle("cards")
    merchants = Bundle("merchants")

    @initialize()
    def start(self):
        # Examples share one database, so the singletons start where the last example left them.
        self.expected: dict[int, int] = {
            custody().id: balance(custody()),
            refund_payable().id: balance(refund_payable()),
        }
        self.posted_keys: dict[str, int] = {}

    def _move(self, code, debit, credit, amount):
        """Post; on refusal check nothing moved. Returns whether it posted."""
        idempotency_key = key(code)
        try:
            entry = ledger_transfer(
                code=code,
                debit_account_id=debit.id,
                credit_account_id=credit.id,
                amount=amount,
                idempotency_key=idempotency_key,
            )
        except InsufficientFunds:
            return False
        self.posted_keys[idempotency_key] = entry.id
        for account, change in ((debit, amount), (credit, -amount)):
            side = 1 if account.kind == Account.Kind.CUSTODY else -1
            self.expected[account.id] = self.expected.get(account.id, 0) + side * change
        return True

    @rule(target=merchants)
    def open_merchant(self):
        account = merchant_account()
        self.expected[account.id] = 0
        return account

    @rule(target=cards, price=amounts)
    def purchase(self, price):
        card = account_open(kind=Account.Kind.CARD_ESCROW, name="card")
        self.expected[card.id] = 0
        assert self._move("purchase", custody(), card, price)
        return card

    @rule(card=cards, merchant=merchants, amount=amounts)
    def release(self, card, merchant, amount):
        fits = amount <= self.expected[card.id]
        assert self._move("release", card, merchant, amount) == fits

    @rule(card=cards, merchant=merchants, fee_bps=st.integers(min_value=0, max_value=2000))
    def refund_everything_with_fee(self, card, merchant, fee_bps):
        escrow = self.expected[card.id]
        if escrow == 0:
            return
        fee = escrow * fee_bps // 10_000
        legs = [Leg(card.id, escrow), Leg(refund_payable().id, -(escrow - fee))]
        if fee:
            legs.append(Leg(merchant.id, -fee))
        ledger_post(code="refund", legs=legs, idempotency_key=key("refund"))
        self.expected[card.id] = 0
        self.expected[merchant.id] += fee
        self.expected[refund_payable().id] += escrow - fee

    @rule(amount=amounts)
    def pay_refunds(self, amount):
        fits = amount <= self.expected[refund_payable().id]
        assert self._move("refund_paid", refund_payable(), custody(), amount) == fits

    @rule(merchant=merchants, amount=amounts)
    def payout(self, merchant, amount):
        fits = amount <= self.expected[merchant.id]
        assert self._move("payout", merchant, custody(), amount) == fits

    @rule(card=cards, merchant=merchants, amount=amounts)
    def replayed_release_posts_once(self, card, merchant, amount):
        if amount > self.expected[card.id]:
            return
        assert self._move("release", card, merchant, amount)
        last_key = next(reversed(self.posted_keys))
        again = ledger_transfer(
            code="release",
            debit_account_id=card.id,
            credit_account_id=merchant.id,
            amount=amount,
            idempotency_key=last_key,
        )
        assert again.id == self.posted_keys[last_key]

    @rule()
    def check_and_keep_a_checkpoint(self):
        """A passing check moves the checkpoint; whatever was posted between checks, the
        checkpoint's totals are every account's postings and the next check agrees with a full one."""
        check = ledger_check_run()
        assert check.ok and check.entries == JournalEntry.objects.count(), check.problems
        assert checkpoint_totals() == posting_totals()
        incremental, full = ledger_verify(), ledger_verify(full=True)
        assert not incremental["full"] and full["full"]
        assert incremental | {"full": True} == full

    @invariant()
    def balances_are_as_expected_and_never_negative(self):
        if not getattr(self, "expected", None):
            return
        stored = dict(Account.objects.filter(pk__in=self.expected).values_list("pk", "balance"))
        for account_id, expected in self.expected.items():
            assert stored[account_id] == expected
            assert stored[account_id] >= 0

    @invariant()
    def ledger_verifies(self):
        result = ledger_verify()
        assert result["balanced"], result["problems"]
        assert result["chain_ok"], result["problems"]
        assert result["custody_matches"], result["problems"]
        assert result["accounts_match"], result["problems"]

    @invariant()
    def every_entry_sums_to_zero(self):
        from django.db.models import Count, Sum

        bad = Posting.objects.values("entry").annotate(total=Sum("amount"), legs=Count("id")).exclude(total=0)
        assert not bad.exists()
        assert not JournalEntry.objects.annotate(legs=Count("postings")).filter(legs__lt=2).exists()


@pytest.mark.django_db
def test_random_ledger_movements_keep_every_invariant():
    machine = LedgerMachine.TestCase
    machine.settings = settings(
        max_examples=50, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
    )
    machine().runTest()
