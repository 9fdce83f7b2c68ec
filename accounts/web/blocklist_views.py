"""The blocklists page (``/dashboard/blocklists``): the addresses the tenant's mailing lists
send nothing more to (unsubscribed, or added by hand), the dashboard side of
``/v1/blocklists``. Thin over ``mailboxes.blocklists``; an address added here is recorded
with source ``api`` as the API's are, and checked by the same rules."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import EmailAccount
from accounts.web.tenancy import tenant_view
from emailapi.proxies import client_address
from mailboxes import blocklists

PAGE_SIZE = 50


class BlockForm(forms.Form):
    list_id = forms.CharField(label="List id", max_length=blocklists.MAX_LIST_ID,
                              help_text="As sends name it with listId: newsletter, "
                                        "news.example")
    recipient = forms.EmailField(label="Address", max_length=320)
    account = forms.ChoiceField(label="Mailbox", help_text="The mailbox the entry is "
                                                           "recorded for")
    reason = forms.CharField(label="Reason", max_length=256, required=False,
                             help_text="Empty: block")

    def __init__(self, tenant, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [
            (a, a) for a in EmailAccount.objects.filter(tenant=tenant)
            .order_by("account_id").values_list("account_id", flat=True)[:1000]]

    def clean_list_id(self):
        value = self.cleaned_data["list_id"].strip()
        problem = blocklists.list_id_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value


def _list_url(list_id: str) -> str:
    return f"{reverse('web:blocklists')}?list={list_id}"


@tenant_view(write=True)
def blocklist_page(request):
    form = BlockForm(request.tenant, request.POST or None,
                     initial={"list_id": request.GET.get("list", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        added = blocklists.add(request.tenant, data["list_id"], data["recipient"],
                               data["account"], source="api",
                               reason=data.get("reason") or "block",
                               remote_address=client_address(request),
                               user_agent=request.headers.get("User-Agent", ""))
        messages.success(request, f"{data['recipient']} "
                                  f"{'blocked' if added else 'was blocked already'} on "
                                  f"{data['list_id']}.")
        return redirect(_list_url(data["list_id"]))
    list_id = request.GET.get("list", "")
    shown = None
    if list_id and not blocklists.list_id_problem(list_id):
        shown = Paginator(blocklists.entries(request.tenant, list_id), PAGE_SIZE) \
            .get_page(request.GET.get("page"))
    return render(request, "dashboard/blocklists.html", {
        "form": form, "lists": blocklists.lists(request.tenant)[:1000], "list_id": list_id,
        "entries": shown, "page": "blocklists"}, status=400 if form.errors else 200)


@require_POST
@tenant_view(write=True)
def blocklist_remove(request, list_id: str):
    recipient = request.POST.get("recipient", "")
    if not blocklists.remove(request.tenant, list_id, recipient):
        raise Http404("No such address on the list")
    messages.success(request, f"{recipient} removed from {list_id}: its sends reach it again.")
    return redirect(_list_url(list_id))
