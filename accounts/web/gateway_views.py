"""SMTP gateway pages: the tenant's gateways (list, add or replace, delete), the dashboard side
of ``/v1/gateway``. Thin over ``mailboxes.gateways`` and validated by the API's own serializer
(``GatewayForm``), so a page and the API accept the same gateways. The password goes in
through a password input and never comes back out: the page says only whether one is set."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.errors import HostNotAllowed
from accounts.web.errors import show_on_form
from accounts.web.forms import add_api_errors
from accounts.web.tenancy import tenant_view
from mailboxes import gateways
from mailboxes.api.gateways import GatewayCreateSerializer
from mailboxes.models import SmtpGateway


class GatewayForm(forms.Form):
    gateway = forms.CharField(label="Gateway id", max_length=256, required=False,
                              help_text="Empty: one is made. An id you have replaces that "
                                        "gateway's settings.")
    name = forms.CharField(label="Name", max_length=256)
    host = forms.CharField(label="SMTP server", max_length=255)
    port = forms.IntegerField(label="Port", min_value=1, max_value=65535, initial=587)
    secure = forms.BooleanField(label="TLS from the start (port 465)", required=False)
    user = forms.CharField(label="User", max_length=1024, required=False)
    password = forms.CharField(label="Password", max_length=1024, required=False, strip=False,
                               widget=forms.PasswordInput(render_value=False))
    tls_verify = forms.BooleanField(label="Verify the server's TLS certificate", required=False,
                                    initial=True)

    API_FIELDS = {"gateway": "gateway", "name": "name", "host": "host", "port": "port",
                  "secure": "secure", "user": "user", "pass": "password", "tls": "tls_verify"}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        body = {"gateway": data.get("gateway") or None, "name": data["name"],
                "host": data["host"], "port": data["port"], "secure": data["secure"],
                "user": data.get("user") or None, "pass": data.get("password") or None,
                "tls": {"rejectUnauthorized": bool(data.get("tls_verify"))}}
        serializer = GatewayCreateSerializer(data=body)
        if serializer.is_valid():
            self.payload = dict(serializer.validated_data)
        else:
            add_api_errors(self, serializer.errors, self.API_FIELDS)
        return data


@tenant_view(write=True)
def gateway_list(request):
    form = GatewayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        payload = dict(form.payload)
        try:
            gateway, state = gateways.save(request.tenant, payload.pop("gateway", None), payload)
        except HostNotAllowed as exc:
            show_on_form(form, exc, {HostNotAllowed: "host"})
        else:
            messages.success(request, f"Gateway {gateway.gateway_id} "
                                      f"{'added' if state == 'new' else 'replaced'}.")
            return redirect("web:gateways")
    rows = SmtpGateway.objects.filter(tenant=request.tenant).order_by("created_at", "id")
    return render(request, "dashboard/gateways.html", {
        "form": form, "gateways": rows, "page": "gateways"},
        status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def gateway_delete(request, gateway_id: str):
    gateway = gateways.find(request.tenant, gateway_id)
    if gateway is None:
        raise Http404("No such gateway")
    gateways.delete(gateway)
    messages.success(request, f"Gateway {gateway_id} deleted.")
    return redirect("web:gateways")
