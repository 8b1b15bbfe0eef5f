"""gunicorn's settings for production, docker-compose and the benches: `gunicorn config.wsgi -c config/gunicorn.py`.

A request spends much of its time waiting on PostgreSQL and Redis. Threaded workers serve another request
meanwhile (sync workers sit idle), and keep the client's connection open between requests instead of a TCP
handshake each time. On the 2-core bench machine, with the same 4 workers, GET /api/customers/<id> went from
~130-170/s (sync) to ~450-590/s (this), and /livez from ~1,200-1,600/s to ~3,000-5,000/s. Give --workers on
the command line, about 2 per core; each thread holds its own database connection (workers x threads in all).

The worker is gthread's, answering the requests gunicorn refuses itself as problem documents
(config/gunicorn_worker.py). Its request-line limit is gunicorn's largest, so the API's own URL limit
(API_MAX_URL_BYTES, 4 KiB) answers first, with the same 414 problem.
"""

worker_class = "config.gunicorn_worker.ProblemThreadWorker"
threads = 2
keepalive = 5
limit_request_line = 8190
