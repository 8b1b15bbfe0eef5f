"""The operators' admin in a real headless Chromium (Debian's package, driven by Playwright), served as production
serves it: gunicorn with DEBUG off and two workers, its static files collected and served by WhiteNoise.

Logs in as staff, lists, filters, opens a detail page and runs an action on each operator page, and saves a
screenshot of each (to $SCREENSHOT_DIR; `make screenshots` writes them to docs/screenshots/).
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections, transaction

from api_common.models import ApiClient
from outbox_app import outbox
from outbox_app.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]
CHROMIUM = "/usr/bin/chromium"
# The admin stylesheet's header colour (--header-bg): proof the page got its CSS.
ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        yield page
        browser.close()
        # Playwright's event loop gave the test's queries connections of their own: close them here, or the test
        # database cannot be dropped at the end of the session.
        connections.close_all()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def log_in(page, base: str) -> None:
    User.objects.create_superuser("operator", password="operator-pw-123")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pw-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    header = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header == ADMIN_HEADER_BACKGROUND, "the admin's stylesheet did not load"


def test_operators_list_filter_open_and_act_on_the_outbox(production_web, browser_page, screenshots):
    # given: a published event, a pending one and a dead one
    with transaction.atomic():
        outbox.append(
            [
                outbox.NewEvent(
                    event_type="CustomerRegistered",
                    aggregate_type="Customer",
                    aggregate_id=str(uuid.uuid4()),
                    aggregate_version=1,
                    payload={"email": f"user{i}@example.com", "first_name": "Ada"},
                    metadata={"correlation_id": f"corr-{i}"},
                )
                for i in range(3)
            ]
        )
    first, _, third = OutboxEvent.objects.order_by("created_at")
    OutboxEvent.objects.filter(pk=first.pk).update(published_at=first.created_at)
    OutboxEvent.objects.filter(pk=third.pk).update(dead_at=third.created_at, attempts=10, last_error="rejected")
    page = browser_page
    log_in(page, production_web.url)

    # when: list with the status filter
    page.goto(f"{production_web.url}/admin/outbox_app/outboxevent/")
    page.screenshot(path=str(screenshots / "admin-outbox-list.png"), full_page=True)
    page.click("#changelist-filter a[href*='status=dead']")
    page.wait_for_url("**status=dead**")
    rows = page.locator("#result_list tbody tr")

    # then: only the dead event is listed, and the backlog summary is shown
    assert rows.count() == 1
    assert page.inner_text("#outbox-backlog") == "1"

    # when: open it, then requeue it with the admin action
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_selector("pre")
    assert "user2@example.com" in page.content()
    page.screenshot(path=str(screenshots / "admin-outbox-detail.png"), full_page=True)
    page.goto(f"{production_web.url}/admin/outbox_app/outboxevent/?status=dead")
    page.check("#result_list tbody input[type=checkbox]")
    page.select_option("select[name=action]", "requeue_dead")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")

    # then
    third.refresh_from_db()
    assert third.dead_at is None


def test_operators_see_and_revoke_api_clients(production_web, browser_page, screenshots):
    # given
    client = ApiClient(name="partner", scopes=["read"])
    client.issue_token()
    client.save()
    page = browser_page
    log_in(page, production_web.url)

    # when
    page.goto(f"{production_web.url}/admin/api_common/apiclient/")
    page.screenshot(path=str(screenshots / "admin-api-clients.png"), full_page=True)
    page.check("#result_list tbody input[type=checkbox]")
    page.select_option("select[name=action]", "revoke")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")

    # then
    client.refresh_from_db()
    assert client.revoked_at is not None
    assert "token_hash" not in page.content()


def test_operators_filter_sagas_open_the_timeline_and_retry_a_failed_one(production_web, browser_page, screenshots):
    # given: a saga whose compensation failed, and a completed one
    from tests.integration.test_saga_operations import a_failed_compensation, a_saga

    failed = a_failed_compensation()
    a_saga(status="completed", outcome="confirmed")
    page = browser_page
    log_in(page, production_web.url)

    # when: list and filter by status
    page.goto(f"{production_web.url}/admin/sagas_app/saga/")
    page.screenshot(path=str(screenshots / "admin-sagas-list.png"), full_page=True)
    page.click("#changelist-filter a[href*='status__exact=failed']")
    page.wait_for_url("**status__exact=failed**")

    # then
    assert page.locator("#result_list tbody tr").count() == 1

    # when: open the step timeline, then retry from the list
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_selector("text=voids are down")
    page.screenshot(path=str(screenshots / "admin-saga-detail.png"), full_page=True)
    page.goto(f"{production_web.url}/admin/sagas_app/saga/?status__exact=failed")
    page.check("#result_list tbody input[type=checkbox]")
    page.select_option("select[name=action]", "retry_sagas")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")

    # then
    failed.refresh_from_db()
    assert failed.status != "failed"


def test_operators_see_parked_projection_events_and_retry_them(production_web, browser_page, screenshots):
    # given: an event parked by the customers projection (its apply failed three times)
    from queries_app.models import ParkedEvent
    from queries_app.testing import Stream

    customer_id = str(uuid.uuid4())
    event = Stream("Customer", customer_id).event(
        "CustomerRegistered", {"customer_id": customer_id, "first_name": "A", "last_name": "B", "email": "p@x.io"}
    )
    ParkedEvent.objects.create(
        projection="customers",
        event_id=event["event_id"],
        event_type=event["event_type"],
        aggregate_type=event["aggregate_type"],
        aggregate_id=event["aggregate_id"],
        aggregate_version=1,
        envelope=event,
        reason=ParkedEvent.Reason.FAILED,
        error="boom",
        attempts=3,
    )
    page = browser_page
    log_in(page, production_web.url)

    # when
    page.goto(f"{production_web.url}/admin/queries_app/parkedevent/")
    page.screenshot(path=str(screenshots / "admin-parked-events.png"), full_page=True)
    page.check("#result_list tbody input[type=checkbox]")
    page.select_option("select[name=action]", "retry")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")

    # then: the retry applied it, so it is no longer parked
    assert not ParkedEvent.objects.exists()
    page.goto(f"{production_web.url}/admin/queries_app/projectioncheckpoint/")
    page.screenshot(path=str(screenshots / "admin-projection-checkpoints.png"), full_page=True)
    assert "customers" in page.content()
