"""End-to-end fixtures: the real Celery stack (see tests/stack.py)."""

from tests.stack import celery_stack, own_stack, stack_env

__all__ = ["celery_stack", "own_stack", "stack_env"]
