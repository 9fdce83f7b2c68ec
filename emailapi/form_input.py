"""A form field holding NUL is a 400 before any view of the site sees it.

PostgreSQL's text type cannot hold or compare NUL, so a NUL that reaches a query is a
``DataError`` and a 500. NUL is refused at every other door already: in a URL before Django
(``emailapi.api.asgi_input``), in a JSON body by the API's parser (``emailapi.api.parsers``), in a
Django form's ``CharField`` by its own validator. A view that reads ``request.POST`` straight
was the gap: the dashboard's "Connect" button posts the OAuth2 app's id as ``app``, and
``app=%00`` reached the app lookup (found by ``tests/dashboard/test_fuzz_pages.py``). No field of
a form typed by a person holds NUL, so this refuses it for every form of the site, once.
"""

from __future__ import annotations

from django.shortcuts import render

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class FormInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or request.content_type not in FORM_TYPES:
            return None
        if any("\x00" in name or any("\x00" in value for value in values)
               for name, values in request.POST.lists()):
            return render(request, "400.html", {
                "message": "A form field holds a NUL character, which no field accepts. "
                           "Nothing was changed."}, status=400)
        return None
