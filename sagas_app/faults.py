"""Where tests and benchmarks inject faults into the executor: hooks called right after a step's command answered.

Production installs none. The crash tests install one that SIGKILLs the worker at chosen steps
(tests/saga_faults.py, loaded by the worker they start). In a step that calls another system (the payment), the
kill then lands after the command committed and before the saga recorded its answer, the worst moment, when only
the idempotency key keeps the step from taking effect twice. In a local step (Step.local) it lands inside the
transaction that would commit both: neither is kept, and the step runs again from scratch.
"""

from collections.abc import Callable
from uuid import UUID

StepAnswered = Callable[[UUID, str, str], None]
"""Called with (saga id, step, direction)."""

_hooks: list[StepAnswered] = []


def install(hook: StepAnswered) -> None:
    _hooks.append(hook)


def uninstall(hook: StepAnswered) -> None:
    _hooks.remove(hook)


def step_answered(saga_id: UUID, step: str, direction: str) -> None:
    for hook in _hooks:
        hook(saga_id, step, direction)
