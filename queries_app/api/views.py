"""Query endpoints: each declares its consistency level, the read model it reads, and reads only that.

A STRONG endpoint earns its level on every read (queries_app.consistency). The others answer at their declared
level, reading through the database router (the replica, when one is configured) and, for HIGHLY_EVENTUAL
ones, the cache; with an X-Consistency-Token they answer READ_YOUR_WRITES, from the primary, never the cache.
"""

import functools
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import structlog
from django.conf import settings
from django.db import connections, models
from django.db.models import BooleanField, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import sqlkit
from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import LEVEL_HEADER, AggregateVersion, token_versions
from api_common.permissions import HasReadScope
from api_common.problems import Problem
from api_common.schema import (
    COMMON_PARAMETERS,
    LINKS_EXTENSION,
    REFUSED_BEFORE_THE_VIEW,
    level_header,
    problem_responses,
)
from api_common.schema import CONSISTENCY_TOKEN as TOKEN
from outbox_app.operations import latest_versions
from queries_app import best_sellers, cache
from queries_app.api.serializers import (
    MAX_PAGE_SIZE,
    SKU_PATTERN,
    BestSellerOutput,
    BestSellersOutput,
    BestSellersQueryInput,
    CustomerOutput,
    CustomerQueryInput,
    OrderOutput,
    OrderQueryInput,
    ProductOutput,
    ProductQueryInput,
    paginated,
)
from queries_app.consistency import Consistency, applied, wait_until_applied
from queries_app.models import AggregatePosition, CustomerReadModel, OrderReadModel, ProductReadModel
from queries_app.projections import BY_NAME
from queries_app.routers import PRIMARY, replica_failed, replica_for_reads

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=models.Model)

CONSISTENCY = (
    f" Send the {CONSISTENCY_HEADER} header of a command response to read your own write: the query waits until "
    "the read model reflects that command and answers READ_YOUR_WRITES, or answers 503 with Retry-After; a token "
    "this service did not issue answers 400."
)


def query_schema(
    *,
    operation_id: str,
    summary: str,
    description: str,
    output: Any,
    level: Consistency,
    statuses: tuple[int, ...] = (),
    parameters: tuple[Any, ...] = (),
    links: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """The schema of one query: its parameters, the levels it answers at (its declared `level`, and for any other
    than STRONG, READ_YOUR_WRITES with a token), every status it may answer."""
    levels = (level,) if level is Consistency.STRONG else (level, Consistency.READ_YOUR_WRITES)
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description + CONSISTENCY,
        parameters=[*parameters, TOKEN, *COMMON_PARAMETERS, level_header(*levels)],
        responses={200: output, **problem_responses(*REFUSED_BEFORE_THE_VIEW, *statuses, 503)},
        extensions={LINKS_EXTENSION: {200: links}} if links else None,
        tags=["queries"],
    )


SKU = re.compile(SKU_PATTERN)
SKU_PARAMETER = OpenApiParameter(
    "sku", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=SKU_PATTERN, description="The product's sku."
)


def detail_link(operation_id: str, description: str, **parameters: str) -> dict[str, dict[str, Any]]:
    """A link from a page of results to the first result's own endpoint."""
    return {"GetFirstResult": {"operationId": operation_id, "description": description, "parameters": parameters}}


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class QueryView(APIView):
    permission_classes = [HasReadScope]
    consistency: ClassVar[Consistency]
    # The projection whose read model answers, and what the consistency map says the data comes from.
    projection: ClassVar[str]
    source: ClassVar[str]
    # The level of this answer: the declared one, or READ_YOUR_WRITES while answering a consistency token.
    level: Consistency
    retried_on_primary = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.level = self.consistency
        token = request.headers.get(CONSISTENCY_HEADER)
        handled = request.method is not None and hasattr(self, request.method.lower())
        if token is None or not handled:
            return
        versions = token_versions(token)
        # A STRONG answer reflects every acknowledged command, the token's among them: it has nothing to add.
        if self.consistency is not Consistency.STRONG:
            self.wait_for(versions)
            self.level = Consistency.READ_YOUR_WRITES

    def wait_for(self, versions: list[AggregateVersion]) -> None:
        """Wait until this view's projection has applied these versions (on the primary), or answer 503."""
        self.wait_or_refuse(applied(BY_NAME[self.projection], versions, using=PRIMARY))

    def wait_or_refuse(self, probe: Callable[[], bool]) -> None:
        """Wait until `probe` says the read model has caught up, or answer 503."""
        if not wait_until_applied(probe, self.projection, timeout=settings.CONSISTENCY_WAIT_SECONDS, using=PRIMARY):
            raise Problem(
                status_code=503,
                code="CONSISTENCY_TIMEOUT",
                detail="The read model has not caught up with the commands it must reflect yet; retry shortly.",
                headers={"Retry-After": "1"},
            )

    @property
    def db(self) -> str:
        """STRONG and read-your-writes answers read the primary; the others the replica while it is usable."""
        if self.level in (Consistency.STRONG, Consistency.READ_YOUR_WRITES):
            return PRIMARY
        return replica_for_reads()

    @property
    def skips_cache(self) -> bool:
        return self.level is Consistency.READ_YOUR_WRITES

    def handle_exception(self, exc: Exception) -> Response:
        """A read that failed because the replica went away is answered from the primary, once."""
        method = (self.request.method or "").lower() if self.request is not None else ""
        if hasattr(self, method) and not self.retried_on_primary and replica_failed(exc):
            self.retried_on_primary = True
            try:
                return getattr(self, method)(self.request, *self.args, **self.kwargs)
            except Exception as again:
                exc = again
        return super().handle_exception(exc)

    def rows(self, model: type[M]) -> "QuerySet[M]":
        return model._default_manager.using(self.db)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response[LEVEL_HEADER] = getattr(self, "level", self.consistency).value
        return response


def _paginate(view: QueryView, request: Request, rows: "QuerySet[Any]", output: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request, view=view) or []
    return paginator.get_paginated_response([output.to_representation(row) for row in page])


# Rows are rendered by one serializer per output, built once per process: building a serializer's fields on every
# request cost more than the read itself (docs/benchmarks.md, "Measured choices in the code").
CUSTOMER_OUTPUT = CustomerOutput()
ORDER_OUTPUT = OrderOutput()
PRODUCT_OUTPUT = ProductOutput()
CUSTOMER_COLUMNS = [str(field.source) for field in CUSTOMER_OUTPUT.fields.values()]


@functools.cache
def _customer_read(using: str) -> str:
    """The read by key, built once from the model's metadata: compiling it through the ORM on every request cost
    more CPU than the read itself (docs/benchmarks.md, "Measured choices in the code")."""
    version = connections[using].ops.quote_name(str(CustomerReadModel._meta.get_field("version").column))
    (statement,) = sqlkit.select(
        CustomerReadModel, CUSTOMER_COLUMNS, where={"customer_id": None}, condition=f"{version} >= 1", using=using
    )
    return statement.sql


def customer_row(customer_id: UUID, *, using: str) -> dict[str, Any] | None:
    """A registered customer's columns, or None."""
    read = sqlkit.Statement(
        _customer_read(using), sqlkit.field_values(CustomerReadModel, {"customer_id": customer_id}, using=using)
    )
    rows = sqlkit.decode(CustomerReadModel, CUSTOMER_COLUMNS, sqlkit.send([read], using=using)[0].rows, using=using)
    return dict(zip(CUSTOMER_COLUMNS, rows[0], strict=True)) if rows else None


class CustomerDetailView(QueryView):
    # Not STRONG: the row sums the customer's orders, and which orders those are the log cannot say cheaply.
    consistency = Consistency.EVENTUAL
    projection = "customers"
    source = "read_customer (replica if configured)"

    @query_schema(
        operation_id="customers_retrieve",
        summary="A customer, from the customer read table",
        description="Consistency: EVENTUAL (behind the write model by the projection lag; its order count and "
        "lifetime value follow the customer's orders).",
        output=CustomerOutput,
        level=Consistency.EVENTUAL,
        statuses=(404,),
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        row = customer_row(customer_id, using=self.db)
        if row is None:
            raise Problem(status_code=404, code="CUSTOMER_NOT_FOUND", detail="No such customer in the read model.")
        # DRF's fields read a mapping's keys as they read an instance's attributes.
        return Response(CUSTOMER_OUTPUT.to_representation(row))  # type: ignore[arg-type]


class CustomerListView(QueryView):
    consistency = Consistency.EVENTUAL
    projection = "customers"
    source = "read_customer (replica if configured)"

    @query_schema(
        operation_id="customers_list",
        summary="Customers by email, from the customer read table",
        description="Consistency: EVENTUAL (behind the write model by the projection lag).",
        output=paginated(CustomerOutput),
        level=Consistency.EVENTUAL,
        statuses=(404,),
        parameters=(CustomerQueryInput,),
        links=detail_link(
            "customers_retrieve", "The first customer found.", customer_id="$response.body#/results/0/id"
        ),
    )
    def get(self, request: Request) -> Response:
        query = CustomerQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = self.rows(CustomerReadModel).filter(email=query.validated_data["email"].lower(), version__gte=1)
        return _paginate(self, request, rows.order_by("customer_id"), CUSTOMER_OUTPUT)


class OrderDetailView(QueryView):
    consistency = Consistency.STRONG
    projection = "orders"
    source = "read_order (primary), after the projection reached the order's and its customer's newest events"

    @query_schema(
        operation_id="orders_retrieve",
        summary="An order with its lines, customer, payment status and timeline",
        description="Consistency: STRONG: the answer reflects every command acknowledged before the query (it waits "
        "until the projection has applied the newest events of the order and of its customer, or answers 503).",
        output=OrderOutput,
        level=Consistency.STRONG,
        statuses=(404,),
    )
    def get(self, request: Request, order_id: UUID) -> Response:
        # The row shows the order and a copy of its customer: both must have reached their newest events. Which
        # customer is known from the row (an order's customer never changes): a first read finds it, and when the
        # read model does not have the order yet, waits for the order's newest event first.
        order, _ = order_with_positions(order_id, [], using=self.db)
        if order is None:
            order = self.read_when_applied(order_id, [("Order", str(order_id))])
        if order is not None:
            order = self.read_when_applied(order_id, [("Order", str(order_id)), ("Customer", str(order.customer_id))])
        if order is None:
            raise Problem(status_code=404, code="ORDER_NOT_FOUND", detail="No such order in the read model.")
        return Response(ORDER_OUTPUT.to_representation(order))

    def read_when_applied(self, order_id: UUID, aggregates: list[tuple[str, str]]) -> OrderReadModel | None:
        """The order's row once the projection has applied the newest event in the log of each aggregate, or 503.

        Each read brings the projection's positions for the aggregates with the row, in the same snapshot, taken
        after the newest versions were read: a row read with positions that reached them reflects every command
        acknowledged before the query."""
        newest = latest_versions(aggregates)
        read: list[OrderReadModel | None] = [None]

        def caught_up() -> bool:
            read[0], positions = order_with_positions(order_id, aggregates, using=self.db)
            return all(
                position >= newest.get(aggregate, 0) for aggregate, position in zip(aggregates, positions, strict=True)
            )

        self.wait_or_refuse(caught_up)
        return read[0]


ORDER_COLUMNS = [field.name for field in OrderReadModel._meta.concrete_fields]


@functools.cache
def _order_read(using: str, positions: int) -> str:
    """The order's row by key and, as more columns, the orders projection's position for each of `positions`
    aggregates, built once from the models' metadata (compiling the ORM's queries cost more CPU than the reads)."""
    quote = connections[using].ops.quote_name

    def column(model: type[models.Model], name: str) -> str:
        return quote(next(str(field.column) for field in model._meta.concrete_fields if field.name == name))

    position = (
        f"(SELECT {column(AggregatePosition, 'version')} FROM {quote(AggregatePosition._meta.db_table)} "
        f"WHERE {column(AggregatePosition, 'projection')} = %s AND {column(AggregatePosition, 'aggregate_type')} = %s "
        f"AND {column(AggregatePosition, 'aggregate_id')} = %s)"
    )
    columns = ", ".join([*(column(OrderReadModel, name) for name in ORDER_COLUMNS), *[position] * positions])
    table = quote(OrderReadModel._meta.db_table)
    return f"SELECT {columns} FROM {table} WHERE {column(OrderReadModel, 'order_id')} = %s"


def order_with_positions(
    order_id: UUID, aggregates: list[tuple[str, str]], *, using: str
) -> tuple[OrderReadModel | None, list[int]]:
    """The order's row (or None) and the orders projection's position for each aggregate (0 if none), as of one
    moment."""
    key = sqlkit.field_values(OrderReadModel, {"order_id": order_id}, using=using)
    params = [value for kind, key_of in aggregates for value in (OrderDetailView.projection, kind, key_of)]
    statement = sqlkit.Statement(_order_read(using, len(aggregates)), [*params, *key])
    rows = sqlkit.send([statement], using=using)[0].rows
    if not rows:
        return None, [0] * len(aggregates)
    values = sqlkit.decode(OrderReadModel, ORDER_COLUMNS, rows, using=using)[0]
    count = len(ORDER_COLUMNS)
    order = OrderReadModel.from_db(using, ORDER_COLUMNS, values[:count])
    return order, [position or 0 for position in values[count:]]


class OrderListView(QueryView):
    consistency = Consistency.EVENTUAL
    projection = "orders"
    source = "read_order (replica if configured)"

    @query_schema(
        operation_id="orders_list",
        summary="A customer's orders, newest first, optionally by status",
        description="Consistency: EVENTUAL (behind the write model by the projection lag).",
        output=paginated(OrderOutput),
        level=Consistency.EVENTUAL,
        statuses=(404,),
        parameters=(OrderQueryInput,),
        links=detail_link("orders_retrieve", "The newest order found.", order_id="$response.body#/results/0/id"),
    )
    def get(self, request: Request) -> Response:
        query = OrderQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = self.rows(OrderReadModel).filter(customer_id=query.validated_data["customer_id"])
        if "status" in query.validated_data:
            rows = rows.filter(status=query.validated_data["status"])
        return _paginate(self, request, rows.order_by("-placed_at", "order_id"), ORDER_OUTPUT)


class ProductDetailView(QueryView):
    consistency = Consistency.HIGHLY_EVENTUAL
    projection = "products"
    source = "Django cache (Redis) for QUERY_CACHE_SECONDS, over read_product"

    @query_schema(
        operation_id="products_retrieve",
        summary="A product of the catalog",
        description="Consistency: HIGHLY_EVENTUAL (cached for QUERY_CACHE_SECONDS, invalidated by the projection).",
        output=ProductOutput,
        level=Consistency.HIGHLY_EVENTUAL,
        statuses=(404,),
        parameters=(SKU_PARAMETER,),
    )
    def get(self, request: Request, sku: str) -> Response:
        if not SKU.search(sku):
            # No product has such a sku (and PostgreSQL could not even compare one holding a NUL byte).
            raise Problem(status_code=404, code="PRODUCT_NOT_FOUND", detail="No such product in the catalog.")
        key = cache.product_key(sku)
        cached = None if self.skips_cache else cache.get(key)
        if cached is not None:
            return Response(cached)
        product = self.rows(ProductReadModel).filter(sku=sku).first()
        if product is None:
            raise Problem(status_code=404, code="PRODUCT_NOT_FOUND", detail="No such product in the catalog.")
        data = dict(PRODUCT_OUTPUT.to_representation(product))
        cache.put(key, data)
        return Response(data)


def _search(rows: "QuerySet[ProductReadModel]", text: str) -> "QuerySet[ProductReadModel]":
    if sqlkit.dialect(rows.db or PRIMARY).full_text_search:
        # The generated `search` tsvector and its GIN index (migration 0002); websearch syntax, ranked.
        query = "websearch_to_tsquery('english'::regconfig, %s)"
        matches = RawSQL(f"search @@ {query}", [text], output_field=BooleanField())
        rank = RawSQL(f"ts_rank(search, {query})", [text], output_field=FloatField())
        return rows.filter(matches).annotate(rank=rank).order_by("-rank", "sku")
    return rows.filter(Q(name__icontains=text) | Q(description__icontains=text)).order_by("sku")


class ProductListView(QueryView):
    consistency = Consistency.EVENTUAL
    projection = "products"
    source = "read_product, full-text search on PostgreSQL (replica if configured)"

    @query_schema(
        operation_id="products_list",
        summary="The catalog, or the products matching a search",
        description="Consistency: EVENTUAL. `search` is full-text on PostgreSQL (ranked), substring on SQLite.",
        output=paginated(ProductOutput),
        level=Consistency.EVENTUAL,
        statuses=(404,),
        parameters=(ProductQueryInput,),
        links=detail_link("products_retrieve", "The first product found.", sku="$response.body#/results/0/sku"),
    )
    def get(self, request: Request) -> Response:
        query = ProductQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = self.rows(ProductReadModel).all()
        text = query.validated_data.get("search", "")
        rows = _search(rows, text) if text else rows.order_by("sku")
        return _paginate(self, request, rows, PRODUCT_OUTPUT)


class BestSellersView(QueryView):
    consistency = Consistency.HIGHLY_EVENTUAL
    projection = "best_sellers"
    source = "Django cache (Redis) for QUERY_CACHE_SECONDS, over read_best_seller (PostgreSQL)"

    @query_schema(
        operation_id="products_best_sellers",
        summary="The best-selling products by units sold in confirmed orders",
        description="Consistency: HIGHLY_EVENTUAL (cached for QUERY_CACHE_SECONDS, invalidated by the projection).",
        output=BestSellersOutput,
        level=Consistency.HIGHLY_EVENTUAL,
        parameters=(BestSellersQueryInput,),
        links=detail_link("products_retrieve", "The best seller.", sku="$response.body#/results/0/sku"),
    )
    def get(self, request: Request) -> Response:
        query = BestSellersQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        key = cache.best_sellers_key(limit)
        cached = None if self.skips_cache else cache.get(key)
        if cached is not None:
            return Response(cached)
        ranked = best_sellers.top(limit, using=self.db)
        names = dict(self.rows(ProductReadModel).filter(sku__in=[sku for sku, _ in ranked]).values_list("sku", "name"))
        sellers: Any = [{"sku": sku, "name": names.get(sku, ""), "units_sold": units} for sku, units in ranked]
        data = {"results": BestSellerOutput(sellers, many=True).data}
        cache.put(key, data)
        return Response(data)
