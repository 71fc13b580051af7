from celery import shared_task

from consumers import disputes, services, services_top_ups, services_transfers


@shared_task
def cards_activate_due_task() -> int:
    return services.cards_activate_due()


@shared_task
def redemptions_expire_due_task() -> int:
    return services.redemptions_expire_due()


@shared_task
def period_pass_accrue_task() -> int:
    return services.period_pass_accrue()


@shared_task
def cooling_off_ending_notify_task() -> int:
    return services.cooling_off_ending_notify()


@shared_task
def disputes_expire_due_task() -> int:
    return disputes.disputes_expire_due()


@shared_task
def card_transfers_expire_due_task() -> int:
    return services_transfers.card_transfers_expire_due()


@shared_task
def top_ups_settle_due_task() -> int:
    return services_top_ups.top_ups_settle_due()
