from django.urls import path

from annotation.agreement import apis

urlpatterns = [
    path("batches/<int:batch_id>/agreement/", apis.BatchAgreementApi.as_view(), name="batch-agreement"),
    path("agreement/trend/", apis.AgreementTrendApi.as_view(), name="agreement-trend"),
]
