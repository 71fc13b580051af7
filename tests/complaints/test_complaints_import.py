"""Importing the 12345 hotline's CSV export: good rows become hotline complaints, each bad row is
reported with its file line and reason, nothing is imported twice, and the command's exit code tells
scripts whether everything went in."""

import io
import os
import subprocess
import sys
from datetime import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from complaints.errors import ComplaintImportFailed
from complaints.models import Complaint
from complaints.services import complaints_import_csv
from regulator.models import AuditEvent
from tests.cards import builders
from tests.complaints.complaints_builders import at
from tests.settlement.test_settlement_crash import ROOT, database_url

HEADER = "hotline_reference,received_at,merchant_license,category,description,urgent,card"
NOW = "2026-03-10 12:00 +0800"


@pytest.fixture
def shops():
    gym = builders.merchant(name="阳光健身")
    salon = builders.merchant(name="美丽沙龙", district="海淀区")
    gym_card = builders.paid_card(builders.session_pack(gym))
    salon_card = builders.paid_card(builders.session_pack(salon))
    return {"gym": gym, "salon": salon, "gym_card": gym_card, "salon_card": salon_card}


def export(shops) -> str:
    """Good rows on lines 2, 3, 11 and 13; a bad one on every other line, as the comments say."""
    gym, salon = shops["gym"].license_number, shops["salon"].license_number
    return "\n".join(
        [
            HEADER,  # 1
            f"WO-001,2026-03-08 09:30,{gym},closure,门店已关闭,是,",  # 2 naive: Beijing
            f"WO-002,2026-03-08T01:00:00Z,{salon},service_quality,染发失败,1,{shops['salon_card'].pk}",  # 3
            f"WO-003,2026-13-01 10:00,{gym},closure,bad date,0,",  # 4
            "WO-004,2026-03-08 10:00,91110000000000000X,closure,unknown merchant,0,",  # 5
            f"WO-005,2026-03-08 10:00,{gym},rude_staff,unknown category,0,",  # 6
            f"WO-006,2026-03-08 10:00,{gym},other,   ,0,",  # 7 empty description
            f"WO-001,2026-03-08 11:00,{gym},closure,same work order again,0,",  # 8 duplicate reference
            f"WO-007,2026-03-08 10:00,{gym},refund_refused,card of the salon,0,{shops['salon_card'].pk}",  # 9
            f"WO-008,2026-03-08 10:00,{gym},other,bad urgent flag,maybe,",  # 10
            f'WO-009,2026-03-09 08:00:00+08:00,{gym},refund_refused,"两行的\n描述",false,',  # 11-12
            "",  # 13: blank
            f"WO-010,2026-03-09 20:00,{salon},misleading_sales,good,,",  # 14
        ]
    )


BAD = {
    4: ["invalid_received_at"],
    5: ["unknown_merchant"],
    6: ["unknown_category"],
    7: ["empty_description"],
    8: ["duplicate_reference"],
    9: ["complaint_card_mismatch"],
    10: ["invalid_urgent"],
}


def write(tmp_path, text: str, *, bom: bool = False, name: str = "export.csv"):
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("bom", [False, True])
def test_good_rows_are_imported_and_each_bad_one_reported_with_its_line(shops, tmp_path, bom):
    path = write(tmp_path, export(shops), bom=bom)
    with at(NOW):
        report = complaints_import_csv(source=path)
    assert report.imported == 4
    assert {row.line: row.codes for row in report.refused} == BAD
    assert report.summary() == "imported 4, refused 7"

    got = {c.hotline_reference: c for c in Complaint.objects.all()}
    assert set(got) == {"WO-001", "WO-002", "WO-009", "WO-010"}
    assert all(c.source == "hotline" and c.state == "open" and c.consumer_id is None for c in got.values())
    first = got["WO-001"]  # naive time read as Beijing; 是 = urgent: 2 hours from the call
    assert first.created_at == datetime.fromisoformat("2026-03-08T09:30:00+08:00")
    assert first.respond_by == datetime.fromisoformat("2026-03-08T11:30:00+08:00")
    assert (first.urgent, first.merchant_id, first.description) == (True, shops["gym"].pk, "门店已关闭")
    second = got["WO-002"]
    assert second.card_id == shops["salon_card"].pk and second.urgent is True
    assert second.respond_by == datetime.fromisoformat("2026-03-08T03:00:00+00:00")
    assert got["WO-009"].description == "两行的\n描述" and got["WO-009"].urgent is False
    assert got["WO-009"].respond_by == datetime.fromisoformat("2026-03-11T08:00:00+08:00")
    assert got["WO-010"].urgent is False and got["WO-010"].merchant_id == shops["salon"].pk
    events = AuditEvent.objects.filter(verb="complaint_create")
    assert events.count() == 4 and {e.actor_label for e in events} == {"import_complaints"}


@pytest.mark.django_db
def test_a_reimport_imports_nothing_twice_and_reports_the_duplicates(shops, tmp_path):
    path = write(tmp_path, export(shops))
    with at(NOW):
        complaints_import_csv(source=path)
        again = complaints_import_csv(source=path)
    assert again.imported == 0
    duplicates = [row.line for row in again.refused if row.codes == ["duplicate_reference"]]
    assert duplicates == [2, 3, 8, 11, 14]
    assert again.duplicates == 5
    assert Complaint.objects.count() == 4


@pytest.mark.django_db
def test_an_uploaded_file_object_is_read_like_a_path(shops):
    data = ("\ufeff" + export(shops)).encode()
    with at(NOW):
        report = complaints_import_csv(source=io.BytesIO(data))
    assert report.imported == 4 and len(report.refused) == 7


@pytest.mark.django_db
def test_the_command_prints_the_bad_rows_and_a_summary_and_exits_1(shops, tmp_path):
    path = write(tmp_path, export(shops), bom=True)
    out = io.StringIO()
    with at(NOW), pytest.raises(CommandError, match="7") as failure:
        call_command("import_complaints", str(path), stdout=out)
    assert failure.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == "imported 4, refused 7"
    for line, codes in BAD.items():
        assert any(text.startswith(f"line {line} ") and codes[0] in text for text in lines), line
    assert "line 8 [WO-001]" in out.getvalue()
    assert Complaint.objects.count() == 4  # the good rows went in despite the exit status


@pytest.mark.django_db
def test_the_command_exits_0_when_every_row_goes_in(shops, tmp_path):
    gym = shops["gym"].license_number
    path = write(tmp_path, f"{HEADER}\nWO-100,2026-03-08 09:30,{gym},closure,关门了,,\n")
    out = io.StringIO()
    with at(NOW):
        call_command("import_complaints", str(path), stdout=out)
    assert out.getvalue().strip() == "imported 1, refused 0"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"reference,when,merchant\nWO-1,2026-03-08 09:30,x\n", "header|表头"),
        (b"hotline_reference,received_at,merchant_license,category,description,urgnet\n", "urgnet"),
        (b"", "header|表头"),
        (f"{HEADER}\nWO-1,2026-03-08 09:30,x,其他,坏,否,\n".encode("gbk"), "UTF-8"),
    ],
)
def test_an_unusable_file_imports_nothing_and_the_command_says_why(shops, tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ComplaintImportFailed):
        complaints_import_csv(source=path)
    with pytest.raises(CommandError, match=reason) as failure:
        call_command("import_complaints", str(path), stdout=io.StringIO())
    assert failure.value.returncode == 1 and "\n" not in str(failure.value)
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_is_a_one_line_failure(tmp_path):
    with pytest.raises(CommandError, match=r"nothing-here\.csv"):
        call_command("import_complaints", str(tmp_path / "nothing-here.csv"), stdout=io.StringIO())


@pytest.mark.django_db
def test_a_row_with_the_wrong_number_of_fields_is_refused_on_its_line(shops, tmp_path):
    gym = shops["gym"].license_number
    path = write(tmp_path, f"{HEADER}\nWO-1,2026-03-08 09:30,{gym},closure\nWO-2,2026-03-08 09:30,{gym},closure,x,0,\n")
    with at(NOW):
        report = complaints_import_csv(source=path)
    assert report.imported == 1 and [(r.line, r.codes) for r in report.refused] == [(2, ["wrong_field_count"])]


@pytest.mark.django_db
def test_a_call_received_in_the_future_is_refused(shops, tmp_path):
    gym = shops["gym"].license_number
    path = write(tmp_path, f"{HEADER}\nWO-1,2026-03-10 12:30,{gym},closure,x,0,\n")
    with at(NOW):
        report = complaints_import_csv(source=path)
    assert report.imported == 0 and report.refused[0].codes == ["invalid_received_at"]


@pytest.mark.django_db(transaction=True)
def test_manage_py_import_complaints_exits_1_after_importing_the_good_rows(shops, tmp_path):
    path = write(tmp_path, export(shops), bom=True)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1", "CELERY_TASK_ALWAYS_EAGER": "1"}
    from django.db import connection

    connection.close()  # let the subprocess have the (SQLite) database to itself
    run = subprocess.run(
        [sys.executable, "manage.py", "import_complaints", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.stdout.splitlines()[-1] == "imported 4, refused 7"
    assert "line 10 [WO-008]: invalid_urgent" in run.stdout
    assert run.stderr.strip().count("\n") == 0 and "7" in run.stderr
    assert Complaint.objects.count() == 4
