"""A mass refund's payments: with the local gateway a chunk of refunds is paid in one transaction,
each refund once, with its own bank row and its own ``refund_paid`` entry; a crash leaves the
whole chunk unpaid and the next delivery pays it; any other gateway pays them one by one."""

import os
import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from core import clock
from core.models import OutboxMessage
from core.outbox import TOPICS, outbox_deliver, outbox_deliver_many
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import city_wide_account
from merchants.services.settlement import PAYOUT_TOPIC
from payments.models import BankTransaction
from refunds.models import MassRefund, Refund
from refunds.services import REFUND_TOPIC, mass_refund_step
from tests.cards import builders
from tests.settlement.test_settlement_crash import ROOT, database_url

pytestmark = pytest.mark.django_db


def closing_merchant_with_cards(count: int, *, price: int = 10_000):
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=price, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(count)]
    now = clock.now()
    job = MassRefund.objects.create(
        merchant=gym, reason="merchant_closure", total=count, created_at=now, updated_at=now
    )
    return job, cards


def book(job) -> list[int]:
    """Run the job's chunks here (their delivery kicks are not run: no commit) and return the
    ids of the refund messages it wrote."""
    while mass_refund_step(job_id=job.pk):
        pass
    return list(OutboxMessage.objects.filter(topic=REFUND_TOPIC).order_by("pk").values_list("pk", flat=True))


def assert_each_refund_paid_once(cards):
    refunds = Refund.objects.filter(card__in=cards)
    assert refunds.count() == len(cards)
    for refund in refunds:
        assert refund.state == Refund.State.PAID and refund.paid_at is not None
        bank = BankTransaction.objects.get(reference=f"refund:refund:{refund.pk}")  # the message's key
        assert (bank.kind, bank.amount) == ("refund", -refund.amount)
        assert refund.external_id == f"local_re_{bank.pk}"
        entry = JournalEntry.objects.get(idempotency_key=f"refund-paid:{refund.pk}")
        assert entry.code == "refund_paid" and entry.memo == f"refund {refund.external_id}"
        merchant = refund.card.merchant  # paid from its own accounts, not the city-wide ones
        assert dict(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == {
            merchant.refund_payable_account_id: refund.amount,
            merchant.custody_account_id: -refund.amount,
        }
    assert BankTransaction.objects.filter(kind="refund").count() == len(cards)
    assert JournalEntry.objects.filter(code="refund_paid").count() == len(cards)
    assert not Account.objects.filter(kind=Account.Kind.REFUND_PAYABLE).exclude(balance=0).exists()
    assert city_wide_account(Account.Kind.CUSTODY).balance == 0  # nothing went through the city's
    assert ledger_ok(ledger_verify())


def test_a_chunk_of_refunds_is_paid_in_one_delivery_each_refund_once_with_its_own_entry():
    job, cards = closing_merchant_with_cards(6)
    ids = book(job)
    assert len(ids) == 6
    assert outbox_deliver_many(message_ids=ids) == 6
    assert set(OutboxMessage.objects.filter(pk__in=ids).values_list("state", "attempts")) == {("sent", 1)}
    assert_each_refund_paid_once(cards)

    assert outbox_deliver_many(message_ids=ids) == 0  # delivered again (a redelivered task): nothing moves
    assert_each_refund_paid_once(cards)


def test_paying_a_chunk_takes_as_many_statements_for_eight_refunds_as_for_two():
    def statements_to_pay(count: int) -> int:
        job, _ = closing_merchant_with_cards(count)
        ids = [i for i in book(job) if OutboxMessage.objects.get(pk=i).state == "pending"]
        with CaptureQueriesContext(connection) as queries:
            assert outbox_deliver_many(message_ids=ids) == count
        return len(queries)

    statements_to_pay(1)  # the first payment also opens its hash chain
    assert statements_to_pay(2) == statements_to_pay(8)


def test_a_refund_paid_on_its_own_before_its_chunk_is_not_paid_again():
    job, cards = closing_merchant_with_cards(4)
    ids = book(job)
    assert outbox_deliver(message_id=ids[0]) == "sent"  # one refund, the one-by-one way
    assert outbox_deliver_many(message_ids=ids) == 3
    assert_each_refund_paid_once(cards)


def test_a_refund_already_paid_while_its_message_waited_is_left_alone():
    job, cards = closing_merchant_with_cards(3)
    ids = book(job)
    refund_id = OutboxMessage.objects.get(pk=ids[0]).payload["refund_id"]
    assert outbox_deliver(message_id=ids[0]) == "sent"
    paid = Refund.objects.get(pk=refund_id)
    OutboxMessage.objects.filter(pk=ids[0]).update(state="pending")  # sent again, as a revived message is
    assert outbox_deliver_many(message_ids=ids) == 3
    again = Refund.objects.get(pk=refund_id)
    assert (again.external_id, again.paid_at) == (paid.external_id, paid.paid_at)
    assert_each_refund_paid_once(cards)


def test_refunds_and_payouts_are_paid_one_by_one_when_the_gateway_is_outside_the_database(settings):
    assert TOPICS[REFUND_TOPIC].batched and TOPICS[PAYOUT_TOPIC].batched
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_API_KEY = "sk_test_x"
    assert not TOPICS[REFUND_TOPIC].batched and not TOPICS[PAYOUT_TOPIC].batched


@pytest.mark.django_db(transaction=True)
def test_a_refund_payment_killed_after_the_bank_paid_leaves_its_chunk_unpaid_and_the_next_delivery_pays_each_once():
    job, cards = closing_merchant_with_cards(5)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1"}
    env.pop("FAULT_KILL_AT", None)
    connection.close()
    script = f"from refunds.services import mass_refund_step\nwhile mass_refund_step(job_id={job.pk}): pass\n"
    booked = subprocess.run(  # committed for real; its delivery kick goes to a broker nobody reads
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert booked.returncode == 0, booked.stderr[-2000:]
    ids = list(OutboxMessage.objects.filter(topic=REFUND_TOPIC).values_list("pk", flat=True))
    assert len(ids) == 5

    connection.close()
    script = f"from core.outbox import outbox_deliver_many\noutbox_deliver_many(message_ids={ids})\n"
    crashed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT, env={**env, "FAULT_KILL_AT": "refund.after_gateway"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert set(Refund.objects.values_list("state", flat=True)) == {"pending"}
    assert BankTransaction.objects.filter(kind="refund").count() == 0  # the bank's rows went with the transaction
    assert JournalEntry.objects.filter(code="refund_paid").count() == 0
    assert set(OutboxMessage.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"pending"}

    assert outbox_deliver_many(message_ids=ids) == 5
    assert_each_refund_paid_once(cards)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_booking_chunks_and_paying_them_at_once_in_two_threads_pays_each_card_once():
    job, cards = closing_merchant_with_cards(60)
    errors = []
    booked = threading.Event()

    def booking():
        try:  # each chunk's commit also pays it inline (eager tasks), racing the thread below
            while mass_refund_step(job_id=job.pk, chunk=7):
                pass
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            booked.set()
            connections.close_all()

    def paying():
        try:
            while True:
                done = booked.is_set()
                pending = list(
                    OutboxMessage.objects.filter(topic=REFUND_TOPIC, state="pending").values_list("pk", flat=True)
                )
                outbox_deliver_many(message_ids=pending)
                if done and not pending:
                    return
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=booking), threading.Thread(target=paying)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert MassRefund.objects.get(pk=job.pk).state == "done"
    assert_each_refund_paid_once(cards)
