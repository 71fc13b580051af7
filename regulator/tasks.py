from celery import shared_task


@shared_task(bulk=True)
def compute_risk_task(regulator_id: int | None = None) -> int:
    """The nightly risk run (beat), also queued on demand by a regulator: then of the merchants of
    its jurisdiction alone (a regulator of part of the city rescores its own merchants only)."""
    from regulator.selectors.jurisdiction import jurisdiction_of_actor
    from regulator.services.risk import compute_risk

    jurisdiction = jurisdiction_of_actor(regulator_id)
    if jurisdiction.city_wide:
        return compute_risk().merchants
    return compute_risk(merchant_ids=list(jurisdiction.merchants().values_list("pk", flat=True))).merchants
