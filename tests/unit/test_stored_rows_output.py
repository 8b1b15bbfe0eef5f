"""An order's lines and timeline, stored in their output's shape, render as DRF's own list serializer renders them."""

import pytest
from rest_framework import serializers

from queries_app.api.serializers import OrderLineOutput, StoredRows, TimelineEntryOutput

LINES = [
    {"sku": "TEA", "name": "Teapot", "quantity": 2, "unit_price": "19.90", "line_total": "39.80"},
    {"sku": "MUG", "name": "Mug", "quantity": "3", "unit_price": "5.00", "line_total": "15.00", "extra": "x"},
]
TIMELINE = [
    {"at": "2026-12-05T17:00:00+00:00", "event": "OrderPlaced", "detail": "2 line(s)"},
    {"at": "2026-12-05T17:00:01+00:00", "event": "OrderCancelled", "detail": None},
]


@pytest.mark.parametrize(("output", "rows"), [(OrderLineOutput, LINES), (TimelineEntryOutput, TIMELINE)])
def test_stored_rows_render_like_drf_list_serializer(output, rows):
    # given
    stored, drf = output(many=True), serializers.ListSerializer(child=output())

    # when
    rendered = stored.to_representation(rows)

    # then: same values and types (a quantity stored as text is an integer), no undeclared key, None stays None
    assert isinstance(stored, StoredRows)
    assert rendered == [dict(row) for row in drf.to_representation(rows)]
    assert all("extra" not in row for row in rendered)


def test_a_row_missing_a_declared_key_fails_as_with_drf():
    with pytest.raises(KeyError):
        OrderLineOutput(many=True).to_representation([{"sku": "TEA"}])
