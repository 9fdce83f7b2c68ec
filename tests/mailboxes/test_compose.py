"""``mailboxes.compose`` and its serializer as pure functions: no server, no database.

Every built message is parsed back with the standard library, so the assertions are about
what a mail client reading it would see, not about the bytes we happen to write.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser

import pytest

from accounts.models import EmailAccount
from emailapi.api.errors import status_of
from mailboxes import compose, errors
from mailboxes.api.compose_serializer import MessageFieldsSerializer
from tests.servers import seed

ACCOUNT = EmailAccount(account_id="box", email="me@example.com", name="Mé Self")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def parsed(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def text_of(part) -> str:
    """Decoded text with \n line ends (quoted-printable keeps the wire's CRLF)."""
    return part.get_content().replace("\r\n", "\n")


def original(action: str, message_id: str = "<orig@example.com>", **extra) -> compose.Original:
    target = compose.ReferenceTarget(message="MSGID", action=action, folder_id=1,
                                     path="INBOX", uid=7, message_id=message_id)
    values = dict(subject="Lunch?", from_={"name": "Ann", "address": "ann@example.com"},
                  to=[{"name": "Me", "address": "me@example.com"},
                      {"name": "Carl", "address": "carl@example.com"}],
                  cc=[{"name": "", "address": "dora@example.com"}],
                  date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                  references=["<root@example.com>"],
                  text="Shall we?\nAt noon.", html="<p>Shall we?</p>")
    values.update(extra)
    return compose.Original(target=target, **values)


def loader(found: compose.Original, calls: list | None = None):
    def load(account, reference, with_text, with_source):
        if calls is not None:
            calls.append((reference["message"], with_text, with_source))
        return found
    return load


def test_wire_format_is_crlf_and_7bit_clean_with_rfc2047_names_and_subject():
    composed = compose.compose(ACCOUNT, {
        "to": [{"name": "Zoë Ünïcode", "address": "zoe@example.com"}],
        "subject": "Grüße 🎉", "text": "Hällo\nWelt"})
    raw = composed.raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()
    message = parsed(raw)
    assert message["Subject"] == "Grüße 🎉"
    assert message["To"].addresses[0].display_name == "Zoë Ünïcode"
    assert message["From"].addresses[0].display_name == "Mé Self"  # the account's default
    assert text_of(message) == "Hällo\nWelt\n"
    assert composed.subject == "Grüße 🎉"
    assert composed.envelope_from == "me@example.com"
    assert composed.envelope_to == ["zoe@example.com"]
    assert message["Message-ID"] == composed.message_id
    assert composed.message_id.startswith("<")
    assert composed.message_id.endswith("@example.com>")


def test_an_internationalised_domain_is_written_as_punycode_in_headers_and_envelope():
    composed = compose.compose(ACCOUNT, {"to": [{"address": "z@bücher.de"}], "text": "x"})
    assert parsed(composed.raw)["To"].addresses[0].addr_spec == "z@xn--bcher-kva.de"
    assert composed.envelope_to == ["z@xn--bcher-kva.de"]


def test_text_html_inline_image_and_attachment_make_the_smallest_mime_tree():
    png, pdf = seed.tiny_png(), seed.tiny_pdf()
    message = parsed(compose.compose(ACCOUNT, {
        "to": [{"address": "x@example.com"}], "text": "plain", "html": '<img src="cid:logo">',
        "attachments": [
            {"filename": "logo.png", "contentType": "image/png", "content": png, "cid": "logo"},
            {"filename": "Résumé.pdf", "contentType": "application/pdf", "content": pdf}],
    }).raw)
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<logo>"
    assert image.get_content() == png
    assert attachment.get_filename() == "Résumé.pdf"
    assert attachment.get_content() == pdf
    assert attachment.get_content_disposition() == "attachment"
    assert [p["MIME-Version"] for p in message.walk()].count("1.0") == 1


def test_html_only_and_attachment_only_messages():
    html_only = parsed(compose.compose(ACCOUNT, {"to": [{"address": "x@example.com"}],
                                                 "html": "<b>hi</b>"}).raw)
    assert html_only.get_content_type() == "text/html"
    files_only = parsed(compose.compose(ACCOUNT, {
        "to": [{"address": "x@example.com"}],
        "attachments": [{"filename": "a.txt", "content": b"abc"}]}).raw)
    assert files_only["MIME-Version"] == "1.0"
    (part,) = [p for p in files_only.walk() if p.get_filename()]
    assert part.get_content_type() == "text/plain"
    assert part.get_content() == "abc"


def test_bcc_stays_in_the_envelope_of_a_sent_message_and_in_the_headers_of_a_draft():
    fields = {"to": [{"address": "to@example.com"}], "bcc": [{"address": "hidden@example.com"}],
              "text": "x"}
    sent = compose.compose(ACCOUNT, fields)
    assert "Bcc" not in parsed(sent.raw)
    assert b"hidden" not in sent.raw
    assert sent.envelope_to == ["to@example.com", "hidden@example.com"]
    draft = compose.compose(ACCOUNT, fields, for_sending=False)
    assert parsed(draft.raw)["Bcc"].addresses[0].addr_spec == "hidden@example.com"


def test_an_explicit_envelope_overrides_the_headers():
    composed = compose.compose(ACCOUNT, {"to": [{"address": "to@example.com"}], "text": "x"},
                               {"from": "bounce@example.com", "to": ["other@example.com"]})
    assert (composed.envelope_from, composed.envelope_to) == \
        ("bounce@example.com", ["other@example.com"])


def test_sending_without_recipients_is_a_400_but_a_draft_may_have_none():
    with pytest.raises(errors.ComposeError) as caught:
        compose.compose(ACCOUNT, {"subject": "x"})
    assert status_of(caught.value) == 400
    assert caught.value.code == "NoRecipients"
    assert compose.compose(ACCOUNT, {"subject": "x"}, for_sending=False).envelope_to == []


@pytest.mark.parametrize("name,value", [
    ("X-Evil", "a\r\nBcc: victim@example.com"), ("X-Evil", "a\nB: c"), ("Bad Name", "x"),
    ("X:Colon", "x"), ("From", "evil@example.com"), ("Content-Type", "text/html"),
    ("MIME-Version", "2.0"), ("Message-ID", "<x@y>"), ("Bcc", "a@b.c"), ("Zoë", "x"),
])
def test_header_injection_and_structural_headers_are_refused(name, value):
    with pytest.raises(errors.ComposeError) as caught:
        compose.compose(ACCOUNT, {"to": [{"address": "x@example.com"}],
                                  "headers": {name: value}})
    assert status_of(caught.value) == 400
    serializer = MessageFieldsSerializer(data={"headers": {name: value}})
    assert not serializer.is_valid()
    assert "headers" in serializer.errors


def test_extra_headers_are_kept_and_encoded():
    message = parsed(compose.compose(ACCOUNT, {
        "to": [{"address": "x@example.com"}], "text": "x",
        "headers": {"X-Campaign": "spring ☀", "In-Reply-To": "<mine@example.com>"}}).raw)
    assert message["X-Campaign"] == "spring ☀"
    assert message["In-Reply-To"] == "<mine@example.com>"


def test_a_header_with_a_word_longer_than_a_line_goes_as_it_is():
    url = "<https://lists.example.com/unsubscribe?data=" + "a" * 300 + "&sig=b>"
    raw = compose.compose(ACCOUNT, {
        "to": [{"address": "x@example.com"}], "text": "x",
        "headers": {"List-Unsubscribe": url, "X-Long": " ".join(["word"] * 40), "X-Wide": "é" * 100}}).raw
    lines = raw.split(b"\r\n")
    assert f"List-Unsubscribe: {url}".encode() in lines  # one line, no encoded words
    assert max(len(line) for line in lines) <= 998
    message = parsed(raw)
    assert message["List-Unsubscribe"] == url
    assert message["X-Long"] == " ".join(["word"] * 40)  # folded, as short words are
    assert not any(line.startswith(b"X-Long") and len(line) > 78 for line in lines)
    assert message["X-Wide"] == "é" * 100  # not ASCII: encoded words, as before


def test_a_name_with_a_line_break_cannot_add_a_header():
    with pytest.raises(errors.ComposeError):
        compose.compose(ACCOUNT, {"to": [{"name": "x\r\nBcc: v@example.com",
                                          "address": "x@example.com"}]})
    serializer = MessageFieldsSerializer(data={"to": [{"name": "x\nBcc: v@example.com",
                                                       "address": "x@example.com"}]})
    assert not serializer.is_valid()


def test_a_given_message_id_is_used_and_a_malformed_one_refused():
    composed = compose.compose(ACCOUNT, {"to": [{"address": "x@example.com"}],
                                         "messageId": "abc@example.com"})
    assert composed.message_id == "<abc@example.com>"
    for bad in ("abc def@example.com", "no-at-sign", "<a@b>\r\nX: y"):
        assert not MessageFieldsSerializer(data={"messageId": bad}).is_valid(), bad


def test_reply_threads_addresses_the_sender_and_prefixes_the_subject():
    calls = []
    composed = compose.compose(ACCOUNT, {"reference": {"message": "MSGID", "action": "reply"},
                                         "text": "Yes!"},
                               load=loader(original("reply"), calls))
    message = parsed(composed.raw)
    assert message["In-Reply-To"] == "<orig@example.com>"
    assert message["References"].split() == ["<root@example.com>", "<orig@example.com>"]
    assert message["Subject"] == "Re: Lunch?"
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com"]
    assert "Cc" not in message
    assert composed.reference.uid == 7
    assert composed.reference.action == "reply"
    assert calls == [("MSGID", False, False)]  # not inline: no text fetched


def test_reply_goes_to_reply_to_and_keeps_an_existing_prefix():
    found = original("reply", subject="RE: Lunch?",
                     reply_to=[{"name": "List", "address": "list@example.com"}])
    message = parsed(compose.compose(ACCOUNT, {"reference": {"message": "M",
                                                             "action": "reply"}},
                                     load=loader(found)).raw)
    assert message["Subject"] == "RE: Lunch?"
    assert [a.addr_spec for a in message["To"].addresses] == ["list@example.com"]


def test_reply_all_copies_the_other_recipients_without_ourselves():
    message = parsed(compose.compose(ACCOUNT, {"reference": {"message": "M",
                                                             "action": "replyAll"}},
                                     load=loader(original("replyAll"))).raw)
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com"]
    assert [a.addr_spec for a in message["Cc"].addresses] == \
        ["carl@example.com", "dora@example.com"]


def test_a_reply_carries_a_senders_line_breaks_and_odd_ids_as_no_header_can():
    # A sender's =?utf-8?q?a=0D=0Ab?= decodes to a CR LF; a Message-ID may be anything.
    found = original("replyAll", subject="Lunch\r\nBcc: x@example.com\u2028now",
                     message_id="\x01𝔘 not-an-id",
                     from_={"name": "Ann\r\nX-Injected: 1", "address": "ann@example.com"},
                     to=[{"name": "Bad", "address": "bad\x0b@example.com"},
                         {"name": "Carl\x00", "address": "carl@example.com"}],
                     references=["<root@example.com>", "<\xe9t\xe9@example.com>", "<a b@x>"])
    message = parsed(compose.compose(ACCOUNT, {"reference": {"message": "M",
                                                             "action": "replyAll"}},
                                     load=loader(found)).raw)
    assert message["Subject"] == "Re: Lunch Bcc: x@example.com now"
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == \
        [("Ann X-Injected: 1", "ann@example.com")]
    assert [(a.display_name, a.addr_spec) for a in message["Cc"].addresses] == \
        [("Carl", "carl@example.com"), ("", "dora@example.com")]
    assert [name for name in ("Bcc", "X-Injected", "In-Reply-To", "References")
            if name in message] == []


def test_a_reply_keeps_the_threadable_references_of_a_threadable_original():
    found = original("reply", references=["<root@example.com>", "<\xe9t\xe9@example.com>",
                                          "no-brackets@example.com"])
    message = parsed(compose.compose(ACCOUNT, {"reference": {"message": "M", "action": "reply"}},
                                     load=loader(found)).raw)
    assert message["References"].split() == ["<root@example.com>", "<orig@example.com>"]


def test_given_recipients_and_subject_win_over_the_reference():
    message = parsed(compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "reply"}, "subject": "Other",
        "to": [{"address": "someone@example.com"}]}, load=loader(original("reply"))).raw)
    assert message["Subject"] == "Other"
    assert [a.addr_spec for a in message["To"].addresses] == ["someone@example.com"]


def test_inline_reply_quotes_the_original_text_and_html():
    calls = []
    message = parsed(compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "reply", "inline": True},
        "text": "Yes!", "html": "<p>Yes!</p>"}, load=loader(original("reply"), calls)).raw)
    plain = text_of(message.get_body(("plain",)))
    assert plain.startswith("Yes!\n\nOn ")
    assert "Ann <ann@example.com> wrote:" in plain
    assert "> Shall we?\n> At noon." in plain
    html = text_of(message.get_body(("html",)))
    assert "<blockquote" in html
    assert "<p>Shall we?</p>" in html
    assert calls == [("M", True, False)]


def test_the_quoted_date_is_in_the_requests_locale_and_time_zone_else_the_accounts():
    """EmailEngine's order: the request's ``locale``/``tz``, else the account's, else English
    and UTC (the original was sent 2026-01-02 03:04:05 UTC)."""
    reply = {"reference": {"message": "M", "action": "reply", "inline": True}, "text": "Ja"}

    def first_quote_line(account, fields):
        message = parsed(compose.compose(account, fields, load=loader(original("reply"))).raw)
        plain = text_of(message.get_body(("plain",)))
        return next(line for line in plain.splitlines() if line.startswith("On "))

    assert first_quote_line(ACCOUNT, reply) == (
        "On Fri, Jan 2, 2026, 3:04 AM, Ann <ann@example.com> wrote:")
    assert first_quote_line(ACCOUNT, {**reply, "locale": "de", "tz": "Europe/Berlin"}) == (
        "On Fr., 2. Jan. 2026, 4:04, Ann <ann@example.com> wrote:")
    french = EmailAccount(account_id="box", email="me@example.com",
                          ee_options={"locale": "fr", "tz": "America/New_York"})
    assert first_quote_line(french, reply) == (
        "On jeu. 1 janv. 2026, 22:04, Ann <ann@example.com> wrote:")
    assert first_quote_line(french, {**reply, "locale": "en-GB"}) == (
        "On Thu, 1 Jan 2026, 22:04, Ann <ann@example.com> wrote:")


def test_an_inline_forward_writes_the_date_line_in_the_locale():
    message = parsed(compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "forward", "inline": True},
        "to": [{"address": "eve@example.com"}], "locale": "ja", "tz": "Asia/Tokyo"},
        load=loader(original("forward"))).raw)
    assert "Date: 2026年1月2日(金) 12:04" in text_of(message.get_body(("plain",)))


def test_the_html_filter_sees_the_html_as_it_goes_out_with_its_message_id():
    seen = []

    def html_filter(html: str, message_id: str) -> str:
        seen.append((html, message_id))
        return html + "<!-- tracked -->"

    composed = compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "reply", "inline": True},
        "text": "Yes!", "html": "<p>Yes!</p>", "previewText": "Soon"},
        load=loader(original("reply")), html_filter=html_filter)
    (html, message_id), = seen
    assert message_id == composed.message_id
    assert "<p>Shall we?</p>" in html  # the quoted original
    assert "Soon" in html  # the preview text
    message = parsed(composed.raw)
    assert text_of(message.get_body(("html",))).endswith("<!-- tracked -->\n")
    assert "tracked" not in text_of(message.get_body(("plain",)))


def test_the_html_filter_is_not_called_without_html():
    def html_filter(html: str, message_id: str) -> str:
        raise AssertionError("called")

    compose.compose(ACCOUNT, {"to": [{"address": "a@example.com"}], "text": "Hi"},
                    html_filter=html_filter)
    compose.compose(ACCOUNT, {"raw": seed.make_message(body="Hi")}, html_filter=html_filter)


def test_a_raw_messages_html_part_goes_through_the_filter_with_its_message_id():
    seen = []

    def html_filter(html: str, message_id: str) -> str:
        seen.append((html.strip(), message_id))
        return html.replace("Hi", "Hi!")

    raw = seed.make_message(body="Hi", html="<p>Hi</p>", message_id="<raw@example.com>")
    composed = compose.compose(ACCOUNT, {"raw": raw}, html_filter=html_filter)
    assert seen == [("<p>Hi</p>", "<raw@example.com>")]
    assert text_of(parsed(composed.raw).get_body(("html",))).strip() == "<p>Hi!</p>"
    assert text_of(parsed(composed.raw).get_body(("plain",))).strip() == "Hi"
    unnamed = compose.compose(ACCOUNT, {"raw": seed.make_message(html="<p>Hi</p>")},
                              html_filter=html_filter)
    assert seen[-1] == ("<p>Hi</p>", unnamed.message_id)  # the Message-ID sending gave it


def test_forward_attaches_the_original_as_message_rfc822():
    source = seed.make_message(subject="Lunch?", body="Shall we?")
    calls = []
    composed = compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "forward"},
        "to": [{"address": "eve@example.com"}], "text": "FYI"},
        load=loader(original("forward", source=source), calls))
    message = parsed(composed.raw)
    assert message["Subject"] == "Fwd: Lunch?"
    assert "In-Reply-To" not in message
    (attached,) = [p for p in message.walk() if p.get_content_type() == "message/rfc822"]
    inner = attached.get_payload()[0]
    assert inner["Subject"] == "Lunch?"
    assert attached.get_filename() == "Lunch.eml"
    assert calls == [("M", False, True)]


def _digest(parts: int, text: bytes = b"x") -> bytes:
    """A digest: ``parts`` messages side by side, each its own container, one level deep."""
    inner = b"".join(b"--d\r\nContent-Type: message/rfc822\r\n\r\nSubject: %d\r\n"
                     b"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % (n, text)
                     for n in range(parts))
    return (b'Subject: Digest\r\nContent-Type: multipart/digest; boundary="d"\r\n\r\n'
            + inner + b"--d--\r\n")


def _attached_whole(source: bytes) -> bytes:
    return compose.compose(ACCOUNT, {"to": [{"address": "eve@example.com"}], "text": "x",
                                     "attachments": [{"filename": "d.eml",
                                                      "contentType": "message/rfc822",
                                                      "content": source}]}).raw


@pytest.mark.parametrize("parts", [60, 200])
def test_an_ascii_message_is_attached_byte_for_byte_however_many_its_parts(parts):
    source = _digest(parts)
    raw = _attached_whole(source)
    assert source in raw
    (attached,) = [p for p in parsed(raw).walk()
                   if p.get_content_type() == "message/rfc822" and p.get_filename() == "d.eml"]
    inner = attached.get_payload()[0]
    assert inner["Subject"] == "Digest"
    assert len(inner.get_payload()) == parts


def test_an_8bit_message_is_parsed_within_the_container_bound_and_sent_as_bytes_beyond():
    # 64 containers bound the depth the email package descends into by recursion.
    within, beyond = _digest(62, "é".encode()), _digest(64, "é".encode())
    message = parsed(_attached_whole(within))
    (attached,) = [p for p in message.iter_attachments()]
    assert attached.get_content_type() == "message/rfc822"
    assert len(attached.get_payload()[0].get_payload()) == 62
    raw = _attached_whole(beyond)
    assert raw.isascii()
    (attached,) = [p for p in parsed(raw).iter_attachments()]
    assert attached.get_content_type() == "application/octet-stream"
    assert attached.get_payload(decode=True) == beyond


def _forwarded(source: bytes) -> bytes:
    return compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "forward"},
        "to": [{"address": "eve@example.com"}], "text": "FYI"},
        load=loader(original("forward", source=source))).raw


def test_an_ascii_original_is_forwarded_byte_for_byte_however_long_its_fields():
    # 50 KB of quotes in a To field: the email package's parse of it grows with the square
    # of its length (18 s), and writing it again would refold it.
    source = (b'To: ' + b'"' * 50_000 + b"\r\nSubject: Quotes\r\nDKIM-Signature: v=1; b=x\r\n\r\n"
              + b"Body\r\n")
    raw = _forwarded(source)
    assert source in raw
    (attached,) = [p for p in parsed(raw).walk() if p.get_content_type() == "message/rfc822"]
    assert attached.get_filename() == "Lunch.eml"
    assert attached["Content-Transfer-Encoding"] == "7bit"


def test_an_8bit_original_is_parsed_within_bounds_and_sent_as_bytes_beyond():
    within = (b"To: ann@example.com\r\nSubject: Caf\xc3\xa9\r\nContent-Type: text/plain; "
              b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nh\xc3\xa9llo\r\n")
    beyond = b"To: " + b'"' * 5000 + b"\r\n" + within.partition(b"\r\n")[2]
    message = parsed(_forwarded(within))
    (attached,) = [p for p in message.walk() if p.get_content_type() == "message/rfc822"]
    assert attached.get_payload()[0].get_content() == "h\xe9llo\r\n"  # re-encoded, 7-bit clean
    raw = _forwarded(beyond)
    assert raw.isascii()
    (attached,) = [p for p in parsed(raw).iter_attachments()]
    assert attached.get_content_type() == "application/octet-stream"
    assert attached.get_filename() == "Lunch.eml"
    assert attached.get_payload(decode=True) == beyond


def test_an_8bit_original_the_email_package_cannot_write_again_goes_as_bytes():
    # Its ISO-2022-JP text holds bytes invalid there: they decode to U+FFFD, which ISO-2022-JP
    # cannot encode again, so rewriting it 7-bit clean fails (it failed the whole forward).
    source = (b"Subject: JP\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n\r\n\x1b$B$3\xff\x1b(B\r\n")
    raw = _forwarded(source)
    assert raw.isascii()
    (attached,) = [p for p in parsed(raw).iter_attachments()]
    assert attached.get_content_type() == "application/octet-stream"
    assert attached.get_payload(decode=True) == source


def test_an_attached_message_with_bare_line_feeds_goes_with_crlf():
    composed = compose.compose(ACCOUNT, {"to": [{"address": "eve@example.com"}], "text": "x",
                                         "attachments": [{"contentType": "message/rfc822",
                                                          "content": b"Subject: LF\n\nline\n"}]})
    assert b"Subject: LF\r\n\r\nline\r\n" in composed.raw
    assert b"\n" not in composed.raw.replace(b"\r\n", b"")


def test_an_html_only_original_is_quoted_as_its_text_stray_brackets_kept():
    # "<" without a ">" is text, as a browser shows it; the tag pattern used to scan from
    # each of them to the end (a 1 MB run: minutes).
    html = "<" * 20_000 + "<b>hi</b> a < b"
    composed = compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "reply", "inline": True}, "text": "Yes"},
        load=loader(original("reply", text=None, html=html)))
    plain = text_of(parsed(composed.raw).get_body(("plain",)))
    assert plain.endswith("> " + "<" * 20_000 + "hi a < b\n")


def test_inline_forward_quotes_the_header_block():
    message = parsed(compose.compose(ACCOUNT, {
        "reference": {"message": "M", "action": "forward", "inline": True},
        "to": [{"address": "eve@example.com"}]}, load=loader(original("forward"))).raw)
    plain = text_of(message.get_body(("plain",)))
    assert "---------- Forwarded message ---------" in plain
    assert "From: Ann <ann@example.com>" in plain
    assert "Shall we?" in plain
    assert not [p for p in message.walk() if p.get_content_type() == "message/rfc822"]


def test_raw_is_taken_as_is_for_a_draft_and_prepared_for_sending():
    raw = b"From: a@example.com\nTo: b@example.com\nBcc: c@example.com\nSubject: =?utf-8?q?h=C3=A9?=\n\nHi\n"
    draft = compose.compose(ACCOUNT, {"raw": raw}, for_sending=False)
    assert draft.raw == raw.replace(b"\n", b"\r\n")
    assert draft.message_id == ""
    sent = compose.compose(ACCOUNT, {"raw": raw})
    assert b"Bcc" not in sent.raw
    assert sent.raw.startswith(b"Message-ID: <")
    assert sent.envelope_to == ["b@example.com", "c@example.com"]
    assert sent.subject == "hé"
    assert sent.envelope_from == "a@example.com"


def test_addresses_after_comments_nested_thousands_deep_are_read_without_recursion():
    # The email package's getaddresses recursed once a comment level: a RecursionError.
    deep = "(" * 5000 + "x" + ")" * 5000
    raw = (f"From: a@example.com\nTo: {deep} b@example.com\nCc: c@example.com {deep}\n"
           "Subject: s\n\nHi\n").encode()
    sent = compose.compose(ACCOUNT, {"raw": raw})
    assert sent.envelope_to == ["b@example.com", "c@example.com"]



def test_a_structured_extra_header_with_comments_nested_past_32_levels_is_refused():
    # The email package parses it by recursion: 1,000 levels were a RecursionError, a 500.
    fields = {"to": [{"address": "d@example.com"}], "text": "x"}
    nested = "(" * 33 + "x" + ")" * 33
    structured = compose.compose(ACCOUNT, {**fields, "headers": {"Resent-To": "(((x))) e@example.com"}})
    assert structured.envelope_to == ["d@example.com", "e@example.com"]
    for name, depth in (("Resent-To", 1000), ("Resent-Date", 33), ("Sender", 33)):
        value = "(" * depth + "x" + ")" * depth + " e@example.com"
        with pytest.raises(errors.ComposeError, match="nested deeper than 32 levels"):
            compose.compose(ACCOUNT, {**fields, "headers": {name: value}})
    assert b"X-Lisp: " + nested.encode() in compose.compose(
        ACCOUNT, {**fields, "headers": {"X-Lisp": nested}}).raw  # unstructured: not parsed


@pytest.mark.parametrize("data,field", [
    ({"raw": "not base64!"}, "raw"),
    ({"raw": b64(b"From: a@b.c\r\n\r\nx"), "subject": "x"}, "raw"),
    ({"to": [{"address": "not-an-address"}]}, "to"),
    ({"to": "x@example.com"}, "to"),
    ({"attachments": [{"content": "@@@"}]}, "attachments"),
    ({"attachments": [{"content": b64(b"x"), "contentType": "multipart/mixed"}]}, "attachments"),
    ({"attachments": [{"content": b64(b"x"), "contentType": "text/"}]}, "attachments"),
    ({"attachments": [{"content": b64(b"x"), "cid": "a b"}]}, "attachments"),
    ({"reference": {"message": "x", "action": "bounce"}}, "reference"),
    ({"subject": "a\r\nBcc: x@example.com"}, "subject"),
    ({"tO": []}, "tO"),
])
def test_the_serializer_refuses_bad_fields_naming_them(data, field):
    serializer = MessageFieldsSerializer(data=data)
    assert not serializer.is_valid()
    assert field in serializer.errors, serializer.errors


def test_the_serializer_decodes_base64_and_keeps_text_as_given():
    serializer = MessageFieldsSerializer(data={
        "from": {"name": "Me", "address": "me@example.com"}, "text": "  indented\n",
        "attachments": [{"filename": "a.bin", "content": b64(b"\x00\xff"), "cid": "<x@y>"}]})
    assert serializer.is_valid(), serializer.errors
    data = serializer.validated_data
    assert data["text"] == "  indented\n"
    assert data["attachments"][0]["content"] == b"\x00\xff"
    assert data["attachments"][0]["cid"] == "x@y"
    assert data["from"]["address"] == "me@example.com"


def test_raw_messages_end_every_line_with_crlf():
    assert compose.crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"


def test_a_raw_resend_goes_from_and_to_its_newest_resent_block_and_a_draft_keeps_its_bcc():
    raw = (b"Resent-Sender: desk@example.com\nResent-From: boss@example.com\n"
           b"Resent-To: a@example.com\nResent-Cc: b@example.com\n"
           b"Resent-From: older@example.com\nResent-To: older-recipient@example.com\n"
           b"From: x@example.com\nTo: y@example.com\nSubject: Fwd\n\nBody\n")

    sent = compose.compose(ACCOUNT, {"raw": raw})

    assert sent.envelope_from == "desk@example.com"
    assert sent.envelope_to == ["a@example.com", "b@example.com"]
    no_resent_recipients = compose.compose(
        ACCOUNT, {"raw": b"Resent-From: boss@example.com\nTo: y@example.com\n\nBody\n"})
    assert no_resent_recipients.envelope_to == ["y@example.com"]
    with_bcc = b"Resent-To: a@example.com\nResent-Bcc: hidden@example.com\nTo: y@example.com\n\nB\n"
    assert b"Resent-Bcc" in compose.compose(ACCOUNT, {"raw": with_bcc}, for_sending=False).raw
    assert b"hidden" not in compose.compose(ACCOUNT, {"raw": with_bcc}).raw


@pytest.mark.parametrize("name,hidden", [
    ("Bcc", True), ("bcc", True), ("Resent-Bcc", True), ("X-Original-Bcc", True),
    ("Bcc-Info", False), ("X-Bccount", False), ("Cc", False), ("Resent-Cc", False),
])
def test_every_star_bcc_field_is_a_hidden_one(name, hidden):
    assert compose.is_bcc_field(name) is hidden


@pytest.mark.parametrize("given,attached", [
    ("application/PDF", "application/pdf"),
    ("message/rfc822", "message/rfc822"),
    ("message/delivery-status", "application/octet-stream"),
    ("multipart/mixed", "application/octet-stream"),
    ("application/pdf\r\nX-Evil: 1", "application/octet-stream"),
    ("application/x y", "application/octet-stream"),
    ("weird", "application/octet-stream"),
    (None, "application/octet-stream"),
])
def test_a_strangers_part_is_attached_again_with_a_type_a_header_can_carry(given, attached):
    # A sender's BODYSTRUCTURE type (a forward's attachments, a referenced attachment): one
    # with a line break, taken as it is, makes the email package raise (a 500).
    assert compose.attachable_type(given) == attached


def test_preview_text_goes_first_in_a_fragment_escaped():
    from mailboxes.compose import with_preview

    assert with_preview("<p>Hi</p>", "a & b").endswith('">a &amp; b</div><p>Hi</p>')
    assert with_preview("<p>Hi</p>", "x").startswith('<div style="display:none;')


def test_preview_text_placing_takes_time_in_proportion_to_the_html():
    # An inline reply quotes the original's HTML (a sender's) before the preview is placed:
    # 40,000 "<body" without a ">" (200 KB) once took 4 s of the submitting request's thread.
    from mailboxes.compose import with_preview

    html = "<body" * 40_000
    started = time.monotonic()
    assert with_preview(html, "x").endswith("</div>" + html)
    assert time.monotonic() - started < 1.0
    assert with_preview('<body class="a"><p>Hi', "x").startswith('<body class="a"><div')


def _missing(error: errors.ReferenceNotFound):
    def load(account, reference, with_text, with_source):
        raise error
    return load


def test_a_reference_not_found_is_left_out_with_ignore_missing_and_a_404_without():
    fields = {"reference": {"message": "GONE", "action": "reply", "inline": True},
              "to": [{"address": "x@example.com"}], "subject": "Hi", "text": "Hello"}
    with pytest.raises(errors.ReferenceNotFound):
        compose.compose(ACCOUNT, fields, load=_missing(errors.ReferenceNotFound("gone")))
    fields["reference"]["ignoreMissing"] = True
    composed = compose.compose(ACCOUNT, fields, load=_missing(errors.ReferenceNotFound("gone")))
    message = parsed(composed.raw)
    assert composed.reference is None
    assert message["In-Reply-To"] is None
    assert message["Subject"] == "Hi"
    assert text_of(message.get_body(("plain",))).strip() == "Hello"


def test_a_message_id_mismatch_is_a_404_whatever_ignore_missing_says():
    fields = {"reference": {"message": "MSGID", "messageId": "<other@example.com>",
                            "ignoreMissing": True}, "text": "x"}
    with pytest.raises(errors.ReferenceMismatch):
        compose.compose(ACCOUNT, fields, load=_missing(errors.ReferenceMismatch()))
