"""Trying IMAP and SMTP settings for real, without saving anything (``POST /v1/verifyAccount``).

IMAP: connect, log in, list folders. SMTP: connect, EHLO, STARTTLS when offered, AUTH. Both run
side by side, each bounded by a timeout, and each reports success or the server's own error,
in words (``emailapi.lib.wording``): never a bytes repr or a foreign service's banner.

A failure reads as EmailEngine's: ``error`` (``"Command failed"`` when the IMAP server said
NO), ``code`` (the server's response code such as ``AUTHENTICATIONFAILED``, or nodemailer's
``EAUTH``/``ECONNECTION``/``ETLS``/``ETIMEDOUT`` for SMTP) and ``responseText`` (the server's
words); our own code and wording stay in ``emailapiCode`` and ``reason``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

from emailapi.lib.wording import describe, response_code, server_text
from mailboxes import smtp
from mailboxes.imap import client as imap
from mailboxes.imap.session import FolderListing, ImapSession

# Our SMTP codes as nodemailer's, which EmailEngine reports.
SMTP_CODES = {"AuthenticationFailed": "EAUTH", "ConnectionError": "ECONNECTION",
              "TLSError": "ETLS", "Timeout": "ETIMEDOUT"}


def verify_imap(settings: imap.ImapSettings, list_mailboxes: bool = False) -> dict:
    try:
        conn = imap.connect(settings)
    except imap.ImapError as exc:
        return _imap_failure(exc)
    try:
        folders = conn.list_folders()
        result: dict = {"success": True}
        if list_mailboxes:
            result["mailboxes"] = [_folder(flags, delimiter, name) for flags, delimiter, name in folders]
            result["listing"] = [_mailbox(listing)
                                 for listing in ImapSession(conn).list_folders()]
        return result
    except Exception as exc:  # noqa: BLE001 - report whatever the server did
        return _failure(f"Listing folders failed: {describe(exc)}", "ImapError")
    finally:
        try:
            conn.logout()
        except Exception:  # noqa: BLE001
            pass


def _imap_failure(exc: imap.ImapError) -> dict:
    """EmailEngine's words for a failed connect/login: a NO answer is ``Command failed`` with
    the server's response code and text; anything else keeps our words."""
    reason = describe(exc)
    answer = server_text(exc.server_response)
    coded = response_code(answer)
    if coded:
        return _failure("Command failed", coded[0], responseText=coded[1],
                        reason=reason, emailapiCode=exc.code, serverResponse=answer)
    if answer:
        code = "AUTHENTICATIONFAILED" if exc.code == "AuthenticationFailed" else exc.code
        return _failure("Command failed", code, responseText=answer, reason=reason,
                        emailapiCode=exc.code, serverResponse=answer)
    return _failure(reason, exc.code, reason=reason, emailapiCode=exc.code)


def verify_smtp(settings: smtp.SmtpSettings) -> dict:
    try:
        conn = smtp.connect(settings)
    except smtp.SmtpError as exc:
        reason = describe(exc)
        text = _smtp_response_text(reason, exc.response_code)
        error = f"Invalid login: {text}" if exc.code == "AuthenticationFailed" and text \
            else reason
        return _failure(error, SMTP_CODES.get(exc.code, exc.code),
                        responseCode=exc.response_code, responseText=text or None,
                        reason=reason, emailapiCode=exc.code)
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
            # The check's whole session ends with the wait for it, so a server answering
            # just in time at every step does not keep the thread (and socket) long after.
            jobs["smtp"] = pool.submit(verify_smtp, replace(smtp_settings, session_timeout=timeout))
        results = {}
        for name, future in jobs.items():
            try:
                results[name] = future.result(timeout=timeout)
            except FutureTimeout:
                reason = f"No answer within {timeout:g} s"
                results[name] = _failure(reason, "ETIMEDOUT", reason=reason,
                                         emailapiCode="Timeout")
        listing = results.get("imap", {}).pop("listing", None)
        if listing is not None:
            results["mailboxes"] = listing  # EmailEngine's place for them: the top level
        return results
    finally:
        # Do not wait for a check stuck past its deadline: its session ends soon after (SMTP:
        # ``session_timeout``; IMAP: its socket timeouts).
        pool.shutdown(wait=False)


def _folder(flags, delimiter, name) -> dict:
    flags = [f.decode() if isinstance(f, bytes) else str(f) for f in flags]
    delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
    special = next((f for f in flags if f in SPECIAL_USE_FLAGS), None)
    return {"path": name, "delimiter": delimiter, "flags": flags, "specialUse": special}


def _mailbox(listing: FolderListing) -> dict:
    """A folder as EmailEngine's verifyAccount lists it."""
    from_flag = any(flag.lower() == listing.special_use.lower() for flag in listing.flags)
    return {
        "path": listing.path, "delimiter": listing.delimiter or None,
        "parentPath": listing.parent_path or None, "name": listing.name, "listed": True,
        "subscribed": listing.subscribed, "specialUse": listing.special_use or None,
        "specialUseSource": ("extension" if from_flag else "name") if listing.special_use
        else None,
        "noInferiors": any(flag.lower() == "\\noinferiors" for flag in listing.flags),
    }


def _smtp_response_text(reason: str, response_code: int | None) -> str:
    """The server's reply in our SMTP error text (``... 535 5.7.8 Bad credentials``)."""
    if response_code is None:
        return ""
    found = reason.find(str(response_code))
    return reason[found:] if found >= 0 else ""


SPECIAL_USE_FLAGS = {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}


def _failure(message: str, code: str, **extra) -> dict:
    result = {"success": False, "error": message, "code": code}
    result.update({k: v for k, v in extra.items() if v is not None})
    return result


def in_words(result: dict) -> str:
    """A failed check (``verify_imap``/``verify_smtp``'s answer) in words for a person: ours
    (``reason``, e.g. "the server refused the login: Authentication failed"), not
    EmailEngine's bare "Command failed"."""
    return result.get("reason") or result.get("error") or "no details"
