"""SMS backends, chosen by ``SMS_BACKEND``.

- ``console`` (default): writes the message to the log; nothing to install or configure.
- ``aliyun``: Alibaba Cloud's SMS service (Dysmsapi ``SendSms``) through its official SDK
  ``alibabacloud-dysmsapi20170525``. A message is a pre-approved template (``SMS_ALIYUN_TEMPLATES``
  names one per kind, ``SMS_ALIYUN_TEMPLATE_CODE`` the rest) under the signature
  ``SMS_ALIYUN_SIGN_NAME``, with the template parameter ``{"title": ...}``.

A backend's ``send`` returns the provider's id of the message or raises ``DeliveryFailed``; the
outbox retries it with backoff and, when every attempt failed, records it dead.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Protocol

from django.conf import settings

from core.outbox import DeliveryFailed

log = logging.getLogger(__name__)

# Dysmsapi codes that a later attempt will not change (a bad number, template or signature):
# the message dies at once. Every other code (flow control such as isv.BUSINESS_LIMIT_CONTROL,
# isp.SYSTEM_ERROR) is retried.
PERMANENT_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.BLACK_KEY_CONTROL_LIMIT",
    }
)
TITLE_MAX = 35  # a template variable's length limit at Dysmsapi


class SmsBackend(Protocol):
    def send(self, *, phone: str, kind: str, title: str, body: str, key: str) -> str: ...


class ConsoleSms:
    def send(self, *, phone: str, kind: str, title: str, body: str, key: str) -> str:
        log.info("SMS to %s (%s, %s): %s %s", phone, kind, key, title, body)
        return f"console:{key}"


class AliyunSms:
    def __init__(self) -> None:
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import models as openapi

        config = openapi.Config(
            access_key_id=settings.SMS_ALIYUN_ACCESS_KEY_ID,
            access_key_secret=settings.SMS_ALIYUN_ACCESS_KEY_SECRET,
            endpoint=settings.SMS_ALIYUN_ENDPOINT,
            protocol=settings.SMS_ALIYUN_PROTOCOL,
        )
        self.client = Client(config)

    def send(self, *, phone: str, kind: str, title: str, body: str, key: str) -> str:
        from alibabacloud_dysmsapi20170525 import models as dysms
        from alibabacloud_tea_util.models import RuntimeOptions

        request = dysms.SendSmsRequest(
            phone_numbers=phone,
            sign_name=settings.SMS_ALIYUN_SIGN_NAME,
            template_code=settings.SMS_ALIYUN_TEMPLATES.get(kind, settings.SMS_ALIYUN_TEMPLATE_CODE),
            template_param=json.dumps({"title": title[:TITLE_MAX]}, ensure_ascii=False),
            out_id=key[:64],
        )
        runtime = RuntimeOptions(autoretry=False, connect_timeout=5000, read_timeout=10000)
        try:
            response = self.client.send_sms_with_options(request, runtime)
        except Exception as exc:
            code = getattr(exc, "code", "") or type(exc).__name__
            raise DeliveryFailed(f"aliyun SendSms: {code}: {exc}", retryable=code not in PERMANENT_CODES) from exc
        result = response.body
        if result.code != "OK":
            raise DeliveryFailed(
                f"aliyun SendSms: {result.code}: {result.message}", retryable=result.code not in PERMANENT_CODES
            )
        return result.biz_id or ""


@cache
def _backend(name: str, endpoint: str) -> SmsBackend:
    if name == "aliyun":
        return AliyunSms()
    return ConsoleSms()


def sms_backend() -> SmsBackend:
    """The configured backend (built once per process and setting)."""
    return _backend(settings.SMS_BACKEND, settings.SMS_ALIYUN_ENDPOINT)
