"""Redis unreachable where a request needs it is ``503`` with ``Retry-After``, never a 500: the
hosted connect page (its links are single-use, recorded in Redis) and the API's exception
handler. Redis goes away for this process only, through a cut ``TcpProxy``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis
from django.test import Client

from emailapi.api.errors import exception_handler
from tests.accounts.oauth2_helpers import local, make_link
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    """Point this process at a Redis that refuses every connection."""
    with TcpProxy(urlsplit(settings.REDIS_URL).port or 6379) as proxy:
        proxy.cut()
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/0"
        yield proxy


def test_the_hosted_connect_page_is_503_while_redis_is_down(alice, settings, request):
    link = local(make_link(alice, type="imap", email="ann@example.com"))
    assert Client().get(link).status_code == 200  # Redis up: the page
    request.getfixturevalue("redis_down")

    response = Client(raise_request_exception=False).get(link)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Traceback" not in response.content
    assert b"redis" not in response.content.lower()


def test_the_api_answers_a_redis_outage_with_503():
    response = exception_handler(redis.exceptions.ConnectionError("Error 111 connecting"), {})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["code"] == "ServiceUnavailable"
    assert "111" not in response.data["message"]
