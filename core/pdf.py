"""The PDF foundation: the font, the A4 page template and the shared styles and tables.

Every PDF the platform writes (the card contract, the merchant's settlement statement, the
regulator's audit report) is in Chinese and embeds the CJK font it is set in, so that it renders
on any reader, with or without Chinese fonts of its own. The font is a TrueType-outline one (reportlab
embeds a subset of a TrueType font, the glyphs used, but cannot embed CFF outlines such as Noto Sans
CJK's): ``settings.PDF_FONT_PATH``, or else the first of Debian's ``FONT_CANDIDATES`` found
(``apt-get install fonts-wqy-zenhei``). It is registered under the name ``FONT`` the first time a PDF
is made (``use_font``, called by ``document``); no font found is an ``ImproperlyConfigured`` that
names the package to install.

The page is A4 with 18 mm side margins; ``document`` makes the template, ``page_canvas`` stamps
every page with a footer, the platform's contact (``settings.PLATFORM_CONTACT``) and
"第 n 页 / 共 N 页". ``pairs_table`` (label/value pairs) and ``ruled_table`` (long ruled tables whose
header repeats on every page) are the two tables the statement and the report share, in the styles
below.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Table, TableStyle

FONT = "PlatformCJK"  # the name the styles use; the PDF names the font by its own (PostScript) name
# TrueType-outline CJK fonts of Debian's packages, in order of preference: (path, package).
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei"),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", "fonts-arphic-uming"),
)
_registered: dict[str, str] = {}  # FONT -> the path it was registered from


def font_path() -> str:
    """The font file to embed: ``PDF_FONT_PATH`` when set, else the first candidate that exists."""
    configured = getattr(settings, "PDF_FONT_PATH", "")
    if configured:
        if not Path(configured).is_file():
            raise ImproperlyConfigured(
                f"PDF_FONT_PATH={configured} does not exist. Set it to a TrueType CJK font (.ttf/.ttc), "
                "e.g. Debian's fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei)."
            )
        return configured
    for path, _package in FONT_CANDIDATES:
        if Path(path).is_file():
            return path
    raise ImproperlyConfigured(
        "No CJK font for the PDFs: install Debian's fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei) "
        "or set PDF_FONT_PATH to a TrueType CJK font (.ttf/.ttc; CFF fonts such as Noto Sans CJK cannot be "
        "embedded)."
    )


def use_font() -> str:
    """Register the CJK font as ``FONT`` (once per path) and return ``FONT``. A ``.ttc`` collection
    gives its first face. reportlab embeds the glyphs a document uses (a subset) in each PDF."""
    path = font_path()
    if _registered.get(FONT) != path:
        try:
            font = TTFont(FONT, path, subfontIndex=0) if path.lower().endswith(".ttc") else TTFont(FONT, path)
        except TTFError as error:
            raise ImproperlyConfigured(
                f"{path} cannot be embedded in a PDF ({error}): use a TrueType-outline CJK font, "
                "e.g. Debian's fonts-wqy-zenhei (apt-get install fonts-wqy-zenhei)."
            ) from error
        pdfmetrics.registerFont(font)
        _registered[FONT] = path
    return FONT


AUTHOR = "单用途预付卡资金托管平台"

MARGIN = 18 * mm
WIDTH = A4[0] - 2 * MARGIN  # the text width between the margins
HEADER_BG = colors.HexColor("#e8edf3")
TOTAL_BG = colors.HexColor("#f4f4f4")

BODY = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
TITLE = ParagraphStyle("title", parent=BODY, fontSize=18, leading=24, alignment=TA_CENTER)
SUBTITLE = ParagraphStyle("subtitle", parent=BODY, fontSize=8, leading=11, alignment=TA_CENTER, textColor=colors.grey)
HEADING = ParagraphStyle(
    "heading", parent=BODY, fontSize=12, leading=17, spaceBefore=5 * mm, spaceAfter=2 * mm, keepWithNext=1
)
NOTE = ParagraphStyle("note", parent=BODY, fontSize=8, leading=11, textColor=colors.grey)
WARNING = ParagraphStyle("warning", parent=BODY, textColor=colors.red)


def p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of ``text``, which is paragraph markup: escape user input first."""
    return Paragraph(text, style)


def document(buffer: IO[bytes], *, title: str, subject: str, bottom_margin: float = 18 * mm) -> SimpleDocTemplate:
    """The A4 page template, writing into ``buffer``; registers the font first."""
    use_font()
    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=16 * mm,
        bottomMargin=bottom_margin,
        title=title,
        author=AUTHOR,
        subject=subject,
    )


def pairs_table(pairs: list[tuple[str, str]], label_width: float = 34 * mm) -> Table:
    """Label/value pairs two to a row; a pair alone on its row spans it. Values are escaped."""
    rows: list[list[Any]] = []
    style: list[tuple] = []
    for start in range(0, len(pairs), 2):
        cells: list[Any] = [cell for label, value in pairs[start : start + 2] for cell in (p(label), p(escape(value)))]
        if len(cells) == 2:
            cells += ["", ""]
            style.append(("SPAN", (1, len(rows)), (3, len(rows))))
        rows.append(cells)
    value_width = (WIDTH - 2 * label_width) / 2
    table = Table(rows, colWidths=[label_width, value_width, label_width, value_width])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("BACKGROUND", (2, 0), (2, -1), colors.whitesmoke),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                *style,
            ]
        )
    )
    return table


def ruled_table(
    header: list[str], rows: list[list[Any]], widths: list[float], *, right: int, totals: int = 0
) -> LongTable:
    """A ruled table of plain-text cells whose header row repeats on every page; the columns from
    ``right`` on are right-aligned and the last ``totals`` rows are shaded as totals. A page break
    never leaves the header with fewer than two lines below it, nor the totals without a line above."""
    table = LongTable([header, *rows], colWidths=widths, repeatRows=1)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("LEADING", (0, 0), (-1, -1), 11),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1 - totals), [colors.white, colors.HexColor("#fafafa")]),
        ("ALIGN", (right, 0), (-1, -1), "RIGHT"),
        ("NOSPLIT", (0, 0), (-1, min(2, len(rows)))),
        ("NOSPLIT", (0, -1 - totals), (-1, -1)),
    ]
    if totals:
        style += [
            ("LINEABOVE", (0, -totals), (-1, -totals), 0.5, colors.black),
            ("BACKGROUND", (0, -totals), (-1, -1), TOTAL_BG),
        ]
    table.setStyle(TableStyle(style))
    return table


def page_canvas(footer: str) -> type[Canvas]:
    """A canvas class that holds its pages back until the document is done, then stamps each
    with ``footer``, the platform's contact and "第 n 页 / 共 N 页" (the page count is only known
    at the end)."""
    contact = f"平台联系方式：{settings.PLATFORM_CONTACT}" if settings.PLATFORM_CONTACT else ""

    class PagedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._held_pages: list[dict] = []

        def showPage(self) -> None:
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._held_pages)
            for number, page in enumerate(self._held_pages, start=1):
                self.__dict__.update(page)
                self._stamp(number, total)
                super().showPage()
            super().save()

        def _stamp(self, number: int, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setStrokeColor(colors.lightgrey)
            self.setLineWidth(0.5)
            self.line(MARGIN, 12 * mm, width - MARGIN, 12 * mm)
            self.setFont(FONT, 7.5)
            self.setFillColor(colors.grey)
            self.drawString(MARGIN, 8.5 * mm, footer)
            self.drawRightString(width - MARGIN, 8.5 * mm, f"第 {number} 页 / 共 {total} 页")
            if contact:
                self.drawString(MARGIN, 5 * mm, contact)
            self.restoreState()

    return PagedCanvas
