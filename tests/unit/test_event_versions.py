"""Every event at every schema version it ever had (tests/fixtures/events/<type>/v<N>.json) reads as its current form.

The fixtures are the stored forms the log may hold for ever: a new version of an event adds its fixture and an
upcaster from the previous one (docs/events.md, "Changing an event"); these tests fail until both exist. Each
fixture is upcast, checked against the current payload schema, and projected by every projection that follows its
aggregate type (tests/integration/test_event_schema_evolution.py folds them on PostgreSQL too).
"""

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from cryptography.exceptions import InvalidTag

from commands_app.events import CATALOG, UNRECORDED_PAYMENT_REFERENCE
from outbox_app import catalog, upcasting
from outbox_app.sealing import ERASED, open_payload, open_sealed, seal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("*/v*.json"))


def stored(path: Path) -> dict:
    return json.loads(path.read_text())


def current_forms() -> set[tuple[str, int]]:
    return {(event.__name__, event.schema_version) for events in CATALOG.values() for event in events}


def every_form_ever() -> set[tuple[str, int]]:
    return current_forms() | {(u.event_type, u.from_version) for u in upcasting.upcasters()}


def test_there_is_a_fixture_of_every_event_at_every_version_it_ever_had():
    found = {(path.parent.name, int(path.stem[1:])) for path in fixture_paths()}
    assert found == every_form_ever()


def test_every_current_version_descends_from_a_version_1_by_upcasters():
    into = {(u.to_type, u.to_version): (u.event_type, u.from_version) for u in upcasting.upcasters()}
    for form in current_forms():
        while form[1] > 1:
            assert form in into, f"{form[0]} v{form[1]} has no upcaster from version {form[1] - 1}"
            form = into[form]


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_each_stored_form_upcasts_to_the_current_schema(path):
    # given
    envelope = stored(path)

    # when
    current = upcasting.upcast(envelope)

    # then
    assert (current["event_type"], current["schema_version"]) in current_forms()
    declared = {event_type.name: event_type for event_type in catalog.event_types()}[current["event_type"]]
    assert current["schema_version"] == declared.schema_version
    jsonschema.validate(current["payload"], declared.payload_schema)
    assert stored(path) == envelope, "the stored envelope must not be changed in place"


def test_payment_refunded_v1_reads_as_payment_voided_v2():
    current = upcasting.upcast(stored(FIXTURES / "PaymentRefunded" / "v1.json"))
    assert (current["event_type"], current["schema_version"]) == ("PaymentVoided", 2)
    assert current["payload"] == stored(FIXTURES / "PaymentVoided" / "v2.json")["payload"]


def test_order_placed_v1_reads_without_its_payment_token():
    current = upcasting.upcast(stored(FIXTURES / "OrderPlaced" / "v1.json"))
    assert current["schema_version"] == 2
    assert "payment_token" not in current["payload"]
    assert "tok_fixture_card_secret_v1" not in json.dumps(current)
    assert current["payload"]["payment_reference"] == UNRECORDED_PAYMENT_REFERENCE


def test_an_old_type_is_found_under_its_new_name():
    assert upcasting.stored_names(["PaymentVoided"]) == ["PaymentRefunded", "PaymentVoided"]
    assert upcasting.stored_names(["OrderPlaced"]) == ["OrderPlaced"]


def test_upcasting_carries_sealed_personal_data_through_untouched():
    # given: an OrderCancelled v1 with a sealed note, as if its type had a newer version
    envelope = stored(FIXTURES / "OrderCancelled" / "v1.json")
    customer_id = envelope["payload"]["customer_id"]
    envelope["payload"] = seal(envelope["payload"], ["note"], subject=customer_id, key=bytes(32))
    upcasting.register(upcasting.Upcaster("OrderCancelled", 1, "OrderCancelled", lambda p: {"only": "this"}))
    try:
        # when
        current = upcasting.upcast(envelope)
    finally:
        upcasting._by_stored_form.pop(("OrderCancelled", 1))

    # then
    assert current["payload"]["only"] == "this"
    assert current["payload"]["sealed"] == envelope["payload"]["sealed"]


def test_a_second_different_upcaster_for_one_stored_form_is_refused():
    with pytest.raises(ValueError, match="two upcasters"):
        upcasting.register(upcasting.Upcaster("PaymentRefunded", 1, "PaymentVoided", lambda p: {}))


def test_a_sealed_payload_opens_with_its_key_and_reads_erased_without_it():
    # given
    payload = {"customer_id": "c-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
    key = bytes(range(32))
    sealed = seal(payload, ["first_name", "last_name", "email"], subject="c-1", key=key)

    # then
    assert "Ada" not in json.dumps(sealed) and "ada@example.org" not in json.dumps(sealed)
    assert open_payload(sealed, {"c-1": key}) == payload
    assert open_payload(sealed, {}) == {"customer_id": "c-1"} | dict.fromkeys(
        ["first_name", "last_name", "email"], ERASED
    )
    assert seal(payload, ["email"], subject="c-1", key=None)["email"] == ERASED


def test_envelopes_with_nothing_sealed_are_returned_as_they_are():
    envelopes = [{"event_type": "ProductAdded", "payload": {"sku": "A"}}]
    assert open_sealed(envelopes) is envelopes


def test_a_box_sealed_for_one_customer_does_not_open_as_anothers():
    key = bytes(range(32))
    sealed = seal({"customer_id": "c-1", "note": "hello"}, ["note"], subject="c-1", key=key)
    sealed["sealed"]["subject"] = "c-2"
    with pytest.raises(InvalidTag):
        open_payload(sealed, {"c-2": key})
    assert open_payload(sealed, {})["note"] == ERASED
