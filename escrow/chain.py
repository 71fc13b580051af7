"""The canonical content of a journal entry and its SHA-256 link in a hash chain.

Posting and verification both hash through ``entry_hash``, so what is checked is exactly what
was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64


def canonical_time(moment: datetime) -> str:
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
    created_at: datetime,
    postings: Iterable[tuple[int, int]],
) -> str:
    content = {
        "actor": actor_id,
        "actor_label": actor_label,
        "at": canonical_time(created_at),
        "chain": chain,
        "code": code,
        "key": idempotency_key,
        "memo": memo,
        "postings": sorted([int(a), int(m)] for a, m in postings),
        "prev": prev_hash,
        "seq": seq,
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def heads_hash(heads: Iterable[tuple[int, int, str]]) -> str:
    """The ledger's head hash: SHA-256 over every chain's (chain, last seq, last hash)."""
    digest = hashlib.sha256()
    for chain, seq, link in sorted(heads):
        digest.update(f"{chain}:{seq}:{link}\n".encode())
    return digest.hexdigest()
