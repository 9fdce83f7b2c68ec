"""``data:`` URLs in web-safe HTML (``web_html``): kept only as an image's ``src`` of an
``image/*`` type, however the scheme is written. A URL parser (the browser's, and nh3's own
scheme check) drops tabs and line breaks anywhere in a URL and C0 controls around it, so
``d&#9;ata:text/html,...`` is a ``data:`` link to both; the filter reads it the same way.
Pure: no servers."""

from __future__ import annotations

import pytest

from mailboxes import web_html

PAGE = "text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
WRITTEN = {
    "tab inside": f"d&#9;ata:{PAGE}",
    "line feed inside": f"da&#10;ta:{PAGE}",
    "carriage return inside": f"dat&#13;a:{PAGE}",
    "control before": f"&#1;data:{PAGE}",
    "control and tab": f"&#31;D&#9;ATA:{PAGE}",
}
CLEANERS = {"webSafeHtml": web_html.sanitize,
            "dashboard": lambda html: web_html.with_images_limited(html, remote=True)}


@pytest.mark.parametrize("clean", CLEANERS.values(), ids=CLEANERS.keys())
@pytest.mark.parametrize("url", WRITTEN.values(), ids=WRITTEN.keys())
def test_a_data_link_is_dropped_however_its_scheme_is_written(clean, url):
    shown = clean(f'<a href="{url}">open</a><img src="{url}">')
    assert "base64" not in shown
    assert "open" in shown


def test_an_image_written_with_a_tab_before_its_data_url_is_kept():
    shown = web_html.sanitize('<img src="&#9;data:image/png;base64,iVBORw0KGgo=">')
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in shown


def test_a_tab_in_an_ordinary_link_is_left_alone():
    shown = web_html.sanitize('<a href="https://example.com/da&#9;ta:x">x</a>')
    assert 'href="https://example.com/da\tta:x"' in shown
