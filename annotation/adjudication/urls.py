from django.urls import path

from annotation.adjudication import apis

urlpatterns = [
    path("batches/<int:batch_id>/disputes/", apis.BatchDisputesApi.as_view(), name="batch-disputes"),
    path("pairs/<int:pair_id>/adjudication/", apis.PairAdjudicationApi.as_view(), name="pair-adjudication"),
]
