from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("django-admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("moderation.urls")),
    path("", include("detection.urls")),
]

handler400 = "portal.views.bad_request"
