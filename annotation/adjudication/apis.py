"""Disputes and adjudication over HTTP: thin views over annotation.adjudication."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.adjudication import selectors as adjudication_selectors
from annotation.adjudication import services as adjudication_services
from annotation.rules import PREFERENCES
from annotation.errors import DomainError, NotFound
from annotation.permissions import CanAdjudicate


class BatchDisputesApi(APIView):
    permission_classes = [CanAdjudicate]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=adjudication_selectors.DISPUTE_STATUSES, default="all")
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
        offset = serializers.IntegerField(min_value=0, default=0)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(adjudication_selectors.DISPUTE_STATUSES)),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses={200: dict},
    )
    def get(self, request, batch_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        batch = adjudication_selectors.adjudication_batches(user=request.user).filter(pk=batch_id).first()
        if batch is None:
            raise NotFound(f"Batch {batch_id} does not exist among the batches you adjudicate.")
        return Response(adjudication_selectors.batch_disputes_list(batch=batch, **params.validated_data))


@extend_schema_field({"oneOf": [{"type": "string", "enum": [p.symbol for p in PREFERENCES]},
                               {"type": "integer", "minimum": -2, "maximum": 2}]})
class PreferenceField(serializers.Field):
    """A canonical symbol of annotation.rules.PREFERENCES (A>>B ... B>>A) or an integer -2..2."""

    def to_internal_value(self, data):
        try:
            return adjudication_services.preference_parse(data)
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
        pair = adjudication_selectors.pair_for_adjudicator(pair_id=pair_id, user=request.user)
        return Response(adjudication_selectors.adjudication_detail(pair=pair))

    @extend_schema(request=InputSerializer, responses={201: dict})
    def post(self, request, pair_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = adjudication_selectors.pair_for_adjudicator(pair_id=pair_id, user=request.user)
        adjudication_services.adjudication_record(pair=pair, decided_by=request.user, **data.validated_data)
        return Response(adjudication_selectors.adjudication_detail(pair=pair), status=status.HTTP_201_CREATED)
