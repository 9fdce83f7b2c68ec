"""Trying IMAP and SMTP settings for real, without saving anything (``POST /v1/verifyAccount``).

IMAP: connect, log in, list folders. SMTP: connect, EHLO, STARTTLS when offered, AUTH. Both run
side by side, each bounded by a timeout, and each reports success or the server's own error,
in words (``emailapi.lib.wording``): never a bytes repr or a foreign service's banner.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from emailapi.lib.wording import describe, server_text
from mailboxes import smtp
from mailboxes.imap import client as imap


def verify_imap(settings: imap.ImapSettings, list_mailboxes: bool = False) -> dict:
    try:
        conn = imap.connect(settings)
    except imap.ImapError as exc:
        return _failure(describe(exc), exc.code,
                        serverResponse=server_text(exc.server_response) or None)
    try:
        folders = conn.list_folders()
        result: dict = {"success": True}
        if list_mailboxes:
            result["mailboxes"] = [_folder(flags, delimiter, name) for flags, delimiter, name in folders]
        return result
    except Exception as exc:  # noqa: BLE001 - report whatever the server did
        return _failure(f"Listing folders failed: {describe(exc)}", "ImapError")
    finally:
        try:
            conn.logout()
        except Exception:  # noqa: BLE001
            pass


def verify_smtp(settings: smtp.SmtpSettings) -> dict:
    try:
        conn = smtp.connect(settings)
    except smtp.SmtpError as exc:
        return _failure(describe(exc), exc.code, responseCode=exc.response_code)
    try:
        conn.quit()
    except Exception:  # noqa: BLE001 - the check itself succeeded
        pass
    return {"success": True}


def verify(
    imap_settings: imap.ImapSettings | None,
    smtp_settings: smtp.SmtpSettings | None,
    timeout: float,
    list_mailboxes: bool = False,
) -> dict:
    """Run the requested checks concurrently; a check that exceeds ``timeout`` reports so."""
    jobs = {}
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
    try:
        if imap_settings is not None:
            jobs["imap"] = pool.submit(verify_imap, imap_settings, list_mailboxes)
        if smtp_settings is not None:
            jobs["smtp"] = pool.submit(verify_smtp, smtp_settings)
        results = {}
        for name, future in jobs.items():
            try:
                results[name] = future.result(timeout=timeout)
            except FutureTimeout:
                results[name] = _failure(f"No answer within {timeout:g} s", "Timeout")
        return results
    finally:
        # Do not wait for a check stuck past its deadline: its socket timeout ends it later.
        pool.shutdown(wait=False)


def _folder(flags, delimiter, name) -> dict:
    flags = [f.decode() if isinstance(f, bytes) else str(f) for f in flags]
    delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
    special = next((f for f in flags if f in SPECIAL_USE_FLAGS), None)
    return {"path": name, "delimiter": delimiter, "flags": flags, "specialUse": special}


SPECIAL_USE_FLAGS = {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}


def _failure(message: str, code: str, **extra) -> dict:
    result = {"success": False, "error": message, "code": code}
    result.update({k: v for k, v in extra.items() if v is not None})
    return result
