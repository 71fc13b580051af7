"""A fake Stripe: a local HTTP server that answers the calls the platform makes the way Stripe's v1
API does, and a signer of webhook deliveries. The platform talks to it through the real ``stripe``
library (``STRIPE_API_BASE`` points at it); nothing of ours is replaced.

What it speaks of Stripe's protocol:

- ``Authorization: Bearer <secret key>``, else 401 in Stripe's error shape
  ``{"error": {"type", "message", "code"?, "param"?}}``.
- Form-encoded bodies as the library sends them (``metadata[card_id]=...``, ``list[0]=...``).
- ``POST /v1/payment_intents``, ``GET /v1/payment_intents/{id}``, ``POST /v1/refunds`` (only of a
  succeeded PaymentIntent, at most what is left of it), ``GET /v1/refunds?payment_intent=``.
- ``POST /v1/transfers`` (to a connected account ``acct_...``), ``GET /v1/transfers?transfer_group=``,
  ``GET /v1/balance_transactions``:
  the account's statement, newest first, one balance transaction per charge (positive), refund and
  transfer (negative), paged with ``limit``/``starting_after``/``ending_before`` and ``has_more``,
  filtered by ``currency``, ``type`` or ``source``. A charge enters it when ``payment_succeed``
  charges the card. (No fees: ``fee`` is 0 and ``net`` equals ``amount``.)
- ``Idempotency-Key`` on POSTs: once the endpoint has run, its status and body are saved under the
  key and a repeat with the same parameters gets them back (header ``Idempotent-Replayed: true``);
  the same key with other parameters, or on another endpoint, is 400 ``idempotency_error``.
  Requests refused before the endpoint runs (authentication, invalid parameters) save nothing.
  Stripe forgets a key after 24 hours; ``forget_keys`` does it at once.

Failures for retry tests, of POSTs (the calls that do something): ``fail_next`` answers the next
ones with a 500 ``api_error`` (an outage in front of the API: nothing runs, nothing is saved, so a
retry under the same key can succeed) or a 400 ``invalid_request_error`` (the endpoint refused it:
saved, so a retry gets the same 400, as on Stripe); ``drop_next`` runs the call, saves its result,
and closes the connection without an answer (a lost answer: the retry under the same key gets the
saved result).

Stripe's own behaviour, for reference: https://docs.stripe.com/api/idempotent_requests and
https://docs.stripe.com/webhooks/signature (the scheme ``sign_payload`` implements).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

API_KEY = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_test_fake_secret"
API_VERSION = "2025-01-27.acacia"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def form_decode(body: str) -> dict[str, Any]:
    """Stripe's form encoding back into nested dicts and lists: ``a[b][0]=x`` → ``{"a": {"b": ["x"]}}``."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node):
            return [lists(node[k]) for k in sorted(node, key=int)]
        return {k: lists(v) for k, v in node.items()}

    return lists(root)


class ApiError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(self, status: int, type_: str, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


def _missing(kind: str, value: str, param: str, *, status: int = 404) -> ApiError:
    return ApiError(status, "invalid_request_error", f"No such {kind}: '{value}'", code="resource_missing", param=param)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False  # answered from the idempotency layer
    dropped: bool = False  # run, but the connection closed without an answer


@dataclass
class _Failure:
    status: int
    path: str | None


@dataclass
class StripeFake:
    api_key: str = API_KEY
    webhook_secret: str = WEBHOOK_SECRET
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    balance_transactions: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    requests: list[Request] = field(default_factory=list)
    _saved: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _drops: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- the server ---------------------------------------------------------------------------

    def start(self) -> StripeFake:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what tests steer and read --------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500, path: str | None = None) -> None:
        """Answer the next ``count`` POSTs (to ``path`` only, if given) with a 500 or a 400."""
        assert status in (400, 500)
        with self._lock:
            self._failures.extend(_Failure(status, path) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """Run the next ``count`` POSTs but close the connection instead of answering."""
        with self._lock:
            self._drops += count

    def forget_keys(self) -> None:
        """Forget every idempotency key, as Stripe does 24 hours after a key's first request."""
        with self._lock:
            self._saved.clear()

    def requests_to(self, method: str, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def payment_succeed(self, intent_id: str) -> dict[str, Any]:
        """The consumer's card was charged: the PaymentIntent succeeds with a charge. Returns it."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            charge = {
                "id": _id("ch"),
                "object": "charge",
                "amount": intent["amount"],
                "amount_refunded": 0,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "paid": True,
                "refunded": False,
                "status": "succeeded",
                "created": int(time.time()),
            }
            self.charges[charge["id"]] = charge
            self._balance_record("charge", charge)
            intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"])
            return json.loads(json.dumps(intent))

    def payment_fail(self, intent_id: str) -> dict[str, Any]:
        """The consumer's card was declined: the PaymentIntent waits for another payment method."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "message": "Your card was declined.",
                },
            )
            return json.loads(json.dumps(intent))

    def transfers_made(self) -> list[dict[str, Any]]:
        """The transfers created, oldest first (copies)."""
        with self._lock:
            return json.loads(json.dumps(list(self.transfers.values())))

    def balance_total(self, currency: str = "cny") -> int:
        """What the account holds by its statement: charges less refunds less transfers."""
        with self._lock:
            return sum(t["amount"] for t in self.balance_transactions if t["currency"] == currency)

    def charge_of(self, intent_id: str, *, with_refunds: bool = True) -> dict[str, Any]:
        """The PaymentIntent's charge as a ``charge.*`` event carries it (``refunds`` listed or not)."""
        with self._lock:
            charge = dict(self.charges[self.payment_intents[intent_id]["latest_charge"]])
            if with_refunds:
                data = [r for r in self.refunds.values() if r["charge"] == charge["id"]]
                charge["refunds"] = {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}
            return json.loads(json.dumps(charge))

    # --- the API --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, Any], body: dict[str, Any], headers) -> tuple:
        """One call: ``(status, body, extra headers, drop)``."""
        key = headers.get("Idempotency-Key") if method == "POST" else None
        request = Request(method=method, path=path, params=body or query, idempotency_key=key)
        with self._lock:
            self.requests.append(request)
            status, answer, extra, drop = self._answer(method, path, query, body, headers, key)
            request.status = status
            request.replayed = extra.get("Idempotent-Replayed") == "true"
            request.dropped = drop
            return status, answer, extra, drop

    def _answer(self, method, path, query, body, headers, key) -> tuple:
        extra: dict[str, str] = {"Idempotency-Key": key} if key else {}
        authorization = headers.get("Authorization", "")
        if authorization != f"Bearer {self.api_key}":
            given = authorization.removeprefix("Bearer ")
            shown = f"{given[:8]}****{given[-4:]}" if given else "(none)"
            error = ApiError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")
            return error.status, error.body, extra, False
        posted = method == "POST"  # failures and drops are of the calls that do something
        failure = next((f for f in self._failures if posted and f.path in (None, path)), None)
        if failure is not None and failure.status == 500:  # an outage before the API: nothing is saved
            self._failures.remove(failure)
            return 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}, extra, False
        if key is not None and key in self._saved:
            return self._replay(key, path, body, extra)
        if failure is not None:  # the endpoint ran and refused: saved like any answer it gives
            self._failures.remove(failure)
            refused = ApiError(400, "invalid_request_error", "The request could not be processed.")
            status, answer = refused.status, refused.body
        else:
            try:
                status, answer = self._route(method, path, query, body)
            except ApiError as error:  # invalid parameters: refused before the endpoint ran
                return error.status, error.body, extra, False
        if key is not None:
            self._saved[key] = (path, body, status, answer)
        drop = posted and self._drops > 0
        self._drops -= drop
        return status, answer, extra, drop

    def _replay(self, key: str, path: str, body: dict[str, Any], extra: dict[str, str]) -> tuple:
        endpoint, params, status, answer = self._saved[key]
        if endpoint != path:
            message = (
                "Keys for idempotent requests can only be used for the same endpoint they were first used for "
                f"('{endpoint}' vs '{path}'). Try using a key other than '{key}' if you meant to execute a "
                "different request."
            )
        elif params != body:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request."
            )
        else:
            return status, answer, {**extra, "Idempotent-Replayed": "true"}, False
        error = ApiError(400, "idempotency_error", message)
        return error.status, error.body, extra, False

    def _route(self, method, path, query, body) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/payment_intents":
            return 200, self._payment_intent_create(body)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payment_intents"]:
            if parts[2] not in self.payment_intents:
                raise _missing("payment_intent", parts[2], "intent")
            return 200, self.payment_intents[parts[2]]
        if method == "POST" and path == "/v1/refunds":
            return 200, self._refund_create(body)
        if method == "GET" and path == "/v1/refunds":
            data = [r for r in self.refunds.values() if r["payment_intent"] == query.get("payment_intent")]
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}
        if method == "POST" and path == "/v1/transfers":
            return 200, self._transfer_create(body)
        if method == "GET" and path == "/v1/transfers":
            group = query.get("transfer_group")
            data = [t for t in reversed(self.transfers.values()) if group is None or t["transfer_group"] == group]
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/transfers"}
        if method == "GET" and path == "/v1/balance_transactions":
            return 200, self._balance_transaction_list(query)
        raise ApiError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    @staticmethod
    def _amount(body: dict[str, Any], *, required: bool) -> int | None:
        raw = body.get("amount")
        if raw is None:
            if required:
                raise ApiError(400, "invalid_request_error", "Missing required param: amount.", param="amount")
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise ApiError(400, "invalid_request_error", "Invalid positive integer", param="amount")
        return int(raw)

    def _payment_intent_create(self, body: dict[str, Any]) -> dict[str, Any]:
        amount = self._amount(body, required=True)
        currency = body.get("currency")
        if not currency:
            raise ApiError(400, "invalid_request_error", "Missing required param: currency.", param="currency")
        intent_id = _id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency.lower(),
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "metadata": body.get("metadata", {}),
            "payment_method_types": body.get("payment_method_types", ["card"]),
            "latest_charge": None,
            "livemode": False,
            "created": int(time.time()),
        }
        self.payment_intents[intent_id] = intent
        return intent

    def _refund_create(self, body: dict[str, Any]) -> dict[str, Any]:
        intent_id = body.get("payment_intent")
        if not intent_id:
            message = "One of the following params should be provided: charge, payment_intent."
            raise ApiError(400, "invalid_request_error", message)
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            raise _missing("payment_intent", intent_id, "payment_intent", status=400)
        if intent["status"] != "succeeded":
            raise ApiError(
                400,
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = self._amount(body, required=False) or left
        if amount > left:
            raise ApiError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent_id,
            "status": "succeeded",
            "metadata": body.get("metadata", {}),
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        self._balance_record("refund", refund)
        return refund

    def _transfer_create(self, body: dict[str, Any]) -> dict[str, Any]:
        amount = self._amount(body, required=True)
        currency = body.get("currency")
        if not currency:
            raise ApiError(400, "invalid_request_error", "Missing required param: currency.", param="currency")
        destination = body.get("destination")
        if not destination:
            raise ApiError(400, "invalid_request_error", "Missing required param: destination.", param="destination")
        if not destination.startswith("acct_"):
            raise _missing("destination", destination, "destination", status=400)
        transfer = {
            "id": _id("tr"),
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "currency": currency.lower(),
            "destination": destination,
            "transfer_group": body.get("transfer_group"),
            "metadata": body.get("metadata", {}),
            "reversed": False,
            "livemode": False,
            "created": int(time.time()),
        }
        self.transfers[transfer["id"]] = transfer
        transfer["balance_transaction"] = self._balance_record("transfer", transfer)["id"]
        return transfer

    def _balance_record(self, type_: str, source: dict[str, Any]) -> dict[str, Any]:
        """The statement line for money in (a charge) or out (a refund or a transfer)."""
        amount = source["amount"] if type_ == "charge" else -source["amount"]
        txn = {
            "id": _id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "fee": 0,
            "net": amount,
            "currency": source["currency"],
            "type": type_,
            "reporting_category": type_,
            "source": source["id"],
            "status": "available",
            "created": source["created"],
            "available_on": source["created"],
        }
        self.balance_transactions.append(txn)
        return txn

    def _balance_transaction_list(self, query: dict[str, Any]) -> dict[str, Any]:
        raw = query.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise ApiError(400, "invalid_request_error", "This value must be between 1 and 100.", param="limit")
        limit = int(raw)
        rows = [
            t
            for t in reversed(self.balance_transactions)  # newest first, as Stripe lists
            if all(query.get(name) in (None, t[name]) for name in ("currency", "type", "source"))
        ]
        ids = [t["id"] for t in rows]
        after, before = query.get("starting_after"), query.get("ending_before")
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor is not None and cursor not in ids:
                raise _missing("balance_transaction", cursor, param, status=400)
        if after is not None:
            rest = rows[ids.index(after) + 1 :]
            page, has_more = rest[:limit], len(rest) > limit
        elif before is not None:
            rest = rows[: ids.index(before)]
            page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = rows[:limit], len(rows) > limit
        return {"object": "list", "data": page, "has_more": has_more, "url": "/v1/balance_transactions"}


class _Handler(BaseHTTPRequestHandler):
    server_version = "stripe-fake"

    def log_message(self, format, *args) -> None:  # quiet: tests read fake.requests instead
        pass

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        body = form_decode(raw) if method == "POST" else {}
        query = form_decode(split.query)
        status, answer, extra, drop = self.server.fake.handle(method, split.path, query, body, self.headers)
        if drop:
            self.close_connection = True
            return
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _id("req"))
        self.send_header("Stripe-Version", API_VERSION)
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


# --- webhooks ------------------------------------------------------------------------------------


def event_payload(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """An event as Stripe delivers it to a webhook endpoint (the raw body)."""
    event = {
        "id": event_id or _id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


def sign_payload(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends: ``t=<unix time>,v1=<hex HMAC-SHA256 of
    "<t>.<payload>" keyed with the endpoint's secret>``. ``timestamp`` defaults to now."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


@pytest.fixture
def stripe_fake(settings):
    """A running fake Stripe, with the platform set to use it (PAYMENT_GATEWAY=stripe)."""
    fake = StripeFake().start()
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_API_KEY = fake.api_key
    settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
    settings.STRIPE_API_BASE = fake.url
    yield fake
    fake.stop()
