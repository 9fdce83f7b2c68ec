"""Scope checks for API tokens: ``api`` may do anything, ``read`` only read, ``metrics`` only
read metrics routes (views opt in with ``metrics_route = True``).

"Read" means "changes nothing", not "uses GET": a view whose GET can change something (a
message's ``\\Seen`` flag with ``markAsSeen=true``) says so with a ``request_writes(request)``
method, and such a request needs a scope that may write, whatever its method (HEAD runs the GET
handler, so it is judged the same way).
"""

from __future__ import annotations

from rest_framework import permissions, serializers

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
        writes_on_read = getattr(view, "request_writes", None)
        if not write and writes_on_read is not None:
            reason = writes_on_read(request)
            if reason:
                write = True
                self.message = f"{reason}: this token's scopes allow reading only"
        return tokens.allows(scopes, write=write, metrics=getattr(view, "metrics_route", False))


def true_option(request, name: str) -> bool:
    """Whether query parameter ``name`` is true as the view's own ``BooleanField`` will read it
    (``true``, ``1``, ``yes``, ``on``...); a value it refuses counts as false here, and the
    view's validation answers 400 for it."""
    value = request.query_params.get(name)
    if value is None:
        return False
    try:
        return serializers.BooleanField().to_internal_value(value) is True
    except serializers.ValidationError:
        return False
