"""Aggregates as a handler's unit test finds them stored (built directly: no events pending)."""

from decimal import Decimal
from uuid import UUID

from uuid_utils.compat import uuid7

from commands_app.domain.customer import Customer
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import OrderLine


def a_customer(email: str = "ada@example.com", *, version: int = 1) -> Customer:
    return Customer(customer_id=uuid7(), first_name="Ada", last_name="Lovelace", email=email, version=version)


def a_product(sku: str = "LAMP-1", *, price: str = "19.90", stock: int = 10, reserved: int = 0) -> Product:
    return Product(
        sku=sku, name=f"Lamp {sku}", description="", price=Decimal(price), stock=stock, reserved=reserved, version=1
    )


def line(sku: str, quantity: int, price: str = "19.90") -> OrderLine:
    return OrderLine(
        sku=sku, name=f"Lamp {sku}", quantity=quantity, unit_price=Decimal(price), line_total=Decimal(price) * quantity
    )


def an_order(
    *lines: OrderLine,
    customer_id: UUID | None = None,
    status: str = "pending",
    reserved: bool = False,
    payment_status: str = "none",
    authorization_id: str = "",
    reference: str = "pm_test",
) -> Order:
    lines = lines or (line("LAMP-1", 2),)
    return Order(
        order_id=uuid7(),
        customer_id=customer_id or uuid7(),
        lines=lines,
        total=sum((item.line_total for item in lines), Decimal("0.00")),
        payment_reference=reference,
        status=status,
        reserved=reserved,
        payment_status=payment_status,
        authorization_id=authorization_id,
        version=3,
    )
