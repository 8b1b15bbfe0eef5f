"""Health endpoints for orchestrators and monitoring (docs/operations.md).

- /livez: the process answers (liveness: restart it when this fails).
- /readyz: this process can serve: its database and cache answer (readiness: route traffic to it while this
  passes). Nothing else: a broker outage must not take web processes out of rotation, since commands are still
  accepted (their events wait in the outbox), and projection lag is the read side's, not this process's.
- /healthz: the status document of the whole service (operations_app/status.py), 503 unless every check is ok:
  for monitoring and for people, not for routing.
"""

from django.http import HttpRequest, JsonResponse

from operations_app import status


def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    return _answer(status.run(status.READINESS))


def healthz(request: HttpRequest) -> JsonResponse:
    return _answer(status.run())


def _answer(document: dict) -> JsonResponse:
    return JsonResponse(document, status=200 if document["status"] == status.OK else 503)
