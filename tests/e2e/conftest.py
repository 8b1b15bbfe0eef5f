"""End-to-end fixtures: the real Celery stack and gunicorn on the production profile (see tests/stack.py)."""

from tests.stack import celery_stack, own_stack, production_env, production_web, quiet_stack_before_flush, stack_env

__all__ = ["celery_stack", "own_stack", "production_env", "production_web", "quiet_stack_before_flush", "stack_env"]
