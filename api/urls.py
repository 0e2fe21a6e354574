from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import obtain_auth_token

from api.views import appeals, docs, heatmaps, stats, submissions, webhooks

app_name = "api"

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("submissions/", submissions.SubmissionListCreateView.as_view(), name="submission-list"),
    path("submissions/<int:pk>/", submissions.SubmissionDetailView.as_view(), name="submission-detail"),
    path("submissions/<int:pk>/original/", submissions.SubmissionOriginalView.as_view(), name="submission-original"),
    path("submissions/<int:pk>/decision/", submissions.SubmissionDecisionView.as_view(), name="submission-decision"),
    path("submissions/<int:pk>/requeue/", submissions.SubmissionRequeueView.as_view(), name="submission-requeue"),
    path("submissions/<int:pk>/reanalyse/", submissions.SubmissionReanalyseView.as_view(), name="submission-reanalyse"),
    path("submissions/<int:pk>/appeal/", appeals.SubmissionAppealView.as_view(), name="submission-appeal"),
    path("appeals/", appeals.AppealListView.as_view(), name="appeal-list"),
    path("appeals/<int:pk>/decision/", appeals.AppealDecisionView.as_view(), name="appeal-decision"),
    path("statistics/", stats.StatisticsView.as_view(), name="statistics"),
    path("heatmaps/<int:pk>/", heatmaps.HeatmapImageView.as_view(), name="heatmap-image"),
    path("queue/", submissions.QueueView.as_view(), name="queue"),
    path("webhooks/", webhooks.WebhookListCreateView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", webhooks.WebhookDetailView.as_view(), name="webhook-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.DocsView.as_view(url_name="api:schema"), name="docs"),
    path("docs/redoc.standalone.js", docs.RedocBundleView.as_view(), name="redoc-bundle"),
]
