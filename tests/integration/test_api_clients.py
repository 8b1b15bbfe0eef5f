"""API clients cached per process: a revoked or rotated token is refused at once everywhere, or within the TTL."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from api_common import authentication
from api_common.models import ApiClient

pytestmark = pytest.mark.django_db
URL = "/api/customers"
QUERY = {"email": "a@b.co"}


@pytest.fixture(autouse=True)
def empty_client_cache():
    authentication.clients.clear()
    yield
    authentication.clients.clear()


def revoke_elsewhere(client: ApiClient) -> None:
    """What another process's revoke looks like from here: the row changes, then the generation moves."""
    ApiClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())
    authentication._move_generation()


def test_a_client_revoked_by_another_process_is_refused_on_its_next_request(make_api_client):
    # given
    reader = make_api_client("read")
    assert reader.get(URL, QUERY).status_code == 200

    # when
    revoke_elsewhere(reader.api_client)

    # then
    assert reader.get(URL, QUERY).status_code == 401


def test_without_the_generation_a_cached_client_lives_until_its_ttl(make_api_client, settings, monkeypatch):
    # given: a change that never reached this process (Redis unreachable at the time, say)
    clock = [1000.0]
    monkeypatch.setattr(authentication.clients, "clock", lambda: clock[0])
    settings.API_CLIENT_CACHE_SECONDS = 5
    reader = make_api_client("read")
    assert reader.get(URL, QUERY).status_code == 200
    ApiClient.objects.filter(pk=reader.api_client.pk).update(revoked_at=timezone.now())

    # when / then: the cached answer within the TTL, refused after it
    clock[0] += 4.9
    assert reader.get(URL, QUERY).status_code == 200
    clock[0] += 0.2
    assert reader.get(URL, QUERY).status_code == 401


def test_with_the_cache_off_every_request_reads_the_client(make_api_client, settings):
    # given
    settings.API_CLIENT_CACHE_SECONDS = 0
    reader = make_api_client("read")
    assert reader.get(URL, QUERY).status_code == 200

    # when
    ApiClient.objects.filter(pk=reader.api_client.pk).update(revoked_at=timezone.now())

    # then
    assert reader.get(URL, QUERY).status_code == 401


def test_revoke_api_client_refuses_the_token_at_once(make_api_client, django_capture_on_commit_callbacks):
    # given
    reader = make_api_client("read", name="to-revoke")
    assert reader.get(URL, QUERY).status_code == 200

    # when
    with django_capture_on_commit_callbacks(execute=True):
        call_command("revoke_api_client", "to-revoke", stdout=io.StringIO())

    # then
    assert reader.get(URL, QUERY).status_code == 401


def test_rotate_api_token_refuses_the_old_token_and_accepts_the_new(
    make_api_client, django_capture_on_commit_callbacks
):
    # given
    reader = make_api_client("read", name="to-rotate")
    assert reader.get(URL, QUERY).status_code == 200

    # when
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rotate_api_token", "to-rotate", stdout=out)
    rotated = APIClient()
    rotated.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().splitlines()[-1]}")

    # then
    assert reader.get(URL, QUERY).status_code == 401
    assert rotated.get(URL, QUERY).status_code == 200


def test_a_change_to_a_client_moves_the_generation_again_after_commit(
    make_api_client, django_capture_on_commit_callbacks
):
    # given
    reader = make_api_client("read")
    before = authentication.current_generation()

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        reader.api_client.scopes = ["read", "write"]
        reader.api_client.save()
    during = authentication.current_generation()
    for callback in callbacks:
        callback()

    # then: another process that read the row before the commit cannot keep it
    assert before != during != authentication.current_generation()


def test_the_rate_limit_survives_redis_forgetting_its_scripts(make_api_client, settings):
    # given
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    reader = make_api_client("read")
    assert reader.get(URL, QUERY).status_code == 200

    # when
    get_redis_connection("default").script_flush()
    statuses = [reader.get(URL, QUERY).status_code for _ in range(3)]

    # then
    assert statuses == [200, 200, 429]
