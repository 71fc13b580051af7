"""QR codes for pages: an inline SVG drawn from reportlab's QR encoder (the one the PDFs use).

One ``<path>`` of unit squares on a white quiet zone, scaled by the browser: crisp at any size,
a few kilobytes, no image request and no new dependency.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString
from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel

QUIET_ZONE = 4  # modules of white around the code, as the standard asks


def qr_modules(value: str) -> list[list[bool]]:
    """The dark (True) and light modules of the QR code of ``value``, row by row (error correction M)."""
    code = QRCode(None, QRErrorCorrectLevel.M)
    code.addData(value)
    code.make()
    count = code.getModuleCount()
    return [[bool(code.isDark(row, col)) for col in range(count)] for row in range(count)]


def qr_svg(value: str, *, label: str, size_px: int = 240, html_id: str = "") -> SafeString:
    """An inline ``<svg>`` of the QR code of ``value``, ``size_px`` wide, announced as ``label``."""
    modules = qr_modules(value)
    side = len(modules) + 2 * QUIET_ZONE
    path = "".join(
        f"M{col + QUIET_ZONE} {row + QUIET_ZONE}h1v1h-1z"
        for row, cells in enumerate(modules)
        for col, dark in enumerate(cells)
        if dark
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="qr" role="img" aria-label="{label}"{id} width="{size}" '
        'height="{size}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges" data-qr-text="{value}">'
        '<rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d="{path}"/></svg>',
        label=label,
        id=format_html(' id="{}"', html_id) if html_id else "",
        size=size_px,
        side=side,
        value=value,
        path=path,
    )
