"""A fake Alibaba Cloud SMS (Dysmsapi 2017-05-25): a local HTTP server that answers ``SendSms`` the
way the service does. The platform talks to it through the official SDK
(``alibabacloud-dysmsapi20170525``; ``SMS_ALIYUN_ENDPOINT`` points at it, ``SMS_ALIYUN_PROTOCOL``
is ``http``); nothing of ours is replaced.

What it speaks of the protocol (RPC style, ``POST /`` with the parameters in the query string):

- ``Action=SendSms`` and ``Version=2017-05-25``; the request must be signed: an ``Authorization``
  header ``ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=...,Signature=...`` naming the
  configured key, with ``x-acs-signature-nonce`` and ``x-acs-date`` (else 400
  ``SignatureDoesNotMatch`` / 404 ``InvalidAccessKeyId.NotFound`` in the service's error shape).
- ``PhoneNumbers``, ``SignName``, ``TemplateCode``, ``TemplateParam`` (JSON); success is HTTP 200
  ``{"Code": "OK", "Message": "OK", "BizId": "...", "RequestId": "..."}``.
- Refusals are HTTP 200 with another ``Code``, as the service answers them:
  ``fail_next("isv.BUSINESS_LIMIT_CONTROL", times=n)`` (flow control, "触发分钟级流控"),
  ``isv.MOBILE_NUMBER_ILLEGAL``...

Reference: https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

ACCESS_KEY_ID = "LTAI5tFakeAccessKey0001"
ACCESS_KEY_SECRET = "fake-secret-0123456789abcdef"
SIGN_NAME = "预付卡监管平台"
TEMPLATE_CODE = "SMS_000000001"

MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isp.SYSTEM_ERROR": "系统错误",
}


@dataclass
class FakeDysms:
    sent: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    _failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, code: str, *, times: int = 1) -> None:
        with self.lock:
            self._failures += [code] * times

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        request_id = secrets.token_hex(16).upper()
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(url.query)) | dict(parse_qsl(body))
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("ACS3-HMAC-SHA256 ") or "Signature=" not in auth:
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "no signature", "RequestId": request_id}
        if f"Credential={ACCESS_KEY_ID}," not in auth:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "no such key", "RequestId": request_id}
        if not handler.headers.get("x-acs-signature-nonce") or not handler.headers.get("x-acs-date"):
            return 400, {"Code": "MissingSignatureNonce", "Message": "nonce", "RequestId": request_id}
        action = handler.headers.get("x-acs-action") or params.get("Action")
        if action != "SendSms" or (handler.headers.get("x-acs-version") or params.get("Version")) != "2017-05-25":
            return 404, {"Code": "InvalidAction.NotFound", "Message": str(action), "RequestId": request_id}
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return 400, {"Code": "MissingParameter", "Message": name, "RequestId": request_id}
        with self.lock:
            self.requests += 1
            code = self._failures.pop(0) if self._failures else "OK"
            if code == "OK":
                self.sent.append(params)
        if code != "OK":
            return 200, {"Code": code, "Message": MESSAGES.get(code, code), "RequestId": request_id}
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"{secrets.randbelow(10**15)}^0", "RequestId": request_id}


def serve(fake: FakeDysms) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            status, payload = fake.answer(self)
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-acs-request-id", payload["RequestId"])
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def dysms(settings):
    """The fake service, with the platform's settings pointing SMS at it."""
    fake = FakeDysms()
    server = serve(fake)
    settings.SMS_BACKEND = "aliyun"
    settings.SMS_ALIYUN_ENDPOINT = f"127.0.0.1:{server.server_address[1]}"
    settings.SMS_ALIYUN_PROTOCOL = "http"
    settings.SMS_ALIYUN_ACCESS_KEY_ID = ACCESS_KEY_ID
    settings.SMS_ALIYUN_ACCESS_KEY_SECRET = ACCESS_KEY_SECRET
    settings.SMS_ALIYUN_SIGN_NAME = SIGN_NAME
    settings.SMS_ALIYUN_TEMPLATE_CODE = TEMPLATE_CODE
    settings.SMS_ALIYUN_TEMPLATES = {}
    yield fake
    server.shutdown()
    server.server_close()
