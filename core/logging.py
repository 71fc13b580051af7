"""Log filters. A refused or missing thing is the client's affair: one line, never a traceback."""

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """Drop the traceback from a 4xx that ``django.request`` logs (Django attaches the raised
    ``Http404`` or ``PermissionDenied`` to it), keeping the one line "Not Found: /path"."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
