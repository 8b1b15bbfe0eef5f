"""The Product aggregate: price and stock, with reservations held for orders until they are sold or released.

Invariant: available = stock - reserved - sold, and it never goes below zero.
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from commands_app.domain.aggregate import Aggregate
from commands_app.domain.limits import MAX_STOCK
from commands_app.events import (
    InventoryReleased,
    InventoryReserved,
    ProductAdded,
    ProductPriceChanged,
    ProductRestocked,
)
from commands_app.result import Error


@dataclass(kw_only=True)
class Product(Aggregate):
    aggregate_type = "Product"
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    reserved: int = 0
    sold: int = 0

    @property
    def aggregate_id(self) -> str:
        return self.sku

    @property
    def available(self) -> int:
        return self.stock - self.reserved - self.sold

    @classmethod
    def add(cls, *, sku: str, name: str, description: str, price: Decimal, stock: int) -> "Product":
        product = cls(sku=sku, name=name.strip(), description=description.strip(), price=price, stock=stock)
        product.record(
            ProductAdded(
                sku=sku,
                name=product.name,
                description=product.description,
                price=price,
                stock=stock,
                available=product.available,
            )
        )
        return product

    def restock(self, quantity: int) -> Error | None:
        if self.stock + quantity > MAX_STOCK:
            return Error(
                "STOCK_LIMIT_EXCEEDED",
                f"{self.sku} has {self.stock} units over its life; at most {MAX_STOCK} can be taken in.",
                {"field": "quantity", "stock": self.stock, "max_stock": MAX_STOCK},
            )
        self.stock += quantity
        self.record(ProductRestocked(sku=self.sku, quantity=quantity, stock=self.stock, available=self.available))
        return None

    def change_price(self, price: Decimal) -> None:
        previous, self.price = self.price, price
        self.record(ProductPriceChanged(sku=self.sku, price=price, previous_price=previous))

    def reserve(self, order_id: UUID, quantity: int) -> Error | None:
        if quantity > self.available:
            return Error("INSUFFICIENT_STOCK", f"Only {self.available} of {self.sku} available.")
        self.reserved += quantity
        self.record(InventoryReserved(sku=self.sku, order_id=order_id, quantity=quantity, available=self.available))
        return None

    def release(self, order_id: UUID, quantity: int) -> None:
        self.reserved -= quantity
        self.record(InventoryReleased(sku=self.sku, order_id=order_id, quantity=quantity, available=self.available))

    def sell_reserved(self, quantity: int) -> None:
        """A reservation becomes a sale; available is unchanged, so no event (see docs/events.md)."""
        self.reserved -= quantity
        self.sold += quantity
