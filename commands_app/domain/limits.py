"""Bounds on quantities and money that the domain enforces: every amount it accepts fits its columns.

The API states the same bounds in its schema (commands_app.api.serializers reads them from here); the
ones a request cannot be checked against on its own (an order's total, a restock on top of the stock on
hand) are business rules that answer 422 with a stable code.
"""

from decimal import Decimal

# Units of one sku in one order (lines naming the same sku count together).
MAX_LINE_QUANTITY = 1_000_000
MAX_ORDER_LINES = 100
# Units on hand of one product, over its life: opening stock plus every restock.
MAX_STOCK = 1_000_000_000
# Any amount of money, a price or an order's total: at most 10 digits before the point (numeric(12,2)).
MAX_MONEY = Decimal("9999999999.99")
