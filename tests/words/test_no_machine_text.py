"""No page and no PDF shows a person machine text: an ISO timestamp or date, or the raw key of an
enum (a model's ``TextChoices`` value such as ``cooling_off`` or ``hotline``).

Every page the URL resolver knows is rendered for every role over the city of
tests/security/world.py (each object page with every object of the city that fits it), in Chinese
and in English; the visible text is what is checked (tags, attribute values, URLs, scripts, styles,
form values and ``<code>`` are not read). Every PDF the app makes (the contract, the statement, the
audit report; not a document a merchant uploaded) is checked the same way, its text extracted with
pypdf.

Dates for people are Beijing 年月日 in Chinese and "March 2, 2026" in English: a bare YYYY-MM-DD is
machine text in both languages.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pypdf
import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client

from tests.factories import sign_in
from tests.security.test_csrf import ROLES, page_paths

LANGUAGES = ("zh-hans", "en")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?")
SKIPPED = {"script", "style", "code", "textarea", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def enum_keys() -> tuple[set[str], set[str]]:
    """Every choice value of every model field that reads as a key: (with an underscore, lowercase
    ASCII words). English may use the plain words ("open", "paid") as words; Chinese may not."""
    snake, plain = set(), set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            for value, _label in getattr(field, "flatchoices", None) or []:
                if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
                    continue
                (snake if "_" in value else plain).add(value)
    return snake, plain


class _Text(HTMLParser):
    """The text a person sees: the data of elements outside <script>, <style>, <code>, <textarea>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED:
            self._skipping.append(tag)

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


_ROW = re.compile(r"<tr\b.*?</tr>", re.DOTALL)
_EMPTY_CELL = re.compile(r"<td\b[^>]*>\s*</td>")


def empty_cells(html: str) -> list[str]:
    """The table rows with a blank cell (a blank cell says 无/none; a cell of buttons is not blank)."""
    return [" ".join(row.split()) for row in _ROW.findall(html) if _EMPTY_CELL.search(row)]


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(page.extract_text() for page in reader.pages)


_KEY = re.compile(r"(?<![A-Za-z0-9_./:#=-])[a-z][a-z0-9_]*(?![A-Za-z0-9_/=-])")
_ENGLISH_WORD = re.compile(r"^[A-Za-z][a-z']*[,.;:!?]?$")


def machine_text(text: str, language: str, keys: tuple[set[str], set[str]]) -> list[str]:
    """ISO dates and raw keys in ``text``. A key without an underscore ("hotline", "refund") is a
    word of English: in Chinese text it counts only standing alone, not inside an English sentence
    (what a person typed, such as a complaint's description, stays as typed)."""
    found = [match.group(0) for match in ISO.finditer(text)]
    snake, plain = keys
    found += [word for word in _KEY.findall(text) if word in snake]
    if language == "zh-hans":
        tokens = text.split()
        for at, token in enumerate(tokens):
            for word in _KEY.findall(token):
                if word not in plain:
                    continue
                neighbours = tokens[max(0, at - 1) : at] + tokens[at + 1 : at + 2]
                if word == token.strip(",.;:!?()（）：，。；") and any(_ENGLISH_WORD.match(n) for n in neighbours):
                    continue
                found.append(word)
    return found


def client_for(world, role: str, language: str) -> Client:
    client = Client(headers={"accept-language": language})
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    if world.users[role] is not None:
        sign_in(client, world.users[role])
    return client


def _context(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 40) : at + len(needle) + 40]


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_no_page_or_pdf_shows_an_iso_date_a_raw_enum_key_or_a_blank_cell(busy_world, language):
    world = busy_world
    keys = enum_keys()
    assert {"cooling_off", "merchant_default", "session_pack"} <= keys[0] and "hotline" in keys[1]
    problems, pages, pdfs = [], 0, 0
    paths = page_paths(world)
    for role in ROLES:
        client = client_for(world, role, language)
        for path in paths:
            response = client.get(path)
            if response.status_code != 200:
                continue
            kind = response["Content-Type"]
            if kind.startswith("text/html"):
                pages += 1
                html = response.content.decode()
                text = visible_text(html)
                problems += [f"{role} {path}: an empty cell in {row[:160]!r}" for row in empty_cells(html)]
            elif kind.startswith("application/pdf") and "/documents/" not in path:  # not an uploaded file
                pdfs += 1
                body = b"".join(response.streaming_content) if response.streaming else response.content
                text = pdf_text(body)
            else:
                continue
            problems += [
                f"{role} {path}: {found!r} in …{_context(text, found)}…"
                for found in dict.fromkeys(machine_text(text, language, keys))
            ]
    assert pages >= 40 and pdfs >= 3, (pages, pdfs)
    assert not problems, f"machine text shown to people ({language}):\n" + "\n".join(problems)
