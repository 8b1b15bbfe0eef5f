"""The broker's layout: one queue per kind of work, declared to suit the broker (RabbitMQ or Redis)."""

from kombu import Exchange, Queue

# One queue per kind of work, each with workers of its own (`celery -A config worker -Q NAME`), so a projection
# backlog never delays an order. Tasks are routed to them by name (CELERY_TASK_ROUTES in config/settings.py).
WORK_QUEUES = ("relay", "projections", "sagas", "webhooks", "celery")
DEFAULT_QUEUE = "celery"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def is_rabbitmq(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0] in AMQP_SCHEMES


def task_queues(broker_url: str) -> list[Queue]:
    """The work queues as this broker wants them declared.

    RabbitMQ: quorum queues (durable, replicated in a cluster, and they count redeliveries) bound to one topic
    exchange, which native delayed delivery needs: a countdown (a retry, a saga's next step) then waits in the
    broker, not in a worker's memory where a killed worker would lose it. Redis: a direct exchange per queue,
    which Celery sends to through the anonymous exchange, so a message needs no binding kept in Redis (a Redis
    restarted without its data would silently drop messages routed through bindings it no longer has).
    """
    if is_rabbitmq(broker_url):
        exchange = Exchange("tasks", type="topic", durable=True)
        return [
            Queue(name, exchange, routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"})
            for name in WORK_QUEUES
        ]
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in WORK_QUEUES]
