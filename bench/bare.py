"""Bench-only entry points: the pipelines without their middlewares, to measure what those cost.

Never for production: the bare command pipeline has no authorization and no idempotency, and the bare query
endpoints no authentication, scope check or rate limit. Production code has no switch for them: bench/ builds
them here (in-process: bare_mediator(); over HTTP: gunicorn bench.bare_wsgi), each refusing to run with
DJANGO_SECURE on, and the image ships no bench/.
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from commands_app.bootstrap import build_result_mapper
from commands_app.mediator import Mediator


def refuse_when_secure() -> None:
    if settings.SECURE:
        raise ImproperlyConfigured(
            "The bare pipelines are for benchmarks only (no authentication, authorization or idempotency): "
            "refused with DJANGO_SECURE on."
        )


def bare_mediator() -> Mediator:
    """The result mapper alone around the handlers: the pipeline's middlewares left out."""
    refuse_when_secure()
    return Mediator(middlewares=[], innermost=build_result_mapper())


process_bare_mediator = cache(bare_mediator)
