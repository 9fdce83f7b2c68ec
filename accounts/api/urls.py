from django.urls import path

from accounts.api import views

urlpatterns = [
    path("account", views.AccountView.as_view(), name="account-create"),
    path("accounts", views.AccountListView.as_view(), name="account-list"),
    path("account/<str:account>", views.AccountDetailView.as_view(), name="account-detail"),
    path("account/<str:account>/reconnect", views.AccountReconnectView.as_view(),
         name="account-reconnect"),
    path("account/<str:account>/pause", views.AccountPauseView.as_view(), name="account-pause"),
    path("account/<str:account>/resume", views.AccountResumeView.as_view(),
         name="account-resume"),
    path("verifyAccount", views.VerifyAccountView.as_view(), name="verify-account"),
    path("tokens", views.TokenListView.as_view(), name="token-list"),
    path("token", views.TokenCreateView.as_view(), name="token-create"),
    path("token/<int:token_id>", views.TokenDetailView.as_view(), name="token-detail"),
]
