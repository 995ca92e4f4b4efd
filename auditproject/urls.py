"""Top-level routes: the apps' pages, the API under /api/, the admin, login and logout."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotations import urls as annotations_urls
from annotations.core.decorators import access_policy
from annotations.core.views import RateLimitedLoginView

urlpatterns = [
    path("login/", access_policy("public")(RateLimitedLoginView.as_view()), name="login"),
    path("logout/", access_policy("public")(auth_views.LogoutView.as_view()), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(annotations_urls.api_urlpatterns)),
    path("api/", include("inference.api.urls")),
    path("inference/", include("inference.urls")),
    path("", include("annotations.urls")),
]
