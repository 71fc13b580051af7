"""Building blocks for ledger tests: open accounts and move money through the real services."""

import itertools

from escrow.models import Account, LedgerCheckpointTotals
from escrow.services import account_open, city_wide_account, ledger_transfer

_keys = itertools.count()


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def custody() -> Account:
    return city_wide_account(Account.Kind.CUSTODY)


def refund_payable() -> Account:
    return city_wide_account(Account.Kind.REFUND_PAYABLE)


def funded_card(amount: int, name: str = "card") -> Account:
    """A card escrow account holding ``amount`` fen from a purchase entry."""
    card = account_open(kind=Account.Kind.CARD_ESCROW, name=name)
    ledger_transfer(
        code="purchase",
        debit_account_id=custody().id,
        credit_account_id=card.id,
        amount=amount,
        idempotency_key=key("p"),
    )
    return card


def merchant_account(name: str = "merchant") -> Account:
    return account_open(kind=Account.Kind.MERCHANT_SETTLEMENT, name=name)


def cards_released_to_one_merchant(cards: int) -> Account:
    """``cards`` funded cards (their purchases all on custody's chain), card ``i`` releasing ``i + 1``
    fen to one merchant (each release on its card's chain); returns the merchant's account."""
    merchant = merchant_account()
    for index in range(cards):
        card = funded_card(1_000 + index, name=f"card {index}")
        ledger_transfer(
            code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=index + 1,
            idempotency_key=key(),
        )  # fmt: skip
    return merchant


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance


def checkpoint_totals() -> dict[int, int]:
    """The checkpoint's total of every account whose total is not 0 (a packed block holds 0 for an
    account without postings)."""
    from escrow import statements

    return {
        block * LedgerCheckpointTotals.TOTALS_PER_BLOCK + slot: total
        for block, values in statements.checkpoint_totals().items()
        for slot, total in enumerate(values)
        if total
    }


def posting_totals() -> dict[int, int]:
    """Every account's postings summed, the accounts whose postings sum to 0 left out."""
    from django.db.models import Sum

    from escrow.models import Posting

    rows = Posting.objects.values("account").annotate(total=Sum("amount")).values_list("account", "total")
    return {account: total for account, total in rows if total}
