"""Scope checks for API tokens: ``api`` may do anything, ``read`` only read, ``metrics`` only
read metrics routes (views opt in with ``metrics_route = True``)."""

from __future__ import annotations

from rest_framework import permissions

from accounts import tokens


class HasTokenScope(permissions.BasePermission):
    message = "This token's scopes do not allow this request"
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        scopes = getattr(request.user, "scopes", None)
        if scopes is None:
            return False
        write = request.method not in permissions.SAFE_METHODS and not getattr(
            view, "read_only_post", False
        )
        return tokens.allows(scopes, write=write, metrics=getattr(view, "metrics_route", False))
