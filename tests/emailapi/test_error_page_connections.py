"""An error page gives its database connection back.

Under ASGI, Django renders the answer to an exception (``response_for_exception``) on a thread
of the event loop's default executor (``thread_sensitive=False``), not on the request's own
thread, where ``request_finished`` closes connections. The 404 for a URL no route matches is
the first to read the signed-in user (no view ran): its menu took a pooled connection on that
thread and kept it for as long as the thread lived. Found by the dashboard fuzz
(``tests/dashboard/test_fuzz_pages.py``), whose pool ran dry and answered every request after
that with a 503 after the pool's wait; a process with as many executor threads as pooled
connections (``min(32, cores + 4)`` against ``EMAILAPI_DB_POOL_SIZE``, 10) runs dry for good
on a machine of six cores or more, until its watchdog restarts it. A view's own 404 and 403
read the user on the request's thread first; they stay here so that it stays so.

The requests go to ``emailapi.asgi.application`` in this process, in one event loop (one
executor), as a web process serves them.
"""

from __future__ import annotations

import asyncio

import pytest
from django.test import Client

from accounts.models import Membership, User
from emailapi.lib import dbpool
from tests import asgi_calls

pytestmark = pytest.mark.django_db(transaction=True)

# More than the default executor's threads on any machine this runs on (min(32, cores + 4)).
ROUNDS = 40


def _in_use() -> int:
    stats = dbpool.pool().get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.mark.parametrize(("path", "method", "status"), [
    ("/dashboard/no-such-page", "GET", 404),  # no route: the resolver's 404
    ("/dashboard/mailboxes/no-such-mailbox", "GET", 404),  # a view's Http404
    ("/dashboard/team/1/remove", "POST", 403),  # a viewer's write: PermissionDenied
])
def test_an_error_page_for_a_signed_in_user_returns_its_connection(alice, path, method, status):
    from emailapi.asgi import application

    if dbpool.pool() is None:
        pytest.skip("PostgreSQL's pool only")
    user = User.objects.create_user(email="viewer@alice.test", password="Correct-Horse-Battery-9")
    Membership.objects.create(tenant=alice.tenant, user=user, role="viewer")
    client = Client()
    client.force_login(user)
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    before = _in_use()

    async def one():
        answer, _, page = await asgi_calls.call(application, method, path, "", b"", headers)
        return answer, b"Start free trial" not in page

    async def main():  # at once, as a busy web process serves them: every executor thread
        return await asyncio.gather(*(one() for _ in range(ROUNDS)))

    answers = asgi_calls.run(main)
    assert {answer for answer, _ in answers} == {status}
    assert all(signed for _, signed in answers), "the page no longer knows who is signed in"
    assert _in_use() == before
