"""gunicorn entry point of the bare pipelines (`gunicorn bench.bare_wsgi -c config/gunicorn.py`), for benchmarks.

The service with bench/bare_urls.py's unguarded query endpoints, its command endpoints sending through the
bare mediator (bench/bare.py). Refused with DJANGO_SECURE on.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare_settings"

application = get_wsgi_application()

from bench.bare import process_bare_mediator, refuse_when_secure  # noqa: E402  (needs Django set up)
from commands_app import mediator  # noqa: E402

refuse_when_secure()
mediator.install(process_bare_mediator)
