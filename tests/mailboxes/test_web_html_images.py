"""What an image in a shown message may load (``web_html.with_images_limited``): pure, no
servers. The dashboard's message view relies on it; its browser test shows the whole page."""

from mailboxes import web_html

MAIL = ("<p>hello</p><img src='/pwned-image'><img src='https://tracker.example/p.png'>"
        "<img src='data:image/png;base64,iVBORw0KGgo='><img src=' //evil.example/x'>"
        "<img src='cid:logo@x'>")


def test_without_remote_images_only_the_messages_own_images_keep_a_source():
    shown = web_html.with_images_limited(MAIL, remote=False)
    assert shown.count("src=") == 1
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in shown


def test_remote_images_when_asked_for_but_never_a_relative_or_schemeless_one():
    shown = web_html.with_images_limited(MAIL, remote=True)
    assert 'src="https://tracker.example/p.png"' in shown
    assert "pwned" not in shown
    assert "evil.example" not in shown


def test_the_text_and_other_markup_stay():
    assert "<p>hello</p>" in web_html.with_images_limited(MAIL, remote=False)
