"""A case file as a download: the API's and the pages' one response for it.

Always an attachment (``Content-Disposition: attachment``), with the content type found in the file's
bytes when it was uploaded, ``X-Content-Type-Options: nosniff`` so that no browser guesses another,
a sandboxing ``Content-Security-Policy`` should it be opened anyway, and ``Repr-Digest`` (RFC 9530)
carrying the SHA-256 stored with it, for the reader to check the bytes against the record.
"""

from __future__ import annotations

import base64

from django.http import FileResponse

from regulator.models import CaseFile


def case_file_response(row: CaseFile) -> FileResponse:
    response = FileResponse(row.file.open("rb"), as_attachment=True, filename=row.name, content_type=row.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    digest = base64.b64encode(bytes.fromhex(row.sha256)).decode()
    response["Repr-Digest"] = f"sha-256=:{digest}:"
    return response
