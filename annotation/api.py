"""API plumbing shared by every package's views: query-string ids, pagination and a CSV
renderer. No domain logic here."""

import json

from rest_framework import renderers, serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


def query_int(request, name: str) -> int | None:
    """An optional integer query parameter; a 400 that says so when it is not one."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise serializers.ValidationError({name: [f"{name} must be an id (an integer); got {value!r}."]})
    return int(value)


def paginated_schema(serializer_class):
    """The OpenAPI shape of what `paginated` returns (limit/offset pages), for extend_schema."""
    from drf_spectacular.utils import inline_serializer

    name = serializer_class.__name__.removesuffix("Serializer").removesuffix("Output")
    return inline_serializer(name=f"Paginated{name}List", fields={
        "count": serializers.IntegerField(),
        "count_is_lower_bound": serializers.BooleanField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    })


class CappedCountPagination(LimitOffsetPagination):
    """limit/offset pages whose `count` is exact up to COUNT_CAP rows past the offset, and
    otherwise a lower bound flagged `count_is_lower_bound: true` (next links keep working):
    counting millions of judgments or audit events on every page would cost more than the page."""

    COUNT_CAP = 10_000

    def get_count(self, queryset) -> int:
        cap = self.get_offset(self.request) + self.COUNT_CAP
        count = queryset.order_by()[: cap + 1].count()
        self.capped = count > cap
        return min(count, cap)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_is_lower_bound"] = getattr(self, "capped", False)
        return response


def paginated(request, view, queryset, serializer_class) -> Response:
    paginator = CappedCountPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class CSVTextRenderer(renderers.BaseRenderer):
    """Lets `?format=csv` through DRF's format negotiation; the view hands it finished CSV text.
    Errors (a dict) still go out as JSON so the message stays readable."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode(self.charset)
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data, default=str).encode(self.charset)
