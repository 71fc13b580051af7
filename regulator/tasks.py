from celery import shared_task


@shared_task(bulk=True)
def compute_risk_task() -> int:
    """The nightly risk run (beat), also queued on demand by the regulator."""
    from regulator.services.risk import compute_risk

    return compute_risk().merchants
