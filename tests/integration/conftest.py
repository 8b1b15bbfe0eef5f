"""Integration fixtures: the real Celery stack (see tests/stack.py)."""

from tests.stack import celery_stack, own_stack, quiet_stack_before_flush, stack_env

__all__ = ["celery_stack", "own_stack", "quiet_stack_before_flush", "stack_env"]
