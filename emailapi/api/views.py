"""The base class of every /v1 view: the one place where a request is tied to a tenant.

After DRF's pipeline has authenticated the token and checked its scope, ``self.tenant`` is the
caller's tenant, and object lookups (``get_account``) search only inside it. Views never query
a model without starting from ``self.tenant``.
"""

from __future__ import annotations

from rest_framework.views import APIView

from accounts.models import EmailAccount
from emailapi.api.errors import NotFoundError


class TenantScopedAPIView(APIView):
    @property
    def tenant(self):
        return self.request.user.tenant

    def get_account(self, account_id: str) -> EmailAccount:
        account = EmailAccount.objects.filter(tenant=self.tenant, account=account_id).first()
        if account is None:
            raise NotFoundError(f"Account {account_id!r} not found", "AccountNotFound")
        return account

    def validated(self, serializer_class, data, **kwargs) -> dict:
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
