"""What the inspection case tests share: files whose first bytes make them a PDF, a JPEG, a PNG (or
none of these), uploads of them, a private media directory, and jurisdictions for regulators.

Regulators have no stored jurisdiction yet (``regulator.selectors.jurisdiction``: the whole city);
``jurisdictions`` gives the tests' regulators their own, as ``Jurisdiction`` objects, where the case
services and selectors ask for them.
"""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from regulator.selectors import cases as case_selectors
from regulator.selectors.jurisdiction import CITY, Jurisdiction
from regulator.services import cases as case_services

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00" + bytes(32)
NOT_A_PDF = b"MZ\x90\x00 this is a Windows program, whatever its name says" + bytes(64)


def upload(name: str, content: bytes, content_type: str = "application/pdf") -> SimpleUploadedFile:
    """A file as a browser sends it: its name and the type the browser claims are the sender's word."""
    return SimpleUploadedFile(name, content, content_type=content_type)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    """Uploaded files go to a fresh directory, not var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def jurisdictions(monkeypatch) -> dict[int, Jurisdiction]:
    """``{regulator's pk: Jurisdiction}``: the regulators named here cover only that; the others the
    whole city."""
    table: dict[int, Jurisdiction] = {}

    def jurisdiction_of(user) -> Jurisdiction:
        return table.get(user.pk, CITY)

    for module in (case_services, case_selectors):
        monkeypatch.setattr(module, "jurisdiction_of", jurisdiction_of)
    return table
