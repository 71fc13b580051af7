"""The regulator's exports: CSV (BOM, header row) and XLSX, each of the five with the list's
filters, consumers masked, money in yuan, Beijing times, streamed in chunks, logged."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.http import FileResponse, StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from complaints.services import complaint_file
from consumers.services import consumer_register
from refunds.services import refund_request
from regulator import exports
from regulator.models import AuditEvent
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import sign_in

pytestmark = pytest.mark.django_db

NAMES = ("merchants", "cards", "refunds", "complaints", "journal")


@pytest.fixture
def city(regulator):
    gym = builders.merchant(category="fitness", district="朝阳区", name="健身房")
    school = builders.merchant(category="education", district="海淀区", name="培训学校")
    zhang = consumer_register(username="zhang", password=builders.PASSWORD, display_name="张三丰", phone="13812341234")
    gym_card = builders.paid_card(builders.session_pack(gym, price=80_050, sessions=8), zhang)
    school_card = builders.paid_card(builders.session_pack(school, price=30_000, sessions=3))
    refund_request(consumer=school_card.consumer, card_id=school_card.pk, reason="cooling_off")
    complaint_file(
        actor=zhang.user,
        merchant_id=gym.pk,
        card_id=gym_card.pk,
        category="service_unavailable",
        description="关门了",
        source="app",
    )
    merchant_action_take(merchant_id=school.pk, actor_id=regulator.pk, action="flag", reason="家长投诉")
    return {"gym": gym, "school": school, "gym_card": gym_card, "school_card": school_card}


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def get_csv(client, name: str, query: str = "") -> list[list[str]]:
    response = client.get(f"/api/v1/regulator/exports/{name}.csv{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return rows_of(response)


def test_every_export_starts_with_a_bom_and_a_chinese_header_row(regulator, city):
    staff = client_for(regulator)
    for name in NAMES:
        response = staff.get(f"/api/v1/regulator/exports/{name}.csv")
        assert isinstance(response, StreamingHttpResponse)
        body = b"".join(response.streaming_content)
        assert body[:3] == b"\xef\xbb\xbf", name
        header = next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert header == [column.header for column in exports.BUILDERS[name]({}, regulator, {}).columns]
        assert all(not h.isascii() or h.isdigit() for h in header), header  # words, not field keys


def test_merchants_export_rows_and_filters(regulator, city):
    staff = client_for(regulator)
    header, *rows = get_csv(staff, "merchants")
    assert len(rows) == 2
    gym = next(dict(zip(header, r, strict=True)) for r in rows if r[1] == "健身房")
    assert gym["所在区"] == "朝阳区" and gym["行业"] == "健身" and gym["经营状态"] == "使用中"
    assert gym["托管余额（元）"] == "800.50"
    assert gym["已警示"] == "否" and gym["在用卡数"] == "1"
    assert [r[1] for r in get_csv(staff, "merchants", "?district=110108")[1:]] == ["培训学校"]
    assert [r[1] for r in get_csv(staff, "merchants", "?district=海淀区")[1:]] == ["培训学校"]
    assert [r[1] for r in get_csv(staff, "merchants", "?category=fitness")[1:]] == ["健身房"]
    assert [r[1] for r in get_csv(staff, "merchants", "?flagged=true")[1:]] == ["培训学校"]
    bad = staff.get("/api/v1/regulator/exports/merchants.csv?flagged=perhaps")
    assert bad.status_code == 400 and "flagged" in bad.json()["errors"]


def test_cards_export_masks_the_holder_and_filters_by_merchant_and_state(regulator, city):
    staff = client_for(regulator)
    header, *rows = get_csv(staff, "cards")
    assert len(rows) == 2
    card = next(dict(zip(header, r, strict=True)) for r in rows if r[0] == str(city["gym_card"].pk))
    assert card["持卡人"] == "张**" and card["手机号码"] == "138****1234"
    assert card["售价（元）"] == "800.50" and card["托管余额（元）"] == "800.50"
    assert card["状态"] in ("冷静期", "使用中") and card["卡种"] and card["卡种"] != "session_pack"
    body = "\n".join(",".join(r) for r in rows)
    assert "张三丰" not in body and "13812341234" not in body
    only_gym = get_csv(staff, "cards", f"?merchant={city['gym'].pk}")[1:]
    assert [r[0] for r in only_gym] == [str(city["gym_card"].pk)]
    state = city["gym_card"].state
    assert str(city["gym_card"].pk) in [r[0] for r in get_csv(staff, "cards", f"?state={state}")[1:]]
    assert get_csv(staff, "cards", "?state=exhausted")[1:] == []
    assert staff.get("/api/v1/regulator/exports/cards.csv?merchant=nope").status_code == 400


def test_refunds_export_and_its_state_and_overdue_filters(regulator, city):
    staff = client_for(regulator)
    header, *rows = get_csv(staff, "refunds")
    assert len(rows) == 1
    refund = dict(zip(header, rows[0], strict=True))
    assert refund["卡号"] == str(city["school_card"].pk) and refund["商户名称"] == "培训学校"
    assert Decimal(refund["退款金额（元）"]) == Decimal("300.00") and refund["是否逾期"] == "否"
    assert refund["持卡人"].endswith("*") and "Consumer" not in refund["持卡人"][1:]
    assert len(get_csv(staff, "refunds", "?overdue=true")) == 1  # the header alone
    assert len(get_csv(staff, "refunds", "?overdue=false")) == 2
    assert refund["状态"] in ("处理中", "已支付") and refund["退款原因"] != "cooling_off"
    assert staff.get("/api/v1/regulator/exports/refunds.csv?state=lost").status_code == 400


def test_complaints_export_masks_the_complainant_and_applies_the_filters(regulator, city):
    staff = client_for(regulator)
    header, *rows = get_csv(staff, "complaints")
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["投诉人"] == "张**" and row["手机号码"] == "138****1234" and row["所在区"] == "朝阳区"
    assert row["受理时间"][:2] == "20" and len(row["受理时间"]) == 19  # Beijing, YYYY-MM-DD HH:MM:SS
    assert len(get_csv(staff, "complaints", f"?merchant={city['school'].pk}")) == 1
    assert len(get_csv(staff, "complaints", f"?merchant={city['gym'].pk}")) == 2
    assert len(get_csv(staff, "complaints", "?district=110108")) == 1
    assert len(get_csv(staff, "complaints", "?district=110105&category=service_unavailable&state=open")) == 2
    assert len(get_csv(staff, "complaints", "?category=other")) == 1


def test_journal_export_in_yuan_with_the_date_range_and_code(regulator, city):
    from core import clock
    from escrow.models import Posting

    staff = client_for(regulator)
    header, *rows = get_csv(staff, "journal")
    assert len(rows) == Posting.objects.count() > 0
    purchases = get_csv(staff, "journal", "?code=purchase")[1:]
    assert purchases and all(r[header.index("业务类型")] == "购卡" for r in purchases)
    debit = header.index("借方金额（元）")
    assert "800.50" in [r[debit] for r in purchases]
    today = clock.local_date().isoformat()
    assert len(get_csv(staff, "journal", f"?from={today}&to={today}")) == len(rows) + 1
    assert len(get_csv(staff, "journal", "?to=2000-01-01")) == 1
    assert staff.get("/api/v1/regulator/exports/journal.csv?from=2026-02-30").status_code == 400


@pytest.mark.parametrize("name", NAMES)
def test_xlsx_opens_with_openpyxl_and_holds_the_same_rows(regulator, city, name, tmp_path):
    staff = client_for(regulator)
    csv_rows = get_csv(staff, name)
    response = staff.get(f"/api/v1/regulator/exports/{name}.xlsx")
    assert response.status_code == 200 and isinstance(response, FileResponse)
    assert response["Content-Type"] == exports.XLSX_CONTENT_TYPE
    path = tmp_path / f"{name}.xlsx"
    path.write_bytes(b"".join(response.streaming_content))
    sheet = load_workbook(path, read_only=True).worksheets[0]
    width = len(csv_rows[0])
    xlsx_rows = [[*row, *[None] * (width - len(row))] for row in sheet.iter_rows(values_only=True)]
    assert xlsx_rows[0] == csv_rows[0] and len(xlsx_rows) == len(csv_rows)
    money = [i for i, h in enumerate(csv_rows[0]) if h.endswith("（元）")]
    for xlsx_row, csv_row in zip(xlsx_rows[1:], csv_rows[1:], strict=True):
        for i, (cell, text) in enumerate(zip(xlsx_row, csv_row, strict=True)):
            if i in money and text:
                assert isinstance(cell, (int, float)) and f"{cell:.2f}" == text
            elif hasattr(cell, "strftime"):
                assert cell.strftime("%Y-%m-%d %H:%M:%S") == text
            else:
                assert ("" if cell is None else str(cell)) == text


def test_xlsx_money_cells_carry_two_decimals(regulator, city, tmp_path):
    response = client_for(regulator).get("/api/v1/regulator/exports/cards.xlsx")
    path = tmp_path / "cards.xlsx"
    path.write_bytes(b"".join(response.streaming_content))
    sheet = load_workbook(path).worksheets[0]
    header = [cell.value for cell in sheet[1]]
    price = sheet.cell(row=2, column=header.index("售价（元）") + 1)
    assert price.number_format == "0.00" and isinstance(price.value, (int, float))


def test_others_are_refused(city, consumer, merchant_user, api):
    for name in NAMES:
        for file_format in exports.FORMATS:
            path = f"/api/v1/regulator/exports/{name}.{file_format}"
            assert api.get(path).status_code == 401
            assert client_for(consumer).get(path).status_code == 403
            assert client_for(merchant_user).get(path).status_code == 403


def test_rows_are_read_in_chunks_through_a_streamed_response(regulator, city, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 1)
    calls = []
    real = type(exports.regulator_merchants(jurisdiction=exports.CITY)).iterator

    def spy(self, chunk_size=None):
        calls.append(chunk_size)
        return real(self, chunk_size=chunk_size)

    monkeypatch.setattr(type(exports.regulator_merchants(jurisdiction=exports.CITY)), "iterator", spy)
    response = client_for(regulator).get("/api/v1/regulator/exports/merchants.csv")
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    assert calls == []  # nothing read before the response starts streaming
    with CaptureQueriesContext(connection) as queries:
        pieces = list(response.streaming_content)
    assert calls == [1]
    assert len(pieces) == 1 + 2  # the header, then one piece per chunk of one row
    selects = [q["sql"] for q in queries.captured_queries if "merchants_merchant" in q["sql"]]
    assert selects  # the rows were read while streaming, not before


def test_every_export_is_in_the_audit_log(regulator, city):
    staff = client_for(regulator)
    b"".join(staff.get("/api/v1/regulator/exports/merchants.csv?district=110108").streaming_content)
    b"".join(staff.get("/api/v1/regulator/exports/cards.xlsx").streaming_content)
    csv_line, xlsx_line = AuditEvent.objects.filter(verb="export").order_by("created_at", "pk")
    assert (csv_line.actor_id, csv_line.target) == (regulator.pk, "export:merchants.csv")
    assert csv_line.changes == {"filters": [None, {"district": "110108"}], "rows": [None, 1]}
    assert (xlsx_line.target, xlsx_line.changes["rows"]) == ("export:cards.xlsx", [None, 2])


def test_masks():
    assert exports.mask_phone("13812341234") == "138****1234"
    assert exports.mask_phone("") == "" and exports.mask_phone("1234") == "****"
    assert (
        exports.mask_name("张三") == "张*"
        and exports.mask_name("欧阳娜娜") == "欧***"
        and exports.mask_name("王") == "王*"
    )
    assert exports.yuan(80_050) == Decimal("800.50") and exports.yuan(-5) == Decimal("-0.05")


def test_the_pages_link_their_exports_with_their_filters_and_rows(regulator, city):
    from django.test import Client

    browser = Client()
    sign_in(browser, regulator)
    page = browser.get("/r/merchants/?district=110108&flagged=yes").content.decode()
    assert 'href="/api/v1/regulator/exports/merchants.csv?district=110108&amp;flagged=true"' in page
    assert 'href="/api/v1/regulator/exports/merchants.xlsx?district=110108&amp;flagged=true"' in page
    assert "导出 CSV" in page and "约 1 行" in page
    page = browser.get(f"/r/complaints/?merchant={city['gym'].pk}&state=open").content.decode()
    assert f"exports/complaints.csv?merchant={city['gym'].pk}&amp;state=open" in page and "约 1 行" in page
    page = browser.get("/r/refunds/").content.decode()
    assert "exports/refunds.csv?overdue=true" in page and 'data-rows="1"' in page
    page = browser.get("/r/ledger/").content.decode()
    assert 'action="/api/v1/regulator/exports/journal.csv"' in page and "全部日期：约" in page
    # the link works with the page's session, and its rows are the page's
    rows = rows_of(browser.get("/api/v1/regulator/exports/merchants.csv?district=110108&flagged=true"))
    assert [r[1] for r in rows[1:]] == ["培训学校"]


def test_an_xlsx_longer_than_a_sheet_goes_on_under_the_same_header(regulator, city, monkeypatch, tmp_path):
    from escrow.models import Posting

    monkeypatch.setattr(exports, "XLSX_SHEET_ROWS", 2)
    response = client_for(regulator).get("/api/v1/regulator/exports/journal.xlsx")
    path = tmp_path / "journal.xlsx"
    path.write_bytes(b"".join(response.streaming_content))
    book = load_workbook(path, read_only=True)
    postings = Posting.objects.count()
    assert len(book.worksheets) == (postings + 1) // 2
    assert book.sheetnames[:2] == ["资金流水", "资金流水（2）"]
    rows = [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
    headers = [row for row in rows if row[0] == "分录编号"]
    assert len(headers) == len(book.worksheets) and len(rows) - len(headers) == postings
