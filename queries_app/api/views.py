"""Query endpoints: each declares its consistency level and reads only read tables."""

from typing import ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_common.permissions import HasReadScope
from api_common.problems import Problem
from queries_app.api.serializers import CustomerOutput, CustomerQueryInput
from queries_app.consistency import Consistency
from queries_app.models import CustomerView

PROBLEM = OpenApiResponse(description="RFC 9457 problem details (application/problem+json) with a stable code.")


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class QueryView(APIView):
    permission_classes = [HasReadScope]
    consistency: ClassVar[Consistency]


class CustomerDetailView(QueryView):
    consistency = Consistency.EVENTUAL

    @extend_schema(
        summary="A customer, from the customer read table",
        description="Consistency: EVENTUAL (behind the write model by the projection lag).",
        responses={200: CustomerOutput, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM},
        tags=["queries"],
    )
    def get(self, request: Request, customer_id: str) -> Response:
        customer = CustomerView.objects.filter(customer_id=customer_id).first()
        if customer is None:
            raise Problem(status_code=404, code="CUSTOMER_NOT_FOUND", detail="No such customer in the read model.")
        return Response(CustomerOutput(customer).data)


class CustomerListView(QueryView):
    consistency = Consistency.EVENTUAL
    pagination_class = Pagination

    @extend_schema(
        summary="Customers by email, from the customer read table",
        description="Consistency: EVENTUAL (behind the write model by the projection lag).",
        parameters=[OpenApiParameter("email", str, required=True)],
        responses={200: CustomerOutput(many=True), 400: PROBLEM, 401: PROBLEM, 403: PROBLEM},
        tags=["queries"],
    )
    def get(self, request: Request) -> Response:
        query = CustomerQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = CustomerView.objects.filter(email=query.validated_data["email"].lower()).order_by("customer_id")
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(CustomerOutput(page, many=True).data)
