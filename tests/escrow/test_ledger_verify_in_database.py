"""On PostgreSQL the verification recomputes every entry's hash in the database
(``escrow.statements.journal_check_in_database``): the canonical JSON built there must be the one
``escrow.chain.entry_hash`` hashed when the entry was posted, for any content, and the database's
walk must find exactly what the walk in Python finds, on a sound ledger and on a tampered one."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escrow import statements
from escrow.models import Account, JournalEntry
from escrow.selectors import _Walk, ledger_ok, ledger_verify
from escrow.services import Leg, NewEntry, journal_post_many
from tests.escrow.ledger_helpers import cards_released_to_one_merchant, funded_card, key, merchant_account
from tests.escrow.test_ledger_verify import _raw

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Any text PostgreSQL can store: quotes, backslashes, control characters, CJK, emoji (not NUL,
# not lone surrogates, which a text column refuses).
stored = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))


def _both_walks(start=None) -> tuple[_Walk, _Walk]:
    """The walk in Python over the journal's rows and the walk done by PostgreSQL, from genesis."""
    start = start or {}
    return _Walk(start).run(statements.journal_rows()), _Walk(start).run_in_database()


def _same(python: _Walk, database: _Walk) -> None:
    assert database.entries == python.entries
    assert database.problems == python.problems
    assert (database.chain_ok, database.unbalanced, database.without_postings) == (
        python.chain_ok,
        python.unbalanced,
        python.without_postings,
    )
    assert database.totals == python.totals and database.last == python.last


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    memo=st.text(stored, max_size=200),
    actor_label=st.text(stored, max_size=64),
    idempotency_key=st.text(stored, min_size=1, max_size=200),
    amounts=st.lists(st.integers(min_value=1, max_value=2**40), min_size=1, max_size=4),
)
def test_the_database_recomputes_the_hash_the_posting_wrote_for_any_content(
    memo, actor_label, idempotency_key, amounts
):
    card, merchants = funded_card(sum(amounts)), [merchant_account() for _ in amounts]
    legs = [Leg(card.id, sum(amounts))] + [
        Leg(merchant.id, -amount) for merchant, amount in zip(merchants, amounts, strict=True)
    ]
    (entry,) = journal_post_many(
        [
            NewEntry(
                code="release", legs=legs, idempotency_key=key() + idempotency_key, actor_label=actor_label, memo=memo
            )
        ]
    )
    python, database = _both_walks()
    assert database.chain_ok and not database.problems
    _same(python, database)
    assert ledger_ok(ledger_verify(full=True))
    # One character more in the memo, behind the services' back: both walks see it.
    _raw("UPDATE escrow_journalentry SET memo = memo || 'x' WHERE id = %s", [entry.id])
    python, database = _both_walks()
    assert not database.chain_ok and any(f"entry {entry.id} " in p for p in database.problems)
    _same(python, database)
    _raw("UPDATE escrow_journalentry SET memo = %s WHERE id = %s", [memo, entry.id])  # for the next example


@pytest.fixture
def ledger():
    return cards_released_to_one_merchant(6)


@pytest.mark.parametrize(
    "tampering",
    [
        "UPDATE escrow_posting SET amount = amount * 2 WHERE id = (SELECT max(id) FROM escrow_posting)",
        "DELETE FROM escrow_posting WHERE entry_id = (SELECT max(id) FROM escrow_journalentry)",
        "DELETE FROM escrow_journalentry WHERE id = (SELECT min(e.id) FROM escrow_journalentry e WHERE EXISTS "
        "(SELECT 1 FROM escrow_journalentry n WHERE n.chain = e.chain AND n.seq = e.seq + 1))",
        "UPDATE escrow_journalentry SET prev_hash = repeat('a', 64) "
        "WHERE id = (SELECT max(id) FROM escrow_journalentry)",
        "UPDATE escrow_journalentry SET seq = seq + 5 WHERE id = (SELECT max(id) FROM escrow_journalentry)",
        "UPDATE escrow_journalentry SET created_at = created_at + interval '1 microsecond' "
        "WHERE id = (SELECT min(id) FROM escrow_journalentry)",
    ],
    ids=["posting doubled", "postings deleted", "entry deleted", "link rewritten", "seq moved", "time moved"],
)
def test_the_database_walk_finds_what_the_python_walk_finds(ledger, tampering):
    _same(*_both_walks())
    _raw(tampering)
    python, database = _both_walks()
    assert python.problems or python.unbalanced or python.without_postings
    _same(python, database)


def test_the_database_walk_starts_from_the_checkpointed_heads(ledger):
    """An incremental walk: only each chain's entries after the given seq, linked to its head."""
    entries = list(JournalEntry.objects.order_by("chain", "seq").values_list("chain", "seq", "hash"))
    start = {}
    for chain, seq, link in entries:
        start.setdefault(chain, (seq, link))  # each chain's first entry counts as verified
    after = sorted((chain, seq) for chain, (seq, _) in start.items())
    python = _Walk(start).run(statements.journal_rows(after=after))
    database = _Walk(start).run_in_database(after=after)
    assert database.entries == len(entries) - len(start) and database.chain_ok
    _same(python, database)
    assert set(database.totals) <= set(Account.objects.values_list("pk", flat=True))
