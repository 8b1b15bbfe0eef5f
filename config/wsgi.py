"""WSGI entry point of the served process (`gunicorn config.wsgi`, and runserver through WSGI_APPLICATION).

Only a served process comes through here, never a test or a management command: it sets up tracing (when OTEL_*
variables ask for it) before Django builds its middleware, and on the embedded default, which has no beat, it runs
beat's periodic tasks on a thread (operations_app/scheduler.py).
"""

import os

from django.core.wsgi import get_wsgi_application

from observability import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

tracing.configure()  # before the middleware is built: the request spans come from a middleware
application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after setup)

if settings.EMBEDDED:
    from operations_app.scheduler import start_in_process_scheduler

    start_in_process_scheduler()
