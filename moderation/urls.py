from django.urls import path

from moderation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("submissions/", views.submission_list, name="submission_list"),
    path("submissions/<int:pk>/", views.submission_detail, name="submission_detail"),
    path("submissions/<int:pk>/original", views.submission_original, name="submission_original"),
    path("submissions/<int:pk>/decide", views.submission_decide, name="submission_decide"),
    path("submissions/<int:pk>/requeue", views.submission_requeue, name="submission_requeue"),
    path("heatmaps/<int:pk>.png", views.heatmap_image, name="heatmap_image"),
    path("queue/", views.queue, name="queue"),
]
