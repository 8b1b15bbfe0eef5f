"""Subscribers by event type: consuming apps register Celery task names in their AppConfig.ready().

The relay sends to task names only, so the outbox knows no consumer by import.
"""

from collections import defaultdict

_subscribers: dict[str, list[str]] = defaultdict(list)


def subscribe(event_type: str, task_name: str) -> None:
    if task_name not in _subscribers[event_type]:
        _subscribers[event_type].append(task_name)


def unsubscribe(event_type: str, task_name: str) -> None:
    if task_name in _subscribers.get(event_type, ()):
        _subscribers[event_type].remove(task_name)


def subscribers_for(event_type: str) -> list[str]:
    return list(_subscribers.get(event_type, ()))


def subscriptions() -> dict[str, list[str]]:
    return {event_type: list(tasks) for event_type, tasks in _subscribers.items()}
