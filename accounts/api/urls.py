from django.urls import path

from accounts.api import views

urlpatterns = [
    path("account", views.AccountView.as_view(), name="account-create"),
    path("accounts", views.AccountListView.as_view(), name="account-list"),
    path("account/<str:account>", views.AccountDetailView.as_view(), name="account-detail"),
    path("verifyAccount", views.VerifyAccountView.as_view(), name="verify-account"),
    path("tokens", views.TokenListView.as_view(), name="token-list"),
    path("token", views.TokenCreateView.as_view(), name="token-create"),
    path("token/<int:token_id>", views.TokenDetailView.as_view(), name="token-detail"),
]
