from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import obtain_auth_token

from api import views

app_name = "api"

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("submissions/", views.SubmissionListCreateView.as_view(), name="submission-list"),
    path("submissions/<int:pk>/", views.SubmissionDetailView.as_view(), name="submission-detail"),
    path("submissions/<int:pk>/original/", views.SubmissionOriginalView.as_view(), name="submission-original"),
    path("submissions/<int:pk>/decision/", views.SubmissionDecisionView.as_view(), name="submission-decision"),
    path("submissions/<int:pk>/requeue/", views.SubmissionRequeueView.as_view(), name="submission-requeue"),
    path("submissions/<int:pk>/reanalyse/", views.SubmissionReanalyseView.as_view(), name="submission-reanalyse"),
    path("submissions/<int:pk>/appeal/", views.SubmissionAppealView.as_view(), name="submission-appeal"),
    path("appeals/", views.AppealListView.as_view(), name="appeal-list"),
    path("appeals/<int:pk>/decision/", views.AppealDecisionView.as_view(), name="appeal-decision"),
    path("statistics/", views.StatisticsView.as_view(), name="statistics"),
    path("heatmaps/<int:pk>/", views.HeatmapImageView.as_view(), name="heatmap-image"),
    path("queue/", views.QueueView.as_view(), name="queue"),
    path("webhooks/", views.WebhookListCreateView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    path("docs/redoc.standalone.js", views.RedocBundleView.as_view(), name="redoc-bundle"),
]
