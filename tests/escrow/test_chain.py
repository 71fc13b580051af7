"""An entry's hash is SHA-256 over its canonical JSON: the written-out form in ``escrow.chain``
equals ``json.dumps`` of the entry's fields, for any content."""

import hashlib
import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from escrow.chain import canonical_time, entry_hash

texts = st.text(max_size=40)  # any Unicode: quotes, backslashes, control characters, CJK, emoji
ids = st.integers(min_value=1, max_value=2**63 - 1)


def reference_hash(*, chain, seq, prev_hash, code, idempotency_key, actor_id, actor_label, memo, created_at, postings):
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


@given(
    chain=st.integers(min_value=0, max_value=1023),
    seq=ids,
    prev_hash=texts,
    code=texts,
    idempotency_key=texts,
    actor_id=st.none() | ids,
    actor_label=texts,
    memo=texts,
    created_at=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001 - bounds are naive
    postings=st.lists(st.tuples(ids, st.integers(min_value=-(2**62), max_value=2**62)), max_size=5),
)
def test_the_written_out_canonical_json_hashes_as_json_dumps_does(**fields):
    assert entry_hash(**fields) == reference_hash(**fields)
