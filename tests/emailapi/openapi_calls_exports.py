"""Real calls of the export routes for ``test_openapi.test_real_responses_match_the_document``,
on the synced account ``box`` of ``_read_api_calls``: created, refused, its status, the list,
a download (completed, and not yet), another tenant's 404 and the delete."""

from __future__ import annotations

import gzip

from mailboxes.models import Export, ExportChunk

RANGE = {"startDate": "2024-01-01T00:00:00Z", "endDate": "2025-01-01T00:00:00Z"}


def _export_calls(alice, bob):
    api = alice.client
    base = "/v1/account/box/export"
    done = api.post(base, RANGE, format="json").json()["exportId"]
    waiting = api.post(base, {**RANGE, "folders": ["\\Inbox"]}, format="json").json()["exportId"]
    # What the job leaves (it runs in tests/mailboxes/test_exports.py): completed, a file.
    export = Export.objects.get(export_id=done)
    Export.objects.filter(pk=export.pk).update(status="completed", phase="complete")
    ExportChunk.objects.create(export=export, seq=0, data=gzip.compress(b'{"id": "x"}\n'))
    return [
        ("/v1/account/{account}/export", "post", lambda: api.post(base, RANGE, format="json")),
        ("/v1/account/{account}/export", "post",
         lambda: api.post(base, {**RANGE, "textType": "pdf"}, format="json")),
        ("/v1/account/{account}/export/{exportId}", "get", lambda: api.get(f"{base}/{done}")),
        ("/v1/account/{account}/export/{exportId}", "get", lambda: api.get(f"{base}/{waiting}")),
        ("/v1/account/{account}/export/{exportId}", "get",
         lambda: bob.client.get(f"{base}/{done}")),
        ("/v1/account/{account}/export/{exportId}/download", "get",
         lambda: api.get(f"{base}/{done}/download")),
        ("/v1/account/{account}/export/{exportId}/download", "get",
         lambda: api.get(f"{base}/{waiting}/download")),
        ("/v1/account/{account}/exports", "get",
         lambda: api.get("/v1/account/box/exports?pageSize=1")),
        ("/v1/account/{account}/exports", "get",
         lambda: api.get("/v1/account/box/exports?page=-1")),
        ("/v1/account/{account}/export", "post", lambda: api.post(base, RANGE, format="json")),
        ("/v1/account/{account}/export/{exportId}", "delete",
         lambda: api.delete(f"{base}/{waiting}")),
        ("/v1/account/{account}/export/{exportId}", "delete",
         lambda: api.delete(f"{base}/{waiting}")),
    ]
