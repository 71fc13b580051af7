"""Uploaded evidence files: what a person may send, judged by the file's own bytes.

A file's name and the ``Content-Type`` its browser claims are only what the sender says; a file is
accepted when its first bytes are those of a PDF, a JPEG or a PNG (``ACCEPTED``), and the type
stored and served back is the one those bytes show. ``upload_validate`` reads the file once, in
chunks, for its size and SHA-256 (kept with the file, so a download can be matched to what was
sent) and leaves it at its start for storage. Files are stored under generated names (never the
sender's) and served only as attachments to the people the owning app allows.

Used by a dispute's evidence (``consumers.disputes``) and an inspection case's files
(``regulator.services.cases``, which keeps its own error codes); any app that takes documents can call it.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import IO, Any

from django.utils.translation import gettext as _

from core.errors import InvalidInput

# content type → the bytes a file of that type starts with
ACCEPTED: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
SUFFIXES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
HEAD_BYTES = max(len(magic) for magics in ACCEPTED.values() for magic in magics)  # what content_type_of reads
_CHUNK = 64 * 1024


def content_type_of(head: bytes) -> str | None:
    """The accepted type whose magic bytes ``head`` starts with, or None."""
    for content_type, magics in ACCEPTED.items():
        if any(head.startswith(magic) for magic in magics):
            return content_type
    return None


def upload_name(file: Any) -> str:
    """The sender's file name without any directory part, for display and the download's name."""
    return PurePath(str(getattr(file, "name", "") or "file").replace("\\", "/")).name[:200] or "file"


def upload_validate(file: IO[bytes], *, max_bytes: int, field: str = "files") -> tuple[str, str]:
    """``(content_type, sha256 hex)`` of an uploaded file that is a PDF, JPEG or PNG by its bytes
    and at most ``max_bytes`` long; else ``InvalidInput`` (400) naming the file under ``field``.
    The file is read once and left at its start."""
    name = upload_name(file)
    size = getattr(file, "size", None)
    if size is not None and size > max_bytes:
        raise InvalidInput(errors={field: [_too_large(name, max_bytes)]})
    file.seek(0)
    head = file.read(HEAD_BYTES)
    content_type = content_type_of(head)
    if content_type is None:
        raise InvalidInput(errors={field: [_("%(name)s: only PDF, JPEG or PNG files are accepted.") % {"name": name}]})
    digest = hashlib.sha256(head)
    read = len(head)
    while chunk := file.read(_CHUNK):
        read += len(chunk)
        if read > max_bytes:
            file.seek(0)
            raise InvalidInput(errors={field: [_too_large(name, max_bytes)]})
        digest.update(chunk)
    file.seek(0)
    if read == 0:
        raise InvalidInput(errors={field: [_("%(name)s is empty.") % {"name": name}]})
    return content_type, digest.hexdigest()


def _too_large(name: str, max_bytes: int) -> str:
    if max_bytes >= 1024 * 1024:
        return _("%(name)s is larger than %(size)s MB.") % {"name": name, "size": max_bytes // (1024 * 1024)}
    return _("%(name)s is larger than %(size)s KB.") % {"name": name, "size": max(1, max_bytes // 1024)}
