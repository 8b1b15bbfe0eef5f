"""Settings, read from the environment with django-environ.

With no environment set, the service runs on the embedded default: a SQLite file under var/, Celery tasks
executed in-process right after commit (with beat's periodic tasks on a scheduler thread of the served
process), and an in-process cache. Setting DATABASE_URL, REDIS_URL and CELERY_BROKER_URL moves it onto
PostgreSQL, Redis and real Celery workers and beat: the production configuration, which refuses to start
without DJANGO_SECRET_KEY.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import broker
from config.broker import is_rabbitmq
from config.logging import configure_logging
from config.metrics import use_host_qualified_process_ids
from config.secrets import embedded_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Where the embedded default keeps its SQLite file and its generated secret key, and beat its schedule.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
# The production configuration is the one with a database server: the embedded default has none.
EMBEDDED_DATABASE = not env.str("DATABASE_URL", default="")

# The key signs admin sessions, CSRF tokens and consistency tokens. In production it comes from the environment
# or the service does not start; the embedded default generates one on first start and keeps it under DATA_DIR,
# readable by its owner only.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not EMBEDDED_DATABASE:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. DATABASE_URL is set (the production configuration), so the service "
            "refuses to start without a secret key of its own: set DJANGO_SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))') and keep it secret."
        )
    SECRET_KEY = embedded_secret_key(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api_common",
    "outbox_app",
    "commands_app",
    "queries_app",
    "sagas_app",
    # After commands_app, whose event types (outbox_app.catalog) it subscribes to.
    "webhooks_app",
    "operations_app",
]

MIDDLEWARE = [
    "api_common.correlation.CorrelationIdMiddleware",
    "api_common.limits.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), compressed and cached for good: no other server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Security: on in production (DJANGO_SECURE=true, behind a TLS-terminating proxy) -----------------
SECURE = env.bool("DJANGO_SECURE", default=False)
if SECURE:
    if "DJANGO_SECRET_KEY" not in env.ENVIRON:
        raise ImproperlyConfigured("DJANGO_SECURE is on: set DJANGO_SECRET_KEY in the environment.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE transactions take the write lock up front, so concurrent writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database host that does not answer fails a connection in seconds (503 DATABASE_UNAVAILABLE), not minutes.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=3)
# Optional read replica: read-side queries go there outside transactions (queries_app.routers).
REPLICA_DATABASE_URL = env.str("REPLICA_DATABASE_URL", default="")
# Each process looks at the replica this often; a replica that does not answer, or replays more than this far
# behind the primary, serves no reads until the next look (they go to the primary).
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=1.0)
REPLICA_MAX_DELAY_SECONDS = env.float("REPLICA_MAX_DELAY_SECONDS", default=30.0)
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = env.db_url_config(REPLICA_DATABASE_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("REPLICA_CONNECT_TIMEOUT", default=2)
    DATABASE_ROUTERS = ["queries_app.routers.ReadReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                # A Redis outage degrades the cache to misses instead of failing requests, and fast:
                # redis-py's default retries with backoff would stall every request for seconds.
                "IGNORE_EXCEPTIONS": True,
                "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: the broker, queues by kind of work, at-least-once delivery -----------------------------
# RabbitMQ in production (amqp://...): durable quorum queues, publisher confirms, heartbeats; a dead consumer's
# unacknowledged messages come back at once. Redis (redis://...) is supported for small setups, with the limits
# in docs/scaling.md (a lost worker's messages come back after the visibility timeout).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
EMBEDDED = not CELERY_BROKER_URL
if EMBEDDED:
    # No broker: tasks run in-process, right after the transaction that queued them commits.
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
BROKER_IS_RABBITMQ = is_rabbitmq(CELERY_BROKER_URL)
# Queues by kind of work (config/broker.py), tasks routed to them by name: a new task adds its route here (an
# unrouted task goes to `celery`, the maintenance queue). `webhooks` is for the webhook deliveries.
WORK_QUEUES = broker.WORK_QUEUES
CELERY_TASK_QUEUES = broker.task_queues(CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = broker.DEFAULT_QUEUE
CELERY_TASK_ROUTES = {
    "outbox_app.relay_outbox": {"queue": "relay"},
    "queries_app.project_events": {"queue": "projections"},
    "queries_app.measure_projection_lag": {"queue": "projections"},
    "queries_app.redeliver_unapplied_events": {"queue": "projections"},
    "sagas_app.handle_events": {"queue": "sagas"},
    "sagas_app.advance_saga": {"queue": "sagas"},
    "sagas_app.advance_sagas": {"queue": "sagas"},
    "sagas_app.tick_sagas": {"queue": "sagas"},
    "sagas_app.start_missed_sagas": {"queue": "sagas"},
    # Webhook deliveries never wait behind, or hold back, the relay, projections or sagas.
    "webhooks_app.fan_out_events": {"queue": "webhooks"},
    "webhooks_app.deliver_webhook": {"queue": "webhooks"},
    "webhooks_app.dispatch_due_deliveries": {"queue": "webhooks"},
    "webhooks_app.fan_out_missed_events": {"queue": "webhooks"},
    "commands_app.prune_idempotency_records": {"queue": "celery"},
    "outbox_app.archive_published_events": {"queue": "celery"},
    "queries_app.prune_inbox": {"queue": "celery"},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A worker never gives up on the broker: it reconnects for as long as the broker is away (Celery's default stops
# after 100 attempts, about an hour), at startup as after a loss.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# RabbitMQ: heartbeats every few seconds find a dead connection (a broker host gone without a reset) in ~20 s
# instead of Celery's default 120 s; the broker then requeues the consumer's unacknowledged messages.
CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=10)
# On a lost connection, tasks still running cannot acknowledge their message and the broker delivers it again.
# Let them finish (Celery 5's default, set here on purpose): the effect lands now, and the second delivery is a
# duplicate the consumers' dedupe turns into a no-op. Cancelling them would postpone the effect to the
# redelivery, which on Redis comes only after the visibility timeout.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Redis broker: an unacknowledged message returns to the queue after this many seconds. It must exceed the
# longest countdown plus the longest run time (SAGA_RETRY_MAX_SECONDS 60 + CELERY_TASK_TIME_LIMIT 60), or a
# slow task would be delivered twice; and it is how long a killed worker's message stays away (the chaos run
# found 300 s parked every later event of a busy aggregate for minutes). RabbitMQ has no such delay.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=130)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # RabbitMQ: a publish returns once the broker has stored the message (publisher confirms).
    "confirm_publish": True,
    # Redis: a broker that refuses or stops answering fails a publish in seconds instead of hanging it.
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# A task queued with apply_async (a saga's next run, for example) gives up fast when the broker is down:
# beat's periodic ticks find the same work again, so nothing is lost by not retrying longer here.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=50)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Beat runs this scheduler: Celery's own, recording a heartbeat in the database every BEAT_HEARTBEAT_SECONDS. The
# status document, the metrics and the admin call beat dead when its last heartbeat is two periods old.
CELERY_BEAT_SCHEDULER = "operations_app.scheduler:HeartbeatScheduler"
BEAT_HEARTBEAT_SECONDS = env.float("BEAT_HEARTBEAT_SECONDS", default=5.0)

# --- Outbox relay ---------------------------------------------------------------------------------
OUTBOX_RELAY_INTERVAL = env.float("OUTBOX_RELAY_INTERVAL", default=1.0)
# Commits less than this many seconds after the process's last relay nudge share the next one (outbox.Nudger).
OUTBOX_NUDGE_MIN_INTERVAL = env.float("OUTBOX_NUDGE_MIN_INTERVAL", default=0.005)
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=500)
# While events arrive faster than OUTBOX_RELAY_PACED_ABOVE per second, the relay waits OUTBOX_RELAY_GAP seconds
# before each run, so that many commits' events go in one batch; below it, a run starts at once (outbox_app/pacing.py).
OUTBOX_RELAY_GAP = env.float("OUTBOX_RELAY_GAP", default=0.05)
OUTBOX_RELAY_PACED_ABOVE = env.float("OUTBOX_RELAY_PACED_ABOVE", default=120.0)
# A process that commits events in a `one_relay()` block (a saga run, an HTTP request) after this many seconds
# without one relays them itself when the block ends, instead of nudging the relay worker: one hop less at low
# rates. A busier one, or any while all relays together publish more than OUTBOX_RELAY_PACED_ABOVE events/s,
# nudges, and the relay worker batches its events with the others' (outbox_app/outbox.py). 0: always nudge.
OUTBOX_RELAY_HERE_AFTER_IDLE = env.float("OUTBOX_RELAY_HERE_AFTER_IDLE", default=0.05)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
OUTBOX_BACKOFF_BASE_SECONDS = env.float("OUTBOX_BACKOFF_BASE_SECONDS", default=1.0)
OUTBOX_BACKOFF_MAX_SECONDS = env.float("OUTBOX_BACKOFF_MAX_SECONDS", default=300.0)
# A batch the broker's outage failed is due again after this (a flat delay: no backoff for what is no event's fault).
OUTBOX_OUTAGE_RETRY_SECONDS = env.float("OUTBOX_OUTAGE_RETRY_SECONDS", default=1.0)
# Retention of published events in the hot outbox: older ones move to the archive, hourly (docs/outbox.md,
# "Retention and the archive"). They stay in the event log; the safety nets that read only the outbox (the
# projections' redelivery, the sagas' reconciliation, the lag) look back minutes, far inside this.
OUTBOX_ARCHIVE_AFTER_DAYS = env.float("OUTBOX_ARCHIVE_AFTER_DAYS", default=7.0)

CELERY_BEAT_SCHEDULE = {
    # A relay run that waited longer than a few ticks (workers down) is dropped: the next tick does its work.
    "relay-outbox": {
        "task": "outbox_app.relay_outbox",
        "schedule": OUTBOX_RELAY_INTERVAL,
        "options": {"expires": max(5 * OUTBOX_RELAY_INTERVAL, 5.0)},
    },
    "prune-idempotency-records": {"task": "commands_app.prune_idempotency_records", "schedule": 3600.0},
    "archive-published-events": {"task": "outbox_app.archive_published_events", "schedule": 3600.0},
}

# --- Projections ----------------------------------------------------------------------------------
# Beat measures every projection's lag this often; the status document calls a measurement older than two of
# these periods stale (its projection's lag "unknown").
PROJECTION_LAG_INTERVAL = env.float("PROJECTION_LAG_INTERVAL", default=15.0)
CELERY_BEAT_SCHEDULE["measure-projection-lag"] = {
    "task": "queries_app.measure_projection_lag",
    "schedule": PROJECTION_LAG_INTERVAL,
    "options": {"expires": max(PROJECTION_LAG_INTERVAL - 1.0, 1.0)},
}
PROJECTION_GAP_RETRY_SECONDS = env.float("PROJECTION_GAP_RETRY_SECONDS", default=0.2)
PROJECTION_MAX_ATTEMPTS = env.int("PROJECTION_MAX_ATTEMPTS", default=50)
# A published event a projection has not applied this long after publication was lost on the way (a killed
# worker's countdown retry, a broker that dropped it): beat feeds it again from the event log
# (queries_app/redelivery.py). Longer than the task's own retries (MAX_ATTEMPTS x GAP_RETRY_SECONDS).
PROJECTION_REDELIVER_AFTER_SECONDS = env.float("PROJECTION_REDELIVER_AFTER_SECONDS", default=60.0)
PROJECTION_REDELIVER_INTERVAL = env.float("PROJECTION_REDELIVER_INTERVAL", default=30.0)
PROJECTION_REDELIVER_BATCH_SIZE = env.int("PROJECTION_REDELIVER_BATCH_SIZE", default=1000)
CELERY_BEAT_SCHEDULE["redeliver-unapplied-events"] = {
    "task": "queries_app.redeliver_unapplied_events",
    "schedule": PROJECTION_REDELIVER_INTERVAL,
    "options": {"expires": PROJECTION_REDELIVER_INTERVAL},
}
# The inbox keeps a window of entries; the positions make older duplicates harmless (docs/read-models.md, "The
# inbox's window"). Well past every redelivery: the broker's, the task's retries, the log's redelivery.
PROJECTION_INBOX_WINDOW_SECONDS = env.float("PROJECTION_INBOX_WINDOW_SECONDS", default=24 * 3600.0)
if PROJECTION_INBOX_WINDOW_SECONDS <= PROJECTION_REDELIVER_AFTER_SECONDS:
    raise ImproperlyConfigured("PROJECTION_INBOX_WINDOW_SECONDS must exceed PROJECTION_REDELIVER_AFTER_SECONDS.")
CELERY_BEAT_SCHEDULE["prune-inbox"] = {"task": "queries_app.prune_inbox", "schedule": 3600.0}

# --- Webhooks and the event feed (docs/webhooks.md) -----------------------------------------------
# Private, loopback and link-local addresses (and plain http) for endpoints: tests and private deployments only.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# Connecting, and then each wait for the receiver's answer; the task's time limits bound the whole attempt.
WEBHOOKS_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOKS_CONNECT_TIMEOUT_SECONDS", default=3.0)
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# Certificates trusted for https endpoints: the system's store, or this bundle (a private CA, the tests' own).
WEBHOOKS_CA_BUNDLE = env.str("WEBHOOKS_CA_BUNDLE", default="")
# Retries: WEBHOOKS_RETRY_BASE_SECONDS after the first failure, doubling, at most WEBHOOKS_RETRY_MAX_INTERVAL_SECONDS
# apart, for WEBHOOKS_RETRY_FOR_SECONDS after the event (5 s, 10 s, 20 s ... 6 h: about 25 attempts in 3 days).
WEBHOOKS_RETRY_BASE_SECONDS = env.float("WEBHOOKS_RETRY_BASE_SECONDS", default=5.0)
WEBHOOKS_RETRY_MAX_INTERVAL_SECONDS = env.float("WEBHOOKS_RETRY_MAX_INTERVAL_SECONDS", default=6 * 3600.0)
WEBHOOKS_RETRY_FOR_SECONDS = env.float("WEBHOOKS_RETRY_FOR_SECONDS", default=3 * 24 * 3600.0)
# An endpoint whose every attempt failed for this long is disabled (its client enables it again).
WEBHOOKS_DISABLE_AFTER_SECONDS = env.float("WEBHOOKS_DISABLE_AFTER_SECONDS", default=5 * 24 * 3600.0)
# How long a handed-out delivery is reserved for its attempt; a killed worker's delivery is attempted again after it.
WEBHOOKS_LEASE_SECONDS = env.float("WEBHOOKS_LEASE_SECONDS", default=60.0)
if WEBHOOKS_LEASE_SECONDS <= WEBHOOKS_TIMEOUT_SECONDS + 10:
    raise ImproperlyConfigured("WEBHOOKS_LEASE_SECONDS must exceed WEBHOOKS_TIMEOUT_SECONDS + 10 (the task's limit).")
WEBHOOKS_DISPATCH_INTERVAL = env.float("WEBHOOKS_DISPATCH_INTERVAL", default=1.0)
# The safety net re-reads the log for events published this long ago whose fan-out the bus may have lost.
WEBHOOKS_RECONCILE_INTERVAL = env.float("WEBHOOKS_RECONCILE_INTERVAL", default=30.0)
WEBHOOKS_RECONCILE_AFTER_SECONDS = env.float("WEBHOOKS_RECONCILE_AFTER_SECONDS", default=30.0)
WEBHOOKS_RESPONSE_EXCERPT_BYTES = env.int("WEBHOOKS_RESPONSE_EXCERPT_BYTES", default=1024)
WEBHOOKS_MAX_ENDPOINTS_PER_CLIENT = env.int("WEBHOOKS_MAX_ENDPOINTS_PER_CLIENT", default=20)
# After a rotation, deliveries are signed with the old secret too for this long, unless the client says otherwise.
WEBHOOKS_SECRET_OVERLAP_SECONDS = env.int("WEBHOOKS_SECRET_OVERLAP_SECONDS", default=24 * 3600)
WEBHOOKS_RETENTION_DAYS = env.float("WEBHOOKS_RETENTION_DAYS", default=30.0)
CELERY_BEAT_SCHEDULE["dispatch-due-webhook-deliveries"] = {
    "task": "webhooks_app.dispatch_due_deliveries",
    "schedule": WEBHOOKS_DISPATCH_INTERVAL,
    "options": {"expires": max(5 * WEBHOOKS_DISPATCH_INTERVAL, 5.0)},
}
CELERY_BEAT_SCHEDULE["fan-out-missed-webhook-events"] = {
    "task": "webhooks_app.fan_out_missed_events",
    "schedule": WEBHOOKS_RECONCILE_INTERVAL,
    "options": {"expires": WEBHOOKS_RECONCILE_INTERVAL},
}
CELERY_BEAT_SCHEDULE["prune-webhook-deliveries"] = {"task": "webhooks_app.prune_deliveries", "schedule": 24 * 3600.0}

# --- Queries --------------------------------------------------------------------------------------
# How long a query carrying X-Consistency-Token waits for the read model before answering 503.
CONSISTENCY_WAIT_SECONDS = env.float("CONSISTENCY_WAIT_SECONDS", default=2.0)
# PostgreSQL: such a wait (and a STRONG read's) sleeps on the projection's notifications (LISTEN/NOTIFY, sent by
# each apply's commit) and answers as soon as the projection has caught up, instead of polling. Off for a
# connection pooler in transaction mode (PgBouncer's), where LISTEN does not work: the waits then poll.
CONSISTENCY_WAIT_LISTENS = env.bool("CONSISTENCY_WAIT_LISTENS", default=True)
# Time to live of the cached HIGHLY_EVENTUAL answers (product detail, best sellers).
QUERY_CACHE_SECONDS = env.int("QUERY_CACHE_SECONDS", default=30)

# --- Health (docs/operations.md) ------------------------------------------------------------------
# /readyz checks only what this process needs to serve (database and cache). The status document (/healthz,
# `manage.py status`) fails beyond these limits: the oldest event waiting for the relay, a projection's lag, and a
# saga due this long ago that nothing resumed.
HEALTH_MAX_OUTBOX_AGE_SECONDS = env.float("HEALTH_MAX_OUTBOX_AGE_SECONDS", default=60.0)
HEALTH_MAX_PROJECTION_LAG_SECONDS = env.float("HEALTH_MAX_PROJECTION_LAG_SECONDS", default=60.0)
HEALTH_MAX_SAGA_DELAY_SECONDS = env.float("HEALTH_MAX_SAGA_DELAY_SECONDS", default=60.0)

# --- Commands -------------------------------------------------------------------------------------
IDEMPOTENCY_WINDOW_SECONDS = env.int("IDEMPOTENCY_WINDOW_SECONDS", default=24 * 3600)
IDEMPOTENCY_CLAIM_SECONDS = env.int("IDEMPOTENCY_CLAIM_SECONDS", default=30)
# --- Sagas and the payment provider (see docs/sagas.md) ---------------------------------------------
# How long the fulfilment saga's steps may take before it compensates (sagas_app/fulfilment.py): reserving the
# inventory (reason insufficient_stock) and authorizing the payment (reason payment_timeout).
SAGA_RESERVE_TIMEOUT_SECONDS = env.float("SAGA_RESERVE_TIMEOUT_SECONDS", default=300.0)
SAGA_PAYMENT_TIMEOUT_SECONDS = env.float("SAGA_PAYMENT_TIMEOUT_SECONDS", default=600.0)
# An executor's claim on a saga, renewed before each step; it must outlast the longest step (the provider
# timeout). A worker that dies mid-step loses it when it expires, and beat resumes the saga.
SAGA_LEASE_SECONDS = env.float("SAGA_LEASE_SECONDS", default=30.0)
SAGA_TICK_INTERVAL = env.float("SAGA_TICK_INTERVAL", default=1.0)
SAGA_RETRY_BASE_SECONDS = env.float("SAGA_RETRY_BASE_SECONDS", default=1.0)
SAGA_RETRY_MAX_SECONDS = env.float("SAGA_RETRY_MAX_SECONDS", default=60.0)
# A step without a deadline, or a compensation, that failed this many times leaves the saga failed.
SAGA_MAX_ATTEMPTS = env.int("SAGA_MAX_ATTEMPTS", default=10)
PAYMENT_PROVIDER_TIMEOUT_SECONDS = env.float("PAYMENT_PROVIDER_TIMEOUT_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE["tick-sagas"] = {
    "task": "sagas_app.tick_sagas",
    "schedule": SAGA_TICK_INTERVAL,
    # A tick that waited this long is stale: the next one does its work.
    "options": {"expires": max(5 * SAGA_TICK_INTERVAL, 5.0)},
}
# Orders whose OrderPlaced delivery was lost get their saga from the event log (sagas_app/reconcile.py).
SAGA_RECONCILE_INTERVAL = env.float("SAGA_RECONCILE_INTERVAL", default=30.0)
SAGA_RECONCILE_AFTER_SECONDS = env.float("SAGA_RECONCILE_AFTER_SECONDS", default=60.0)
SAGA_RECONCILE_OVERLAP_SECONDS = env.float("SAGA_RECONCILE_OVERLAP_SECONDS", default=60.0)
SAGA_RECONCILE_WINDOW_SECONDS = env.float("SAGA_RECONCILE_WINDOW_SECONDS", default=24 * 3600.0)
CELERY_BEAT_SCHEDULE["start-missed-sagas"] = {
    "task": "sagas_app.start_missed_sagas",
    "schedule": SAGA_RECONCILE_INTERVAL,
    "options": {"expires": SAGA_RECONCILE_INTERVAL},
}

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api_common.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api_common.permissions.IsApiClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api_common.limits.DepthLimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api_common.throttling.ClientRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api_common.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Each process keeps authenticated API clients this long (seconds; 0 turns the cache off). A revoked or rotated
# token is refused at once where the change reaches the process through the cache (Redis), else within this
# bound (docs/security.md).
API_CLIENT_CACHE_SECONDS = env.float("API_CLIENT_CACHE_SECONDS", default=5.0)
API_CLIENT_CACHE_SIZE = env.int("API_CLIENT_CACHE_SIZE", default=10_000)
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=1200)
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=256 * 1024)
# Path and query string, percent-encoded as sent: 414 past it. Below gunicorn's request-line limit (8190).
API_MAX_URL_BYTES = env.int("API_MAX_URL_BYTES", default=4096)
API_MAX_HEADER_BYTES = env.int("API_MAX_HEADER_BYTES", default=8 * 1024)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=20)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
SPECTACULAR_SETTINGS = {
    "TITLE": "Order fulfilment CQRS service",
    "DESCRIPTION": (
        "Commands under /api/commands/, queries under /api/. Errors are RFC 9457 problem details. What happened: the "
        "event feed (`GET /api/events`) and signed webhooks (`/api/webhook-endpoints`); every published event and its "
        "payload is in the [AsyncAPI document](/api/asyncapi.yaml)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name (status) each keep a name of their own.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "queries_app.models.OrderReadModel.Status",
        "WebhookEndpointStatusEnum": ["enabled", "disabled"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api_common.schema.forbid_unknown_input_fields",
        "api_common.schema.place_links",
    ],
}

# --- Static files, i18n, auth ---------------------------------------------------------------------
# `manage.py collectstatic` writes every app's files to STATIC_ROOT under hashed names (the image does it at
# build time, `make run` before serving), with gzip copies beside them; WhiteNoise serves them with a
# one-year cache lifetime, since a changed file gets a new name. Templates ask the manifest for those names,
# so pages that link static files fail until collectstatic has run.
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING_CONFIG = None
configure_logging(LOG_LEVEL)
# With PROMETHEUS_MULTIPROC_DIR set, this host's processes share their samples through files (config/metrics.py).
use_host_qualified_process_ids()
