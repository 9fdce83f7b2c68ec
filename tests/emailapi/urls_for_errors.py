"""A URL map for error-path tests: the real routes plus one view that fails."""

from django.urls import path
from rest_framework.response import Response

from emailapi.api.views import TenantScopedAPIView
from emailapi.urls import urlpatterns as real_urlpatterns


class BrokenView(TenantScopedAPIView):
    def get(self, request):
        raise RuntimeError("secret internal detail: password=hunter2")

    def post(self, request):
        return Response({})


urlpatterns = [path("v1/broken", BrokenView.as_view()), *real_urlpatterns]
handler404 = "emailapi.handlers.not_found"
handler500 = "emailapi.handlers.server_error"
