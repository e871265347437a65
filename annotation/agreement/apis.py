"""Agreement reports and the trend across batches over HTTP: thin views over
annotation.agreement.services."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.agreement import services as agreement_reports
from annotation.agreement import LEVELS
from annotation.api import CSVTextRenderer
from annotation.permissions import IsAdminRole
from annotation.labeling.selectors import batch_get


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
        responses={200: dict, 202: dict},
    )
    def get(self, request, batch_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        batch = batch_get(batch_id=batch_id)
        report, progress = agreement_reports.agreement_report_or_queue(batch=batch, level=params.validated_data["level"])
        if report is None:
            # A large batch: its report is being computed by a worker; ask again shortly.
            return Response({"detail": f"The report of this batch ({progress['judgments']:,} judgments) is being computed "
                                       "in the background; ask again in a few seconds.", **progress},
                            status=202, headers={"Retry-After": "5"})
        if params.validated_data["format"] != "csv":
            return Response(report)
        table = params.validated_data["table"]
        text = agreement_reports.agreement_table_csv(report=report, table=table)
        agreement_reports.agreement_download_record(actor=request.user, what=table, batch=batch, level=report["level"])
        filename = f"batch-{batch.pk}-{table}-{report['level']}.csv"
        return Response(text, content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


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
        agreement_reports.agreement_download_record(actor=request.user, what="trend")
        return Response(agreement_reports.rows_csv(points), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="agreement-trend.csv"'})
