from django.urls import path

from accounts.api import oauth2_views as views

urlpatterns = [
    path("oauth2", views.OAuth2AppListView.as_view(), name="oauth2-app-list"),
    path("oauth2/<str:app>", views.OAuth2AppDetailView.as_view(), name="oauth2-app-detail"),
    path("authentication/form", views.AuthenticationFormView.as_view(),
         name="authentication-form"),
    path("autoconfig", views.AutoconfigView.as_view(), name="autoconfig"),
]
