"""Projections: each turns some event types into rows of its read tables."""

from queries_app.projections.base import Projection
from queries_app.projections.customers import CustomerProjection

PROJECTIONS: tuple[Projection, ...] = (CustomerProjection(),)
