"""Sorting unsolicited IDLE/NOTIFY responses into what to sync (pure, no server)."""

from mailboxes.imap.session import read_notifications


def test_status_names_an_unselected_folder_decoded_from_modified_utf7():
    notes = read_notifications([(b"STATUS", b"&AMQ-pfel", (b"MESSAGES", 2)),
                                (b"STATUS", b"Archive", (b"UIDNEXT", 9))])
    assert notes.paths == {"Äpfel", "Archive"}
    assert not notes.folders_changed
    assert not notes.selected_changed


def test_list_means_the_folder_list_changed_and_exists_the_selected_folder():
    notes = read_notifications([(b"LIST", (b"\\HasNoChildren",), b"/", b"New"), (3, b"EXISTS")])
    assert notes.folders_changed
    assert notes.selected_changed
    assert not notes.paths


def test_status_lines_and_noise_change_nothing():
    notes = read_notifications([(b"OK", b"Still here"), b"garbage", ()])
    assert (notes.paths, notes.folders_changed, notes.selected_changed) == (set(), False, False)
    assert not notes.any


def test_any_change_counts():
    assert read_notifications([(4, b"EXISTS")]).any
    assert read_notifications([(b"STATUS", b"Sent", (b"MESSAGES", 1))]).any
    assert read_notifications([(b"LIST", (), b"/", b"New")]).any
