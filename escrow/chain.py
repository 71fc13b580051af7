"""The canonical content of a journal entry and its SHA-256 link in a hash chain.

Posting and verification both hash through ``entry_hash``, so what is checked is exactly what
was written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring as _string  # json.dumps' own, ensure_ascii=False

GENESIS_HASH = "0" * 64


def canonical_time(moment: datetime | str) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; a string is taken as that form already (as the
    verification reads it from PostgreSQL)."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    chain: int,
    seq: int,
    prev_hash: str,
    code: str,
    idempotency_key: str,
    actor_id: int | None,
    actor_label: str,
    memo: str,
    created_at: datetime | str,
    postings: Iterable[tuple[int, int]],
) -> str:
    # The canonical JSON, written out: what ``json.dumps(content, sort_keys=True,
    # separators=(",", ":"), ensure_ascii=False)`` makes of the dict of the entry's fields
    # (``tests/escrow/test_chain.py`` holds the two equal), at about half its cost: verification
    # hashes every entry of the journal.
    legs = ",".join(f"[{account},{amount}]" for account, amount in sorted((int(a), int(m)) for a, m in postings))
    actor = "null" if actor_id is None else int(actor_id)
    text = (
        f'{{"actor":{actor},"actor_label":{_string(actor_label)},"at":{_string(canonical_time(created_at))},'
        f'"chain":{int(chain)},"code":{_string(code)},"key":{_string(idempotency_key)},"memo":{_string(memo)},'
        f'"postings":[{legs}],"prev":{_string(prev_hash)},"seq":{int(seq)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


def heads_hash(heads: Iterable[tuple[int, int, str]]) -> str:
    """The ledger's head hash: SHA-256 over every chain's (chain, last seq, last hash)."""
    digest = hashlib.sha256()
    for chain, seq, link in sorted(heads):
        digest.update(f"{chain}:{seq}:{link}\n".encode())
    return digest.hexdigest()
