"""Aggregates: plain Python objects with a version and pending events; no Django, DRF or Celery."""
