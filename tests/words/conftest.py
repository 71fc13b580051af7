import pytest
import time_machine

from complaints.services import complaint_file
from regulator.services.audit import audit_record
from regulator.services.risk import compute_risk
from tests.security.world import NOW, build_world


@pytest.fixture
def world(db):
    """The city of tests/security/world.py, with the clock frozen at its ``NOW``."""
    with time_machine.travel(NOW, tick=False):
        yield build_world()


@pytest.fixture
def busy_world(world):
    """The city with what a regulator's week adds: risk assessments (so charts and histories have
    dates), a hotline complaint and a job's automatic flag in the audit log."""
    with time_machine.travel("2026-03-03 09:00 +0800", tick=False):
        compute_risk()
    compute_risk()
    complaint_file(
        actor=world.users["regulator"],
        merchant_id=world.merchant.pk,
        category="refund_refused",
        description="门店拒绝退款",
        source="hotline",
        urgent=True,
        hotline_reference="BJ12345-0001",
    )
    audit_record(
        verb="risk_auto_flag",
        actor_id=None,
        merchant_id=world.other_merchant.pk,
        target=f"merchant:{world.other_merchant.pk}",
        reason="risk score 87 ≥ 60",
        changes={"flagged": [False, True], "risk_warning": [None, "该商户风险较高"]},
    )
    return world
