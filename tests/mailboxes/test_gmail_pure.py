"""Gmail's IMAP extensions where no free server has them: the commands built and the answers
parsed, as Gmail's IMAP extension documentation spells them (X-GM-THRID, X-GM-RAW, SEARCH
X-GM-LABELS, labels in modified UTF-7), and the folder model's rule (pure functions).

What hoodiecrow offers is tested against it in tests/mailboxes/test_gmail.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from mailboxes.imap import fetch, message_ops, parse, search
from mailboxes.sync import gmail
from mailboxes.sync.index import _delta, _row_values
from tests.mailboxes.test_imap_parse import GMAIL, meta_of

GMAIL_CAPS = {"IMAP4REV1", "X-GM-EXT-1"}


def flag_change_of(raw: bytes):
    (text, literals), *_ = list(parse.wire_responses(raw))
    return parse.flag_change(parse.parse_fetch(text, literals)[1])


# --- X-GM-MSGID / X-GM-THRID: emailId and threadId -------------------------------------------


def test_a_gmail_server_is_asked_for_its_ids_and_labels_with_every_message():
    items = fetch.meta_items(GMAIL_CAPS)

    assert items.endswith("X-GM-MSGID X-GM-THRID X-GM-LABELS")


def test_x_gm_msgid_is_the_email_id_and_x_gm_thrid_the_thread_id():
    folder = SimpleNamespace(email_account_id=1, pk=1)

    row = _row_values(folder, meta_of(GMAIL), {}, datetime.now(UTC))

    assert (row["email_id"], row["thread_id"]) == ("1278455344230334866", "1278455344230334865")


def test_thread_id_searches_go_to_gmail_as_x_gm_thrid():
    assert search.compile_search({"threadId": "1278455344230334865"}, GMAIL_CAPS) == \
        ["X-GM-THRID", "1278455344230334865"]


# --- X-GM-LABELS ---------------------------------------------------------------------------


def test_labels_fetched_with_flags_are_read_in_modified_utf7():
    change = flag_change_of(b'* 3 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (9) '
                            b'X-GM-LABELS (\\Inbox "\\\\Important" "Muy Importante" '
                            b'&AMk-tiquettes))\r\n')

    assert change.labels == ("\\Inbox", "\\Important", "Muy Importante", "Étiquettes")


def test_flags_fetched_without_labels_leave_labels_unknown():
    assert flag_change_of(b"* 3 FETCH (UID 7 FLAGS (\\Seen))\r\n").labels is None


def test_an_empty_label_list_is_no_labels():
    assert flag_change_of(b"* 3 FETCH (UID 7 FLAGS () X-GM-LABELS ())\r\n").labels == ()


def test_a_label_change_is_added_deleted_and_value():
    assert _delta(["\\Inbox", "Work"], ["\\Inbox", "Clients"]) == \
        {"added": ["Clients"], "deleted": ["Work"], "value": ["\\Inbox", "Clients"]}


def test_the_same_labels_in_another_order_are_no_change():
    assert _delta(["a", "b"], ["b", "a"]) is None


@pytest.mark.parametrize("label", ["Work", "Clients/Acme", "Ça va", "\\Important", "[x] y",
                                   'with "quotes"'])
def test_labels_a_quoted_string_can_carry_are_accepted(label):
    assert message_ops.check_labels([label]) == [label]


@pytest.mark.parametrize("label", ["", "a\r\nA1 LOGOUT", "nul\x00", "\\two words",
                                   "back\\slash", "x" * 226, 7, None])
def test_labels_that_could_break_the_command_are_refused(label):
    with pytest.raises(message_ops.BadLabel):
        message_ops.check_labels([label])


def test_label_searches_go_to_gmail_as_x_gm_labels_in_modified_utf7():
    args = search.compile_search({"labels": {"has": ["Work", "Étiquettes"],
                                             "not": ["\\Important"]}}, GMAIL_CAPS)

    assert b"".join(search.wire_chunks(args)) == \
        b'X-GM-LABELS "Work" X-GM-LABELS "&AMk-tiquettes" NOT X-GM-LABELS {10}\r\n\\Important\r\n'


def test_label_searches_elsewhere_are_refused_naming_the_extension():
    with pytest.raises(search.MissingExtension) as caught:
        search.compile_search({"labels": {"has": ["Work"]}}, {"IMAP4REV1"})

    assert (caught.value.path, caught.value.extension) == ("labels", "X-GM-EXT-1")


@pytest.mark.parametrize("criterion", [{}, {"has": []}, {"has": "Work"}, {"other": ["x"]},
                                       {"has": [""]}, {"has": ["a\x00"]}])
def test_malformed_label_criteria_are_refused(criterion):
    with pytest.raises(search.InvalidSearch):
        search.compile_search({"labels": criterion}, GMAIL_CAPS)


# --- X-GM-RAW ------------------------------------------------------------------------------


def test_gmail_raw_is_sent_as_x_gm_raw_with_utf8_as_a_literal():
    args = search.compile_search({"gmailRaw": "subject:Ça has:attachment"}, GMAIL_CAPS)

    assert b"".join(search.wire_chunks(args)) == \
        "X-GM-RAW {26}\r\nsubject:Ça has:attachment\r\n".encode()


# --- the folder model -------------------------------------------------------------------------


@pytest.mark.parametrize(("special_use", "expected"), [
    ("\\Inbox", gmail.EVERY_CHANGE), ("\\All", gmail.OUTSIDE_INBOX),
    ("\\Junk", gmail.EVERY_CHANGE), ("\\Trash", gmail.EVERY_CHANGE),
    ("\\Sent", gmail.SILENT), ("\\Drafts", gmail.SILENT), ("\\Flagged", gmail.SILENT),
    ("\\Important", gmail.SILENT), ("", gmail.SILENT)])
def test_which_gmail_folders_announce(special_use, expected):
    assert gmail.announcing_in(special_use, gmail=True, has_all_mail=True) == expected


@pytest.mark.parametrize(("is_gmail", "has_all_mail"), [(False, True), (True, False)])
def test_every_folder_announces_without_gmail_or_without_all_mail(is_gmail, has_all_mail):
    assert gmail.announcing_in("", gmail=is_gmail, has_all_mail=has_all_mail) == \
        gmail.EVERY_CHANGE


@pytest.mark.parametrize(("before", "after", "speaks"), [
    (["\\Inbox"], ["\\Inbox", "Work"], False),  # announced from INBOX
    (["Work"], ["Work", "Later"], True),  # not in INBOX: only All Mail can say it
    (["\\Inbox"], [], True),  # archived: it left INBOX
    ([], ["\\Inbox"], True),  # moved to the inbox
])
def test_all_mail_speaks_for_messages_outside_the_inbox(before, after, speaks):
    assert gmail.OUTSIDE_INBOX.speaks(before, after) is speaks
