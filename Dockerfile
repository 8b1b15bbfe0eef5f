# The service's one image: every process of docker-compose.yml runs it, each with its own command
# (docs/operations.md). Build: `docker build -t cqrs-orders .`
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- Dependencies, installed once into a virtualenv the runtime stage copies ------------------------------
FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/base.txt requirements/production.txt /tmp/requirements/
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/production.txt \
    && /opt/venv/bin/pip check

# --- Runtime: the code, its static files, a user without privileges --------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    DATA_DIR=/app/var \
    STATIC_ROOT=/app/static
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=dependencies /opt/venv /opt/venv
COPY . .
# Static files under hashed names, compressed, owned by root (the service only reads them). The key given here
# exists only for this command: the image holds no secret, and the service refuses to start without one.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only DATA_DIR=/tmp/build \
    python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build \
    && mkdir -p /app/var/metrics \
    && chown -R app:app /app/var
# The web workers and the Celery workers of a container (or of the containers sharing the volume mounted here)
# merge their Prometheus samples through this directory (config/metrics.py).
ENV PROMETHEUS_MULTIPROC_DIR=/app/var/metrics
USER 10001:10001
EXPOSE 8000
# Liveness of the web process (the default command). docker-compose.yml gives the workers and beat their own.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]
CMD ["gunicorn", "config.wsgi", "--config", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "2"]
