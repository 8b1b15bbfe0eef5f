"""The service's settings with the bare endpoints' URLs (bench/bare_urls.py); used by bench/bare_wsgi.py only."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
