"""The invitation link and its accept page (the use-cases are ``accounts.web.invitations``).

``/invitations/<token>`` moves the token into the session and sends the browser on to
``/invitations/accept``, whose address carries none (as Django's password reset does): the token
then cannot leak through a Referer, a screenshot or the history, and it survives the sign-in an
existing account needs first (signing in keeps the session's data).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.web import invitations
from accounts.web.forms import AcceptInvitationForm

SESSION_KEY = "invitation"
REFUSED = {404: "This invitation link is not valid. Check that you opened the whole link "
                "from the email.",
           410: "This invitation is no longer valid: it was accepted, cancelled, sent again or "
                "has expired. Ask the person who invited you for a new one."}


def open_link(request, token: str):
    try:
        invitations.check_token(token)
    except invitations.InvitationInvalid:
        return _refused(request, 404)
    request.session[SESSION_KEY] = token
    return redirect("web:invitation-accept")


def accept(request):
    token = request.session.get(SESSION_KEY)
    if not token:
        return _refused(request, 404)
    try:
        invitation = invitations.pending(token)
    except invitations.InvitationInvalid:
        return _refused(request, 404)
    except invitations.InvitationGone:
        return _refused(request, 410)
    if request.user.is_authenticated and not invitations.is_for(invitation, request.user):
        return render(request, "registration/invitation.html",
                      {"invitation": invitation, "wrong_user": True}, status=403)
    if invitations.has_account(invitation):
        return _accept_signed_in(request, token, invitation)
    return _accept_as_new_user(request, token, invitation)


def _accept_signed_in(request, token, invitation):
    """Someone who has an account joins only by agreeing, signed in as the invited address."""
    if not request.user.is_authenticated:
        return _sign_in_first()
    if request.method == "POST" and "accept" in request.POST:
        try:
            accepted = invitations.accept_as(token, request.user)
        except invitations.InvitationGone:
            return _refused(request, 410)
        return _joined(request, accepted)
    return render(request, "registration/invitation.html", {"invitation": invitation})


def _accept_as_new_user(request, token, invitation):
    form = AcceptInvitationForm(invitation.email, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accepted = invitations.accept_as_new_user(token, form.cleaned_data["password"])
        except invitations.InvitationGone:
            return _refused(request, 410)
        except invitations.AccountExists:  # signed up meanwhile: sign in, then accept
            return _sign_in_first()
        login(request, accepted.user, backend="django.contrib.auth.backends.ModelBackend")
        return _joined(request, accepted)
    return render(request, "registration/invitation.html",
                  {"invitation": invitation, "form": form},
                  status=400 if form.errors else 200)


def _joined(request, accepted: invitations.Accepted):
    request.session.pop(SESSION_KEY, None)
    request.session["tenant_id"] = accepted.membership.tenant_id
    messages.success(request, f"Welcome to {accepted.membership.tenant.name}.")
    return redirect("web:overview")


def _sign_in_first():
    return redirect_to_login(reverse("web:invitation-accept"), reverse("web:login"))


def _refused(request, status: int):
    return render(request, "registration/invitation.html", {"refused": REFUSED[status]},
                  status=status)
