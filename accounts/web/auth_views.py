"""Sign-up, sign-in, sign-out and email verification pages (password reset is Django's own,
wired in ``accounts.web.urls`` with our templates)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.web import login_limit, onboarding
from accounts.web.forms import EMAIL_TAKEN, LoginForm, SignupForm

TOO_MANY = ("Too many failed sign-in attempts. Wait 15 minutes, or reset your password "
            "below.")
BAD_LOGIN = "Email or password is incorrect."


def signup(request):
    if request.user.is_authenticated:
        return redirect("web:overview")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            tenant, user = onboarding.sign_up(data["organization"], data["email"],
                                              data["password"])
        except onboarding.EmailTaken:  # the same form sent twice, the other one first
            form.add_error("email", EMAIL_TAKEN)
            return render(request, "registration/signup.html", {"form": form}, status=400)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session["tenant_id"] = tenant.pk
        unsent = onboarding.send_verification(request, user)
        if unsent:
            messages.warning(request, f"Welcome to emailapi! We could not send the confirmation "
                                      f"link to {user.email} ({unsent}): send it again later.")
        else:
            messages.success(request, f"Welcome to emailapi! We sent a confirmation link to "
                                      f"{user.email}.")
        return redirect("web:overview")
    return render(request, "registration/signup.html", {"form": form}, status=_status(request, form))


def login_view(request):
    if request.user.is_authenticated:
        return redirect("web:overview")
    form = LoginForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        email, ip = form.cleaned_data["email"], login_limit.client_address(request)
        if login_limit.blocked(email, ip):
            error = TOO_MANY
        else:
            user = authenticate(request, email=email, password=form.cleaned_data["password"])
            if user is None:
                login_limit.record_failure(email, ip)
                error = BAD_LOGIN
            else:
                login_limit.clear(email)
                login(request, user)
                return redirect(_safe_next(request) or reverse("web:overview"))
    status = 400 if error or form.errors else 200
    return render(request, "registration/login.html",
                  {"form": form, "error": error, "next": request.GET.get("next", "")},
                  status=status)


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("web:login")


def verify_email(request, token: str):
    user = onboarding.verify_email(token)
    if user is None:
        messages.error(request, "This confirmation link is invalid or has expired. Sign in and "
                                "ask for a new one.")
    else:
        messages.success(request, "Your email address is confirmed.")
    return redirect("web:overview" if request.user.is_authenticated else "web:login")


@require_POST
def resend_verification(request):
    if request.user.is_authenticated and request.user.email_verified_at is None:
        unsent = onboarding.send_verification(request, request.user)
        if unsent:
            messages.error(request, f"The confirmation link could not be sent ({unsent}). Try "
                                    f"again later.")
        else:
            messages.success(request,
                             f"We sent a new confirmation link to {request.user.email}.")
    return redirect("web:overview")


def _status(request, form) -> int:
    return 400 if request.method == "POST" and form.errors else 200


def _safe_next(request) -> str | None:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return None

