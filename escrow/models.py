"""The escrow ledger: a double-entry journal of integer fen.

Chart of accounts
-----------------
Every account holds a non-negative ``balance`` in fen, on its normal side:

==================== ======== =============================================================
kind                 side     what the balance is
==================== ======== =============================================================
custody              debit    Money held at the custody bank for a merchant's cards, settlement
                              and unpaid refunds (one per merchant, and one city-wide).
card_escrow          credit   A card's prepaid money not yet earned by the merchant (one per card).
merchant_settlement  credit   Money released to a merchant and not yet paid out (one per merchant).
refund_payable       credit   Refunds booked for a merchant's consumers and not yet paid back by
                              the gateway (one per merchant, and one city-wide).
==================== ======== =============================================================

Custody is the platform's asset; every other account is money the platform owes somebody.

The bank holds one pool of money; the ledger splits custody and refunds payable by merchant so
that a merchant's purchases, refunds and payouts lock only that merchant's rows: one account
shared by the whole city made every payment in the city wait for the one before it (issue 20;
bench/hotrow.py measures it). ``merchants.Merchant.custody_account`` and
``refund_payable_account`` name a merchant's own (the ledger imports no domain app, so the mapping
lives there, in ``merchants.accounts``). The two ``city_wide`` accounts, opened by migration, are
what a merchant signed up before per-merchant accounts existed still uses until
``manage.py ledger_split_custody`` moves its share onto its own with a ``correction`` entry.
Every total (invariant 4, reconciliation, the regulator's pages) is the sum over all accounts of
a kind.

Entries
-------
A movement of money is one ``JournalEntry`` of two or more ``Posting`` rows. A posting's ``amount``
is signed: positive debits the account, negative credits it, and an entry's postings sum to zero.
A debit raises a debit-side account (custody) and lowers a credit-side one. Read an entry
"A → B" as "debit A, credit B": money leaves A's column and reaches B's.

========== ===================================== ===========================================
code       movement                              when
========== ===================================== ===========================================
purchase   custody → card_escrow                 a card's payment reaches the custody bank
release    card_escrow → merchant_settlement     a confirmed service (or a pass's daily accrual)
fee        card_escrow → merchant_settlement     a refund's handling fee, earned by the merchant
refund     card_escrow → refund_payable          a refund is booked for the consumer
refund_paid refund_payable → custody             the gateway has paid the refund out
payout     merchant_settlement → custody         settled money is paid to the merchant's bank
correction any balanced set of postings          an error is corrected by a new entry
========== ===================================== ===========================================

Each entry carries its ``code``, its actor, a unique ``idempotency_key`` (the same key never posts
twice) and a SHA-256 ``hash`` over its canonical content and the previous entry's hash.

Hash chains
-----------
The journal is striped over ``LEDGER_CHAIN_STRIPES`` independent hash chains. An entry joins the
chain chosen by its first posting's account; card services post the card's escrow leg first, so
every entry of one card lies on one chain, takes
the next ``seq`` of that chain, and links to the chain's previous hash. One global chain would make
every posting in the city wait for the one before it; stripes keep unrelated cards independent
while each chain is still a verifiable, gap-free sequence. ``ChainHead`` holds each chain's last
``seq`` and ``hash``; the ledger's head hash is a SHA-256 over all chain heads.

Invariants
----------
1. Every entry has at least two postings and they sum to zero.
2. Every account's balance equals the signed sum of its postings (sign by its side).
3. No account balance is below zero.
4. Custody (all custody accounts together) equals all card escrow plus all merchant settlement not
   yet paid out plus refunds booked but not yet paid (all refunds-payable accounts together): the
   money at the bank is exactly what the platform owes. Checked on the totals: a merchant's own
   custody equals its own liabilities too, but nothing relies on that.
5. Entries and postings, once posted, never change or disappear; a correction is a new entry.
6. Each chain runs 1, 2, 3, ... with every hash recomputable from its content and predecessor.

Where they are enforced: the services check 1 and 3 in Python before writing, under row locks
taken in primary-key order. PostgreSQL is the backstop that makes a bug loud: triggers (migration
0003) refuse UPDATE and DELETE of entries and postings and refuse, at commit, an entry whose
postings do not balance; ``CheckConstraint`` refuses a negative balance; unique constraints refuse a
second use of an idempotency key or of a chain position. ``escrow.selectors.ledger_verify`` checks
all six from the stored rows.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.formatting import CURRENCY


class Account(models.Model):
    class Kind(models.TextChoices):
        CUSTODY = "custody", _("custody")
        CARD_ESCROW = "card_escrow", _("card escrow")
        MERCHANT_SETTLEMENT = "merchant_settlement", _("merchant settlement")
        REFUND_PAYABLE = "refund_payable", _("refunds payable")

    # Kinds whose balance rises with a debit; all others rise with a credit.
    DEBIT_SIDE = (Kind.CUSTODY,)

    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=200)
    balance = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default=CURRENCY)
    created_at = models.DateTimeField()
    # The city-wide custody or refunds-payable account (one of each, opened by migrations 0002 and
    # 0012; every merchant has its own beside them): a merchant without accounts of its own
    # (one signed up before they existed, not yet moved by ``manage.py ledger_split_custody``)
    # posts there.
    # The default is the database's too: bench/ writes accounts in plain SQL.
    city_wide = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_non_negative"),
            models.UniqueConstraint(fields=["kind"], condition=Q(city_wide=True), name="account_city_wide_kind_unique"),
            models.CheckConstraint(
                condition=Q(city_wide=False) | Q(kind__in=["custody", "refund_payable"]), name="account_city_wide_kinds"
            ),
        ]
        indexes = [models.Index(fields=["kind"], name="account_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.pk} {self.name}"

    @property
    def side(self) -> int:
        """+1 if a debit raises the balance, -1 if a credit does."""
        return 1 if self.kind in self.DEBIT_SIDE else -1


class JournalEntry(models.Model):
    class Code(models.TextChoices):
        PURCHASE = "purchase", _("purchase")
        RELEASE = "release", _("release")
        FEE = "fee", _("fee")
        REFUND = "refund", _("refund")
        REFUND_PAID = "refund_paid", _("refund paid")
        PAYOUT = "payout", _("payout")
        CORRECTION = "correction", _("correction")

    code = models.CharField(max_length=16, choices=Code.choices)
    idempotency_key = models.CharField(max_length=255, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=64, blank=True, default="")
    memo = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    chain = models.PositiveSmallIntegerField()
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # Not columns: set by escrow.services.journal_post on the entry it returns.
    replayed: bool  # posted before under the same key: this call moved nothing
    balances: dict[int, int]  # a new entry's accounts → their balance after it

    class Meta:
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="journalentry_chain_seq_unique"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="journalentry_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="journalentry_created_idx"),
            models.Index(fields=["code", "created_at"], name="journalentry_code_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} #{self.pk} ({self.chain}:{self.seq})"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField()  # fen; positive = debit, negative = credit

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_non_zero")]
        indexes = [models.Index(fields=["account", "entry"], name="posting_account_entry_idx")]


class ChainHead(models.Model):
    """The last link of one hash chain; its row lock serialises only that chain's appends."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)


class Reconciliation(models.Model):
    """One comparison of the ledger's custody account with the gateway's own record of the money
    it holds. Every run is kept; a difference is what the regulator is shown."""

    gateway = models.CharField(max_length=16)
    ledger_custody = models.BigIntegerField()  # fen, the custody account
    gateway_balance = models.BigIntegerField()  # fen, the gateway's record
    difference = models.BigIntegerField()  # gateway - ledger
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="reconciliation_created_idx")]

    @property
    def matches(self) -> bool:
        return self.difference == 0


class LedgerCheck(models.Model):
    """One full verification of the ledger (``escrow.selectors.ledger_verify``), kept: it reads the
    whole journal, so reports print the newest check instead of running one per request."""

    balanced = models.BooleanField()
    chain_ok = models.BooleanField()
    custody_matches = models.BooleanField()
    accounts_match = models.BooleanField()
    entries = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    problems = models.JSONField(default=list)  # the first LEDGER_CHECK_PROBLEMS_KEPT
    problems_total = models.PositiveIntegerField(default=0)
    milliseconds = models.PositiveIntegerField()  # how long the check took
    created_at = models.DateTimeField()
    full = models.BooleanField(default=True)  # from genesis; otherwise from the checkpoint

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="ledgercheck_created_idx")]

    @property
    def ok(self) -> bool:
        return self.balanced and self.chain_ok and self.custody_matches and self.accounts_match


class LedgerCheckpoint(models.Model):
    """Where the last passing check left the ledger (one row, ``pk=1``): every chain verified up
    to ``LedgerCheckpointHead`` and every account's postings up to there summing to its
    ``LedgerCheckpointTotals``. An incremental check starts here, so its cost follows the entries
    posted since, not the journal's history; a full check recomputes everything from genesis and
    sets it again. A check that finds a problem never moves it."""

    ledger_check = models.ForeignKey(LedgerCheck, on_delete=models.PROTECT, related_name="+")  # that set it
    entries = models.BigIntegerField()  # entries at or before the checkpoint
    full_check_at = models.DateTimeField()  # the newest full check behind it
    created_at = models.DateTimeField()


class LedgerCheckpointHead(models.Model):
    """One chain's verified head at the checkpoint: its entries 1..``seq`` link up to ``hash``."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)


class LedgerCheckpointTotals(models.Model):
    """The raw sums of the posting amounts (debits positive) of ``TOTALS_PER_BLOCK`` consecutive
    account ids up to the checkpoint, packed: slot ``i`` of block ``b`` is account
    ``b * TOTALS_PER_BLOCK + i``, a signed 64-bit little-endian integer, 0 for an account without
    postings there (or no account). ``escrow.statements.checkpoint_totals`` reads them,
    ``checkpoint_totals_set`` writes the blocks of the accounts a check saw postings for.

    A row per account cost a day at ten times today's books 1.1 million row versions to write
    (6.6 s of a 20 s check, issue 20); packed, the same totals are about 1,100 rows of 8 KiB. Only
    passing checks write them, and a passing check's totals equal the accounts' balances, which
    are 64-bit: every total fits its slot."""

    TOTALS_PER_BLOCK = 1024

    block = models.BigIntegerField(primary_key=True)
    totals = models.BinaryField()


class SettlementDayTotal(models.Model):
    """What one merchant settlement account was credited on one Beijing business day
    (``core.clock.business_day`` of the entry's ``created_at``): the day's ``release`` and ``fee``
    postings, summed as they post.

    ``escrow.services`` adds every release and fee posting to a merchant settlement account to its
    row in the posting's own transaction (``INSERT ... ON CONFLICT DO UPDATE``), after the account
    itself was locked: the row is only ever contended by that merchant's own postings. Settlement
    then reads a day's rows instead of summing the day's postings (issue 20: ten million a day at
    10x, 20 s of plain SQL to sum). A posting is never changed or deleted, so the row only grows;
    ``escrow.selectors.settlement_day_mismatches`` recomputes a day from the postings and lists
    any account whose row differs. Migration 0013 built the rows of the postings before it."""

    # No index of its own: the unique (day, account) is the one a day is read by, and each release
    # would otherwise maintain a second.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    released = models.BigIntegerField(default=0)  # fen credited by release entries (credits positive)
    fees = models.BigIntegerField(default=0)  # fen credited by fee entries
    releases_count = models.BigIntegerField(default=0)  # release postings

    class Meta:
        constraints = [
            # Also the index settlement reads a day by.
            models.UniqueConstraint(fields=["day", "account"], name="settlementdaytotal_day_account_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} account {self.account_id}: {self.released} + {self.fees}"
