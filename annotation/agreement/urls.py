from django.urls import path

from annotation.agreement import apis as agreement_apis

urlpatterns = [
    path("batches/<int:batch_id>/agreement/", agreement_apis.BatchAgreementApi.as_view(), name="batch-agreement"),
    path("batches/<int:batch_id>/disputes/", agreement_apis.BatchDisputesApi.as_view(), name="batch-disputes"),
    path("pairs/<int:pair_id>/adjudication/", agreement_apis.PairAdjudicationApi.as_view(), name="pair-adjudication"),
    path("agreement/trend/", agreement_apis.AgreementTrendApi.as_view(), name="agreement-trend"),
]
