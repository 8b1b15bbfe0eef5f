"""System checks: a lease shorter than the longest step would let a second executor start while the first runs."""

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register()
def lease_outlasts_the_longest_step(**kwargs: Any) -> list[checks.CheckMessage]:
    if settings.SAGA_LEASE_SECONDS > settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS + 1:
        return []
    return [
        checks.Warning(
            "SAGA_LEASE_SECONDS should exceed PAYMENT_PROVIDER_TIMEOUT_SECONDS by a margin.",
            hint="A payment step may outlive its lease, and another executor would run the saga concurrently.",
            id="sagas.W001",
        )
    ]
