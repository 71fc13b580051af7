"""``core.uploads.upload_validate``: a file is a PDF, JPEG or PNG by its own first bytes (whatever its
name or claimed type), at most the size allowed, and comes back with its SHA-256, read to its start."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

from core.errors import InvalidInput
from core.uploads import content_type_of, upload_name, upload_validate

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"x" * 100
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"y" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"z" * 100


@pytest.mark.parametrize(("content", "expected"), [(PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png")])
def test_each_accepted_type_is_known_by_its_bytes_whatever_it_claims(content, expected):
    upload = SimpleUploadedFile("photo.exe", content, content_type="text/html")
    assert upload_validate(upload, max_bytes=1024) == (expected, hashlib.sha256(content).hexdigest())
    assert upload.read() == content  # left at its start, for storage


@pytest.mark.parametrize(
    "content",
    [b"MZ\x90\x00\x03", b"<html><script>alert(1)</script>", b"GIF89a....", b"PK\x03\x04 a zip", b"%PD"],
)
def test_anything_else_is_refused_naming_the_file(content):
    with pytest.raises(InvalidInput) as refused:
        upload_validate(SimpleUploadedFile("证据.pdf", content, content_type="application/pdf"), max_bytes=1024)
    assert "证据.pdf" in refused.value.errors["files"][0]


def test_a_file_over_the_limit_is_refused_by_its_size_and_by_what_is_read():
    with pytest.raises(InvalidInput):
        upload_validate(SimpleUploadedFile("big.pdf", PDF), max_bytes=len(PDF) - 1)

    class Lying(SimpleUploadedFile):
        """A file whose stated size is smaller than its content."""

    upload = Lying("big.pdf", PDF * 20)
    upload.size = 10
    with pytest.raises(InvalidInput):
        upload_validate(upload, max_bytes=len(PDF) * 2)
    assert upload_validate(SimpleUploadedFile("ok.pdf", PDF), max_bytes=len(PDF))[0] == "application/pdf"


def test_an_empty_file_is_refused():
    with pytest.raises(InvalidInput):
        upload_validate(SimpleUploadedFile("empty.png", b""), max_bytes=1024)


def test_a_large_file_on_disk_is_hashed_in_chunks():
    upload = TemporaryUploadedFile("scan.png", "image/png", 0, None)
    body = PNG + b"\x00" * (300 * 1024)
    upload.write(body)
    upload.size = len(body)
    assert upload_validate(upload, max_bytes=1024 * 1024) == ("image/png", hashlib.sha256(body).hexdigest())
    upload.close()


def test_the_senders_name_keeps_no_directory():
    assert upload_name(SimpleUploadedFile("../../etc/passwd.pdf", PDF)) == "passwd.pdf"
    assert upload_name(SimpleUploadedFile("C:\\Users\\a\\照片.png", PNG)) == "照片.png"
    assert content_type_of(b"") is None
