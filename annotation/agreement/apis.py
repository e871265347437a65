"""Agreement reports, disputes and adjudication over HTTP: thin views over
annotation.agreement.reports and annotation.adjudication.services."""

import json

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import renderers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.adjudication import services as adjudication

from annotation.agreement import reports as agreement_reports
from annotation.agreement import LEVELS
from annotation.errors import DomainError, NotFound
from annotation.permissions import CanAdjudicate, IsAdminRole
from annotation.labeling.selectors import batch_get


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


class BatchAgreementApi(APIView):
    permission_classes = [IsAdminRole]
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CSVTextRenderer]

    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=LEVELS, default=agreement_reports.DEFAULT_LEVEL)
        format = serializers.ChoiceField(choices=("json", "csv", "api"), default="json")
        table = serializers.ChoiceField(choices=agreement_reports.TABLES, required=False)

        def validate(self, attrs):
            if attrs["format"] == "csv" and "table" not in attrs:
                raise serializers.ValidationError({"table": f"CSV needs a table: one of {', '.join(agreement_reports.TABLES)}."})
            return attrs

    @extend_schema(
        parameters=[
            OpenApiParameter("level", str, enum=list(LEVELS), description="Granularity (default: three classes)."),
            OpenApiParameter("format", str, enum=["json", "csv"]),
            OpenApiParameter("table", str, enum=list(agreement_reports.TABLES), description="With format=csv."),
        ],
        responses={200: dict},
    )
    def get(self, request, batch_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        batch = batch_get(batch_id=batch_id)
        report = agreement_reports.agreement_report_for_batch(batch=batch, level=params.validated_data["level"])
        if params.validated_data["format"] != "csv":
            return Response(report)
        table = params.validated_data["table"]
        text = agreement_reports.agreement_table_csv(report=report, table=table)
        filename = f"batch-{batch.pk}-{table}-{report['level']}.csv"
        return Response(text, content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class BatchDisputesApi(APIView):
    permission_classes = [CanAdjudicate]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=adjudication.DISPUTE_STATUSES, default="all")
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
        offset = serializers.IntegerField(min_value=0, default=0)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(adjudication.DISPUTE_STATUSES)),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses={200: dict},
    )
    def get(self, request, batch_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        batch = adjudication.adjudication_batches(user=request.user).filter(pk=batch_id).first()
        if batch is None:
            raise NotFound(f"Batch {batch_id} does not exist among the batches you adjudicate.")
        return Response(adjudication.batch_disputes_list(batch=batch, **params.validated_data))


@extend_schema_field({"oneOf": [{"type": "string", "enum": ["A>>B", "A>B", "=", "B>A", "B>>A"]},
                               {"type": "integer", "minimum": -2, "maximum": 2}]})
class PreferenceField(serializers.Field):
    """'A>>B' | 'A>B' | '=' | 'B>A' | 'B>>A' or an integer -2..2."""

    def to_internal_value(self, data):
        try:
            return adjudication.preference_parse(data)
        except DomainError as exc:
            raise serializers.ValidationError(exc.message)

    def to_representation(self, value):
        return value


class PairAdjudicationApi(APIView):
    permission_classes = [CanAdjudicate]

    class InputSerializer(serializers.Serializer):
        preference = PreferenceField()
        note = serializers.CharField(max_length=5000, trim_whitespace=True)
        a_unsafe = serializers.BooleanField(default=False)
        b_unsafe = serializers.BooleanField(default=False)

    @extend_schema(responses={200: dict})
    def get(self, request, pair_id: int):
        pair = adjudication.pair_for_adjudicator(pair_id=pair_id, user=request.user)
        return Response(adjudication.adjudication_detail(pair=pair))

    @extend_schema(request=InputSerializer, responses={201: dict})
    def post(self, request, pair_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = adjudication.pair_for_adjudicator(pair_id=pair_id, user=request.user)
        adjudication.adjudication_record(pair=pair, decided_by=request.user, **data.validated_data)
        return Response(adjudication.adjudication_detail(pair=pair), status=status.HTTP_201_CREATED)


class AgreementTrendApi(APIView):
    permission_classes = [IsAdminRole]
    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CSVTextRenderer]

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=("json", "csv", "api"), default="json")

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "csv"])], responses={200: dict})
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        points = agreement_reports.agreement_trend()
        if params.validated_data["format"] != "csv":
            return Response({"results": points})
        return Response(agreement_reports.rows_csv(points), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="agreement-trend.csv"'})
