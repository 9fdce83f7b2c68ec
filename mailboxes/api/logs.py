"""``GET /v1/logs/{account}``: the account's IMAP/SMTP protocol log (EmailEngine's route),
kept while the account's ``logs`` is on (``mailboxes.protocol_log``: redacted, capped, in
Redis)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema

from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from mailboxes import protocol_log


class AccountLogView(TenantScopedAPIView):
    @extend_schema(
        operation_id="getAccountLogs", tags=["Logs"], parameters=[ACCOUNT_PARAM],
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)},
        summary="Protocol log of an account (EmailEngine's route)",
        description="The last IMAP and SMTP lines of the account's connections, oldest first, "
                    "one JSON object per line: `{time, proto, cid, src, msg}` (`src`: `c` the "
                    "client, `s` the server; `cid` tells connections apart). Kept only while "
                    "the account's `logs` is true, at most `EMAILAPI_ACCOUNT_LOG_LINES` lines. "
                    "Passwords, tokens and AUTHENTICATE/LOGIN/AUTH payloads are replaced by "
                    "`***`; message contents are logged by their size only.")
    def get(self, request, account):
        lines = [json.dumps(entry, ensure_ascii=False)
                 for entry in protocol_log.read(self.email_account.pk)]
        body = "".join(line + "\n" for line in lines)
        return HttpResponse(body, content_type="text/plain; charset=utf-8")
