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
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
    })


def paginated(request, view, queryset, serializer_class) -> Response:
    paginator = LimitOffsetPagination()
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
