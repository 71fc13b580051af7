"""The chaos workload: many clients drive the HTTP API with random valid and invalid operations.

``workload_run`` runs ``clients`` threads against ``base_url`` for ``seconds``. Each thread is one
consumer of the ``World`` (and uses the merchants' point-of-sale tokens for its own cards, and now
and then the regulator's) and picks, from a seeded random generator, one operation at a time:

- money flows: buy a card, pay it through the sandbox bank (``/payments/{id}/simulate``, succeeded
  or failed), the merchant asks for a service, the consumer confirms or rejects it, refunds of every
  reason a consumer may give (``cooling_off``, ``small_balance``, ``voluntary``), mostly when the
  rule allows it and sometimes when it does not;
- reads that check what they see: a card's ``price == escrow_balance + released_total +
  refunded_total`` once paid, the merchant's balance, lists, the ledger verification;
- the regulator: flags and freezes (and their undoing), ``order_refunds`` (a mass refund run by the
  Celery worker), following an action;
- invalid requests: another party's card or redemption, ids that do not exist or are not ids, the
  wrong role, no credentials, malformed JSON, floats and oversized numbers where fen are due,
  unknown reasons and outcomes, bad ``Idempotency-Key`` headers, confirming a decided or expired
  redemption, paying a decided payment, refunding a refunded card;
- idempotency: replays of an earlier keyed request (the stored response must come back, same status
  and body, marked ``Idempotent-Replayed``) and the same key with another body (409
  ``idempotency_key_reused``).

Every response is checked against the statuses the operation allows: a 5xx, a transport error, an
unexpected status, a replay that differs or a card that breaks its invariant is a ``failure``. An
optional ``settle`` callable (the operator running ``manage.py settle``) is called every
``settle_every`` seconds by an operator thread, while the clients run.

The module only speaks HTTP (no Django import), so ``bench/workload.py`` runs the same workload.
``world_build`` (Django, in-process, on the server's database) makes the merchants, products,
consumers and tokens it needs.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Products each merchant sells (world_build); the workload reads them from the World.
PRODUCTS = (
    {"name": "4 sessions", "kind": "session_pack", "price": 10_000, "sessions": 4, "refund_fee_bps": 500},
    {
        "name": "stored value",
        "kind": "stored_value",
        "price": 9_000,
        "face_value": 10_000,
        "unit_price": 3_000,
        "refund_fee_bps": 300,
    },
    {"name": "30-day pass", "kind": "period_pass", "price": 30_000, "days": 30},
)

# What one thread may do, with its weight. ``_op_<name>`` implements each.
WEIGHTS = {
    "buy": 10,
    "pay": 10,
    "redeem": 14,
    "confirm": 10,
    "reject": 2,
    "refund": 6,
    "view_card": 6,
    "list_cards": 2,
    "list_redemptions": 2,
    "merchant_balance": 2,
    "regulator_toggle": 3,
    "order_refunds": 0.3,
    "action_status": 1,
    "ledger_verify": 0.3,
    "replay": 6,
    "key_reuse": 2,
    "invalid": 12,
}

REFUSED_REFUNDS = {"cooling_off_expired", "balance_not_small", "card_not_refundable"}
Expect = dict[int, set[str] | None]  # allowed status → allowed error codes (None: any body)


@dataclass
class World:
    """What the clients act as: tokens and ids (no Django objects)."""

    merchants: list[dict]  # {"id", "token", "products": [{"id", "kind", "price", ...}]}
    consumers: list[dict]  # {"id", "token"}
    regulator_token: str


@dataclass
class Report:
    seed: int
    seconds: float = 0.0
    calls: Counter = field(default_factory=Counter)  # (kind, status) → n
    failures: list[str] = field(default_factory=list)
    replays: int = 0
    cards_by_key: dict[tuple[str, str], str] = field(default_factory=dict)  # (token, key) → card id
    redemptions: set[str] = field(default_factory=set)
    actions: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def merge(self, other: Report) -> None:
        self.calls.update(other.calls)
        self.failures.extend(other.failures)
        self.replays += other.replays
        for key, card in other.cards_by_key.items():
            seen = self.cards_by_key.setdefault(key, card)
            if seen != card:
                self.failures.append(f"purchase key {key[1]} gave two cards: {seen} and {card}")
        self.redemptions |= other.redemptions
        self.actions.extend(other.actions)

    def table(self) -> str:
        """Operations per kind with their status codes, one line each."""
        by_kind: dict[str, Counter] = {}
        for (kind, status), n in self.calls.items():
            by_kind.setdefault(kind, Counter())[status] = n
        width = max((len(k) for k in by_kind), default=4)
        lines = [f"{'operation':<{width}}  {'calls':>6}  statuses"]
        for kind in sorted(by_kind):
            statuses = by_kind[kind]
            shown = "  ".join(f"{status}×{n}" for status, n in sorted(statuses.items(), key=lambda s: str(s[0])))
            lines.append(f"{kind:<{width}}  {sum(statuses.values()):>6}  {shown}")
        lines.append(f"{'total':<{width}}  {self.total:>6}  in {self.seconds:.1f}s ({self.total / self.seconds:.1f}/s)")
        return "\n".join(lines)


class Http:
    """One keep-alive connection (reopened when the server closes it)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def send(
        self, method: str, path: str, *, token: str | None, body: bytes | None, key: str | None
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Accept-Language": "en"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Token {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            raise
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}


class Skip(Exception):  # the operation has nothing to act on yet
    pass


def _json(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def _reasons(card: dict) -> list[str]:
    """The refund reasons the rules allow for ``card`` as last seen."""
    if card["state"] not in ("cooling_off", "active", "frozen") or not card.get("escrow_balance"):
        return []
    allowed = ["cooling_off"] if card["state"] == "cooling_off" else ["voluntary"]
    if card["kind"] == "stored_value" and 0 < (card["balance"] or 0) < (card["unit_price"] or 0):
        allowed.append("small_balance")
    return allowed


def _paid_invariant(card: dict) -> str | None:
    if not card.get("paid_at"):
        return None
    price, escrow = card["price"], card["escrow_balance"]
    if escrow < 0 or price != escrow + card["released_total"] + card["refunded_total"]:
        return (
            f"card {card['id']} ({card['state']}): price {price} != escrow {escrow} + released "
            f"{card['released_total']} + refunded {card['refunded_total']}"
        )
    return None


class Client:
    """One thread's consumer, its cards and redemptions, and the keyed requests it may replay."""

    def __init__(self, index: int, *, base_url: str, world: World, rng: random.Random) -> None:
        self.index, self.world, self.rng = index, world, rng
        self.http = Http(base_url)
        self.me = world.consumers[index % len(world.consumers)]
        self.others = [c for c in world.consumers if c is not self.me] or [self.me]
        self.merchants = {m["id"]: m for m in world.merchants}
        self.products = {p["id"]: (m, p) for m in world.merchants for p in m["products"]}
        self.cards: dict[str, dict] = {}  # id → last representation seen
        self.pending: dict[str, str] = {}  # redemption id → card id, awaiting confirmation (as we know)
        self.decided: dict[str, str] = {}  # redemption id → its final state
        self.keyed: list[tuple] = []  # (token, method, path, body, key, status, parsed body)
        self.report = Report(seed=0)
        self.n = 0

    # -- plumbing -------------------------------------------------------------------------------
    def key(self, what: str) -> str:
        self.n += 1
        return f"chaos-{what}-{self.index}-{self.n}-{uuid.uuid4().hex[:8]}"

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str | None,
        body=None,
        raw: bytes | None = None,
        key: str | None = None,
        expect: Expect,
        remember: bool = True,
    ):
        """Send one request, count it, check its status against ``expect``; return (status, json)."""
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            status, data, headers = self.http.send(method, path, token=token, body=payload, key=key)
        except (http.client.HTTPException, OSError) as exc:
            self.report.calls[(kind, "transport-error")] += 1
            self.report.failures.append(f"{kind}: {method} {path}: transport error {exc!r}")
            return None, None
        parsed = _json(data)
        code = parsed.get("code") if isinstance(parsed, dict) else None
        self.report.calls[(kind, f"{status} {code}" if status == 409 and code else status)] += 1
        if status >= 500:
            self.report.failures.append(f"{kind}: {method} {path} → {status}: {data[:300]!r}")
        elif status not in expect:
            self.report.failures.append(f"{kind}: {method} {path} → unexpected {status}: {data[:300]!r}")
        else:
            codes = expect[status]
            if codes is not None and code not in codes:
                self.report.failures.append(f"{kind}: {method} {path} → {status} with code {code!r}: {data[:300]!r}")
        # Invalid requests are refused before (or instead of) storing a response: not replayed.
        remember = remember and not kind.startswith("bad:")
        if key is not None and status < 500 and headers.get("idempotent-replayed") != "true" and remember:
            self.keyed.append((token, method, path, payload, key, status, parsed))
            if len(self.keyed) > 400:
                self.keyed.pop(self.rng.randrange(len(self.keyed)))
        return status, parsed

    def see_card(self, card: dict | None) -> None:
        if not isinstance(card, dict) or "escrow_balance" not in card:
            return
        self.cards[card["id"]] = card
        if broken := _paid_invariant(card):
            self.report.failures.append(broken)

    def pick(self, predicate: Callable[[dict], bool]) -> dict:
        found = [c for c in self.cards.values() if predicate(c)]
        if not found:
            raise Skip()
        return self.rng.choice(found)

    def merchant_token(self, card: dict) -> str:
        return self.merchants[card["merchant"]]["token"]

    # -- money flows ----------------------------------------------------------------------------
    def _op_buy(self) -> None:
        merchant = self.rng.choice(self.world.merchants)
        product = self.rng.choice(merchant["products"])
        key = self.key("buy")
        status, card = self.call(
            "buy",
            "POST",
            "/api/v1/cards",
            token=self.me["token"],
            body={"product": product["id"]},
            key=key,
            expect={201: None, 409: {"merchant_sales_frozen"}},
        )
        if status == 201:
            self.report.cards_by_key[(self.me["token"], key)] = card["id"]
            self.see_card(card)

    def _op_pay(self) -> None:
        card = self.pick(lambda c: c["state"] == "pending_payment")
        outcome = "succeeded" if self.rng.random() < 0.9 else "failed"
        status, body = self.call(
            f"pay:{outcome}",
            "POST",
            f"/api/v1/payments/{card['payment']['id']}/simulate",
            token=self.me["token"],
            body={"outcome": outcome},
            key=self.key("pay"),
            expect={200: None},
        )
        if status == 200:
            self.see_card(body)

    def _op_redeem(self) -> None:
        card = self.pick(lambda c: c["state"] in ("cooling_off", "active", "frozen"))
        body: dict = {"card": card["id"]}
        if card["kind"] == "stored_value":
            balance = card["balance"] or 0
            # Mostly what the card holds (often leaving a small balance), sometimes more than it holds.
            body["amount"] = self.rng.choice([4_000, 3_500, balance, max(1, balance // 3), balance + 1])
            body["amount"] = max(1, body["amount"])
        status, redemption = self.call(
            "redeem",
            "POST",
            "/api/v1/redemptions",
            token=self.merchant_token(card),
            body=body,
            key=self.key("redeem"),
            expect={
                201: None,
                409: {"card_not_redeemable", "merchant_frozen", "insufficient_balance"},
            },
        )
        if status == 201:
            self.pending[redemption["id"]] = card["id"]
            self.report.redemptions.add(redemption["id"])

    def _decide(self, verb: str) -> None:
        if not self.pending:
            raise Skip()
        redemption_id = self.rng.choice(list(self.pending))
        status, body = self.call(
            verb,
            "POST",
            f"/api/v1/redemptions/{redemption_id}/{verb}",
            token=self.me["token"],
            key=self.key(verb),
            expect={
                200: None,
                409: {
                    "redemption_not_pending",
                    "redemption_expired",
                    "card_not_redeemable",
                    "merchant_frozen",
                    "insufficient_balance",
                },
            },
        )
        if status == 200:
            self.decided[redemption_id] = body["state"]
            self.pending.pop(redemption_id, None)
            self.refresh(body["card"])
        elif status == 409 and body and body.get("code") in ("redemption_not_pending", "redemption_expired"):
            self.decided[redemption_id] = body["code"]
            self.pending.pop(redemption_id, None)
        elif status == 409 and self.rng.random() < 0.3:
            self.pending.pop(redemption_id, None)  # leave some to expire

    def _op_confirm(self) -> None:
        self._decide("confirm")

    def _op_reject(self) -> None:
        self._decide("reject")

    def _op_refund(self) -> None:
        # Mostly a card some reason is open to (as far as this client knows), a small balance first.
        roll = self.rng.random()
        if roll < 0.3 and any("small_balance" in _reasons(c) for c in self.cards.values()):
            card = self.pick(lambda c: "small_balance" in _reasons(c))
        elif roll < 0.8 and any(_reasons(c) for c in self.cards.values()):
            card = self.pick(lambda c: bool(_reasons(c)))
        else:
            card = self.pick(lambda c: c["state"] not in ("pending_payment", "cancelled"))
        allowed = _reasons(card)
        # Mostly a reason the rules allow as far as this client knows; otherwise any.
        if allowed and self.rng.random() < 0.75:
            reason = self.rng.choice(allowed)
        else:
            reason = self.rng.choice(["cooling_off", "small_balance", "voluntary"])
        status, body = self.call(
            f"refund:{reason}",
            "POST",
            f"/api/v1/cards/{card['id']}/refunds",
            token=self.me["token"],
            body={"reason": reason},
            key=self.key("refund"),
            expect={201: None, 409: REFUSED_REFUNDS},
        )
        if status == 201 and body["reason"] != reason:
            self.report.failures.append(f"refund {body['id']} asked {reason}, got {body['reason']}")
        self.refresh(card["id"])

    # -- reads ----------------------------------------------------------------------------------
    def refresh(self, card_id: str) -> None:
        status, card = self.call(
            "view_card", "GET", f"/api/v1/cards/{card_id}", token=self.me["token"], expect={200: None}
        )
        if status == 200:
            self.see_card(card)

    def _op_view_card(self) -> None:
        self.refresh(self.pick(lambda c: True)["id"])

    def _op_list_cards(self) -> None:
        status, page = self.call("list_cards", "GET", "/api/v1/cards", token=self.me["token"], expect={200: None})
        if status == 200:
            for card in page["results"]:
                self.see_card(card)

    def _op_list_redemptions(self) -> None:
        status, page = self.call(
            "list_redemptions",
            "GET",
            "/api/v1/redemptions?state=awaiting_confirmation",
            token=self.me["token"],
            expect={200: None},
        )
        if status == 200:
            for redemption in page["results"]:
                if redemption["id"] not in self.decided:
                    self.pending[redemption["id"]] = redemption["card"]

    def _op_merchant_balance(self) -> None:
        merchant = self.rng.choice(self.world.merchants)
        status, body = self.call(
            "merchant_balance", "GET", "/api/v1/merchant/balance", token=merchant["token"], expect={200: None}
        )
        if status == 200 and min(body["escrow_outstanding"], body["available"], body["paid_out_total"]) < 0:
            self.report.failures.append(f"negative merchant balance: {body}")

    # -- the regulator --------------------------------------------------------------------------
    def _op_regulator_toggle(self) -> None:
        merchant = self.rng.choice(self.world.merchants)
        # Freezes are undone more often than made, so that most of the run sells and releases.
        action = self.rng.choice(
            ["flag", "unflag", "freeze_sales", "freeze_releases"] + ["unfreeze_sales", "unfreeze_releases"] * 3
        )
        status, body = self.call(
            f"regulator:{action}",
            "POST",
            f"/api/v1/regulator/merchants/{merchant['id']}/actions",
            token=self.world.regulator_token,
            body={"action": action, "reason": "chaos test"},
            key=self.key("act"),
            expect={202: None, 409: {"action_not_allowed"}},
        )
        if status == 202:
            self.report.actions.append(body["id"])

    def _op_order_refunds(self) -> None:
        merchant = self.rng.choice(self.world.merchants)
        status, body = self.call(
            "regulator:order_refunds",
            "POST",
            f"/api/v1/regulator/merchants/{merchant['id']}/actions",
            token=self.world.regulator_token,
            body={"action": "order_refunds", "reason": "chaos test: the merchant vanished"},
            key=self.key("order"),
            expect={202: None, 409: {"action_not_allowed"}},
        )
        if status == 202:
            self.report.actions.append(body["id"])

    def _op_action_status(self) -> None:
        if not self.report.actions:
            raise Skip()
        status, body = self.call(
            "action_status",
            "GET",
            f"/api/v1/regulator/actions/{self.rng.choice(self.report.actions)}",
            token=self.world.regulator_token,
            expect={200: None},
        )
        if status == 200 and body["state"] == "failed":
            self.report.failures.append(f"regulator action failed: {body}")

    def _op_ledger_verify(self) -> None:
        status, body = self.call(
            "ledger_verify",
            "GET",
            "/api/v1/regulator/ledger/verify",
            token=self.world.regulator_token,
            expect={200: None},
        )
        if status == 200 and not (body["balanced"] and body["chain_ok"] and body["custody_matches"]):
            self.report.failures.append(f"ledger verification failed under load: {body}")

    # -- idempotency ----------------------------------------------------------------------------
    def _op_replay(self) -> None:
        if not self.keyed:
            raise Skip()
        token, method, path, payload, key, status, parsed = self.rng.choice(self.keyed)
        kind = "replay"
        try:
            again, data, headers = self.http.send(method, path, token=token, body=payload, key=key)
        except (http.client.HTTPException, OSError) as exc:
            self.report.calls[(kind, "transport-error")] += 1
            self.report.failures.append(f"replay {method} {path}: transport error {exc!r}")
            return
        self.report.calls[(kind, again)] += 1
        self.report.replays += 1
        if again != status or _json(data) != parsed or headers.get("idempotent-replayed") != "true":
            self.report.failures.append(
                f"replay of {method} {path} (key {key}) gave {again} {data[:200]!r} "
                f"(replayed: {headers.get('idempotent-replayed')}); first: {status} {str(parsed)[:200]}"
            )

    def _op_key_reuse(self) -> None:
        if not self.keyed:
            raise Skip()
        token, method, path, payload, key, _status, _parsed = self.rng.choice(self.keyed)
        body = _json(payload) if payload else None
        changed = {**body, "chaos": 1} if isinstance(body, dict) else {"chaos": 1}
        self.call(
            "key_reused",
            method,
            path,
            token=token,
            body=changed,
            key=key,
            expect={409: {"idempotency_key_reused"}},
            remember=False,
        )

    # -- invalid requests -----------------------------------------------------------------------
    def _op_invalid(self) -> None:
        getattr(self, f"_bad_{self.rng.choice(BAD)}")()

    def _bad_other_consumers_card(self) -> None:
        card = self.pick(lambda c: True)
        other = self.rng.choice(self.others)
        if other is self.me:
            raise Skip()
        self.call("bad:other_consumer_view", "GET", f"/api/v1/cards/{card['id']}", token=other["token"],
                  expect={404: {"not_found"}})  # fmt: skip
        self.call("bad:other_consumer_refund", "POST", f"/api/v1/cards/{card['id']}/refunds", token=other["token"],
                  body={"reason": "voluntary"}, key=self.key("x"), expect={404: {"not_found"}})  # fmt: skip

    def _bad_other_consumers_redemption(self) -> None:
        if not self.pending and not self.decided:
            raise Skip()
        redemption_id = self.rng.choice(list(self.pending) + list(self.decided))
        other = self.rng.choice(self.others)
        if other is self.me:
            raise Skip()
        verb = self.rng.choice(["confirm", "reject"])
        self.call(f"bad:other_consumer_{verb}", "POST", f"/api/v1/redemptions/{redemption_id}/{verb}",
                  token=other["token"], key=self.key("x"), expect={404: {"not_found"}})  # fmt: skip

    def _bad_other_merchant(self) -> None:
        card = self.pick(lambda c: True)
        others = [m for m in self.world.merchants if m["id"] != card["merchant"]]
        if not others:
            raise Skip()
        token = self.rng.choice(others)["token"]
        self.call("bad:other_merchant_redeem", "POST", "/api/v1/redemptions", token=token,
                  body={"card": card["id"], "amount": 100} if card["kind"] == "stored_value" else {"card": card["id"]},
                  key=self.key("x"), expect={404: {"not_found"}})  # fmt: skip
        self.call("bad:other_merchant_view", "GET", f"/api/v1/cards/{card['id']}", token=token,
                  expect={404: {"not_found"}})  # fmt: skip

    def _bad_unknown_ids(self) -> None:
        ghost = str(uuid.uuid4())
        me = self.me["token"]
        self.call("bad:unknown_card", "GET", f"/api/v1/cards/{ghost}", token=me, expect={404: None})
        self.call("bad:not_an_id", "GET", "/api/v1/cards/not-a-card", token=me, expect={404: None})
        self.call("bad:unknown_payment", "POST", f"/api/v1/payments/{ghost}/simulate", token=me,
                  body={"outcome": "succeeded"}, key=self.key("x"), expect={404: None})  # fmt: skip
        self.call("bad:unknown_redemption", "POST", f"/api/v1/redemptions/{ghost}/confirm", token=me,
                  key=self.key("x"), expect={404: None})  # fmt: skip
        self.call("bad:unknown_product", "POST", "/api/v1/cards", token=me, body={"product": ghost},
                  key=self.key("x"), expect={400: {"invalid"}})  # fmt: skip
        self.call("bad:unknown_merchant_action", "POST", f"/api/v1/regulator/merchants/{ghost}/actions",
                  token=self.world.regulator_token, body={"action": "flag", "reason": "x"}, key=self.key("x"),
                  expect={404: None})  # fmt: skip
        self.call("bad:unknown_action", "GET", "/api/v1/regulator/actions/999999999", token=self.world.regulator_token,
                  expect={404: None})  # fmt: skip

    def _bad_roles(self) -> None:
        card = self.pick(lambda c: True)
        merchant = self.merchants[card["merchant"]]
        self.call("bad:consumer_redeems", "POST", "/api/v1/redemptions", token=self.me["token"],
                  body={"card": card["id"]}, expect={403: None})  # fmt: skip
        self.call("bad:merchant_buys", "POST", "/api/v1/cards", token=merchant["token"],
                  body={"product": merchant["products"][0]["id"]}, key=self.key("x"), expect={403: None})  # fmt: skip
        self.call("bad:consumer_acts", "POST", f"/api/v1/regulator/merchants/{merchant['id']}/actions",
                  token=self.me["token"], body={"action": "order_refunds", "reason": "x"},
                  expect={403: None})  # fmt: skip
        self.call("bad:no_credentials", "POST", f"/api/v1/cards/{card['id']}/refunds", token=None,
                  body={"reason": "voluntary"}, expect={401: None})  # fmt: skip
        self.call("bad:wrong_token", "GET", "/api/v1/cards", token="not-a-token", expect={401: None})

    def _bad_bodies(self) -> None:
        card = self.pick(lambda c: True)
        merchant = self.merchants[card["merchant"]]
        product = self.rng.choice(merchant["products"])
        me = self.me["token"]
        choice = self.rng.randrange(9)
        if choice == 0:
            self.call("bad:malformed_json", "POST", "/api/v1/cards", token=me, raw=b'{"product": ',
                      key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 1:
            self.call("bad:wrong_type", "POST", "/api/v1/cards", token=me, body={"product": 12345},
                      key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 2:
            self.call("bad:float_amount", "POST", "/api/v1/redemptions", token=merchant["token"],
                      body={"card": card["id"], "amount": 10.5}, key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 3:
            self.call("bad:huge_amount", "POST", "/api/v1/redemptions", token=merchant["token"],
                      body={"card": card["id"], "amount": 10**30}, key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 4:
            self.call("bad:unknown_outcome", "POST", f"/api/v1/payments/{card['payment']['id']}/simulate",
                      token=me, body={"outcome": "maybe"}, key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 5:
            reason = self.rng.choice(["merchant_closure", "because", ""])
            self.call("bad:refund_reason", "POST", f"/api/v1/cards/{card['id']}/refunds", token=me,
                      body={"reason": reason}, key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 6:
            self.call("bad:not_an_object", "POST", "/api/v1/cards", token=me, body=[product["id"]],
                      key=self.key("x"), expect={400: None})  # fmt: skip
        elif choice == 7:
            self.call("bad:idempotency_key", "POST", "/api/v1/cards", token=me, body={"product": product["id"]},
                      key=self.rng.choice(["k" * 256, "", "café", "bad\x7fkey"]), expect={400: None})  # fmt: skip
        else:
            self.call("bad:regulator_action", "POST", f"/api/v1/regulator/merchants/{merchant['id']}/actions",
                      token=self.world.regulator_token, body={"action": "nuke", "reason": "x"},
                      expect={400: None})  # fmt: skip

    def _bad_decided(self) -> None:
        """Confirm or reject what is decided (or expired), pay a decided payment, refund a refunded card."""
        choice = self.rng.randrange(3)
        if choice == 0:
            if not self.decided:
                raise Skip()
            redemption_id = self.rng.choice(list(self.decided))
            verb = self.rng.choice(["confirm", "reject"])
            state = self.decided[redemption_id]
            # Confirming a confirmed redemption (or rejecting a rejected one) is idempotent: 200.
            same = (verb, state) in (("confirm", "confirmed"), ("reject", "rejected"))
            expect: Expect = {409: {"redemption_not_pending", "redemption_expired"}}
            if same:
                expect[200] = None
            self.call(f"bad:{verb}_decided", "POST", f"/api/v1/redemptions/{redemption_id}/{verb}",
                      token=self.me["token"], key=self.key("x"), expect=expect)  # fmt: skip
        elif choice == 1:
            card = self.pick(lambda c: c["state"] != "pending_payment")
            outcome = self.rng.choice(["succeeded", "failed"])
            # The same verdict twice is the gateway repeating itself: 200, nothing moves again.
            same = (outcome == "succeeded") == bool(card["paid_at"])
            self.call(f"bad:pay_decided_{'same' if same else 'other'}", "POST",
                      f"/api/v1/payments/{card['payment']['id']}/simulate", token=self.me["token"],
                      body={"outcome": outcome}, key=self.key("x"),
                      expect={200: None} if same else {409: {"payment_not_pending"}})  # fmt: skip
        else:
            card = self.pick(lambda c: c["state"] in ("refunded", "exhausted", "cancelled", "pending_payment"))
            reason = self.rng.choice(["cooling_off", "small_balance", "voluntary"])
            self.call("bad:refund_final", "POST", f"/api/v1/cards/{card['id']}/refunds", token=self.me["token"],
                      body={"reason": reason}, key=self.key("x"),
                      expect={201: None, 409: REFUSED_REFUNDS})  # fmt: skip
            # 201 only when it replays this card's own refund of that reason (the service's idempotency).

    def _bad_registration(self) -> None:
        if self.rng.random() < 0.5:
            self.call("bad:merchant_license", "POST", "/api/v1/merchants", token=None,
                      body={"username": self.key("m"), "password": "a-long-passphrase", "name": "X",
                            "license_number": "91110105BADCHECK00", "category": "fitness", "district": "朝阳区",
                            "address": "1 Road"}, expect={400: None})  # fmt: skip
        else:
            self.call("bad:consumer_phone", "POST", "/api/v1/consumers", token=None,
                      body={"username": self.key("c"), "password": "a-long-passphrase", "display_name": "X",
                            "phone": "call me"}, expect={400: None})  # fmt: skip

    # -- the loop -------------------------------------------------------------------------------
    def step(self) -> None:
        op = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        try:
            getattr(self, f"_op_{op}")()
        except Skip:
            self._op_buy() if not self.cards or self.rng.random() < 0.5 else self._op_list_redemptions()


BAD = [name.removeprefix("_bad_") for name in vars(Client) if name.startswith("_bad_")]


def workload_run(
    *,
    base_url: str,
    world: World,
    seconds: float,
    clients: int = 6,
    seed: int | None = None,
    settle: Callable[[], tuple[str, str | None]] | None = None,
    settle_every: float = 8.0,
) -> Report:
    """Run the workload; return what was done and every failure seen. ``settle()`` returns
    ``(status label, failure or None)``."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    master = random.Random(seed)
    workers = [
        Client(i, base_url=base_url, world=world, rng=random.Random(master.randrange(2**63))) for i in range(clients)
    ]
    deadline = time.monotonic() + seconds
    crashed: list[str] = []

    def drive(client: Client) -> None:
        try:
            client._op_list_cards()  # what the consumer already holds
            while time.monotonic() < deadline:
                client.step()
        except Exception as exc:  # noqa: BLE001 - a bug in the driver must fail the run, not vanish
            crashed.append(f"client {client.index} crashed: {exc!r}")

    operator = Report(seed=seed)

    def operate() -> None:
        while time.monotonic() + settle_every < deadline:
            time.sleep(settle_every)
            label, failure = settle()
            operator.calls[("settle", label)] += 1
            if failure:
                operator.failures.append(failure)

    started = time.monotonic()
    threads = [threading.Thread(target=drive, args=(c,), name=f"chaos-{c.index}") for c in workers]
    if settle is not None:
        threads.append(threading.Thread(target=operate, name="chaos-operator"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = Report(seed=seed, seconds=time.monotonic() - started)
    for client in workers:
        report.merge(client.report)
    report.merge(operator)
    report.failures.extend(crashed)
    return report


def world_build(*, merchants: int = 3, consumers: int = 6, tag: str = "chaos") -> World:
    """Merchants with one product of each kind, consumers and a regulator, with API tokens,
    made through the services in this process (Django set up on the server's database)."""
    from rest_framework.authtoken.models import Token

    from consumers.services import consumer_register
    from core.services import user_create
    from merchants.registry import uscc_check_character
    from merchants.services.merchants import merchant_register, product_create

    password = uuid.uuid4().hex
    made = []
    for i in range(merchants):
        first17 = f"91110105{zlib.crc32(tag.encode()) % 10**5:05d}{i:04d}"
        merchant = merchant_register(
            username=f"{tag}-merchant-{i}",
            password=password,
            name=f"Chaos Gym {i}",
            license_number=first17 + uscc_check_character(first17),
            category="fitness",
            district="朝阳区",
            address=f"{i} Chaos Road",
        )
        products = []
        for spec in PRODUCTS:
            product = product_create(merchant=merchant, **spec)
            products.append({"id": str(product.pk), **spec})
        made.append(
            {"id": str(merchant.pk), "token": Token.objects.create(user=merchant.user).key, "products": products}
        )
    people = []
    for i in range(consumers):
        consumer = consumer_register(
            username=f"{tag}-consumer-{i}", password=password, display_name=f"C{i}", phone="13800000000"
        )
        people.append({"id": str(consumer.pk), "token": Token.objects.create(user=consumer.user).key})
    regulator = user_create(username=f"{tag}-regulator", password=password, role="regulator")
    return World(merchants=made, consumers=people, regulator_token=Token.objects.create(user=regulator).key)


def baseline_run(*, base_url: str, seconds: float, clients: int = 6) -> Report:
    """The same clients asking ``GET /livez`` (a Django view without the database) back to back:
    the framework's own ceiling, to compare the workload's rate with."""
    deadline = time.monotonic() + seconds
    reports = [Report(seed=0) for _ in range(clients)]

    def drive(report: Report) -> None:
        connection = Http(base_url)
        while time.monotonic() < deadline:
            try:
                status, _, _ = connection.send("GET", "/livez", token=None, body=None, key=None)
            except (http.client.HTTPException, OSError) as exc:
                report.calls[("livez", "transport-error")] += 1
                report.failures.append(f"livez: transport error {exc!r}")
                continue
            report.calls[("livez", status)] += 1
            if status != 200:
                report.failures.append(f"livez → {status}")

    started = time.monotonic()
    threads = [threading.Thread(target=drive, args=(r,)) for r in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Report(seed=0, seconds=time.monotonic() - started)
    for report in reports:
        total.merge(report)
    return total
