"""Routes of the account API (under /v1, namespace ``accounts``): one view class per path."""

from django.urls import path

from accounts.api import accounts, connect, oauth2, stats, tokens
from emailapi.api import path_ids  # noqa: F401  (registers the <id:...> converter)

app_name = "accounts"

urlpatterns = [
    path("account", accounts.AccountView.as_view(), name="account-create"),
    path("accounts", accounts.AccountListView.as_view(), name="account-list"),
    path("account/<id:account>", accounts.AccountDetailView.as_view(), name="account-detail"),
    path("account/<id:account>/reconnect", accounts.AccountReconnectView.as_view(),
         name="account-reconnect"),
    path("account/<id:account>/pause", accounts.AccountPauseView.as_view(),
         name="account-pause"),
    path("account/<id:account>/resume", accounts.AccountResumeView.as_view(),
         name="account-resume"),
    path("account/<id:account>/sync", accounts.AccountSyncView.as_view(),
         name="account-sync"),
    path("account/<id:account>/flush", accounts.AccountFlushView.as_view(),
         name="account-flush"),
    path("stats", stats.StatsView.as_view(), name="stats"),
    path("verifyAccount", accounts.VerifyAccountView.as_view(), name="verify-account"),
    path("tokens", tokens.TokenListView.as_view(), name="token-list"),
    path("tokens/account/<id:account>", tokens.AccountTokenListView.as_view(),
         name="account-token-list"),
    path("tokens/<str:token>", tokens.TokenItemView.as_view(), name="token-item"),
    path("token", tokens.TokenCreateView.as_view(), name="token-create"),
    path("token/<str:token>", tokens.TokenDetailView.as_view(), name="token-detail"),
    path("oauth2", oauth2.OAuth2AppListView.as_view(), name="oauth2-app-list"),
    path("oauth2/<id:app>", oauth2.OAuth2AppDetailView.as_view(), name="oauth2-app-detail"),
    path("authentication/form", connect.AuthenticationFormView.as_view(),
         name="authentication-form"),
    path("autoconfig", connect.AutoconfigView.as_view(), name="autoconfig"),
]
