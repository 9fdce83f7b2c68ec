"""Sending an outbox entry through the account's SMTP server: the rq job, retries, the sweep.

One job = one attempt::

    claim (row → sending, attempts + 1, lease)        outbox.claim, one short transaction
    SMTP: connect, MAIL FROM, RCPT TO..., DATA        no transaction held; from the local
                                                      address of ``route_of`` (EmailEngine's
                                                      localAddress), said in the events below
    250        → outbox.mark_sent (+ messageSent, content dropped), then copy to Sent,
                 flag \\Answered, outbox.finish (where the copy went)
    4xx / net  → outbox.mark_retry (queued again after the retry schedule's next delay)
    5xx / last → outbox.mark_failed (+ messageFailed); the entry is kept

rq carries only "try entry N" (job id ``send-<queueId>``); PostgreSQL holds the entry. The
sweep (``enqueue_due``, run every ``EMAILAPI_SEND_SWEEP_INTERVAL`` s by ``manage.py
sendscheduler``, which ``manage.py serve`` starts) enqueues every due entry that has no live
job: scheduled sends, retries whose delay has passed, jobs lost to a Redis flush, and entries
left ``sending`` by a job killed mid-attempt (after their lease, ``EMAILAPI_SEND_LEASE``).

Exactly once, mostly: two jobs for one entry never both send, since only one wins the claim.
Once the server accepted DATA nothing may send the message again, so every database step from
there on (``recorded``) is retried through database faults (a restart, a failover, a
terminated session) with backoff, for ``EMAILAPI_SEND_RECORD_RETRY`` seconds and never past
the entry's lease. The one gap left is a job killed, or a database away for longer than that,
before ``mark_sent`` committed: the entry is then tried again after its lease and the message
may arrive twice (at-least-once), the safer side of the trade against losing it. The steps
after ``mark_sent`` are best effort: what became of the Sent copy is said in words in
``sentCopy``, never retried as a send.
"""

from __future__ import annotations

import imaplib
import logging
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.db import connection as db_connection
from django.utils import timezone

from accounts import crypto, mail_proxy
from accounts.auth_server import AuthServerError
from accounts.models import EmailAccount
from accounts.oauth2.refresh import ReauthRequired, TokenError
from emailapi.lib.backoff import Schedule
from emailapi.lib.wording import describe, server_text
from mailboxes import (
    connection_settings,
    gateways,
    ids,
    listing,
    local_address,
    message_writes,
    outbox,
    rq_jobs,
    smtp,
    smtp_status,
)
from mailboxes.command_pool import pool
from mailboxes.errors import MailboxNotFound, MailboxUnavailable, MessageNotFound, ServerRefused
from mailboxes.imap import append as imap_append
from mailboxes.imap.types import FlagChange
from mailboxes.models import Folder, OutboxEntry
from mailboxes.sync import gmail, index

logger = logging.getLogger(__name__)

QUEUE = "send"
_LIVE_JOB = {"queued", "started", "scheduled", "deferred"}
# Database faults a step after sending outlives by retrying (a lost or refused connection).
DB_FAULTS = (OperationalError, InterfaceError)
# Retries stop this long before the entry's lease ends: the rq job's timeout is the lease
# less 30 s, and after the lease the sweep would hand the entry to a job that sends it again.
LEASE_MARGIN = 35
# The SMTP session of an attempt ends this long before ``LEASE_MARGIN`` (``smtp_budget``): the
# outcome is then recorded before the rq job's timeout cuts the job off. A job cut off after
# the server took the message but before ``mark_sent`` leaves the entry to be sent again.
SMTP_RESERVE = 30
# Between tries of recording a send's outcome while the database fails: 0.05 s doubling to 5 s.
RECORD_RETRY = Schedule(base=0.05, factor=2.0, cap=5.0)
T = TypeVar("T")


# --- the job ------------------------------------------------------------------------------


def send_entry(entry_id: int) -> str:
    """The rq job: one attempt at one entry. Returns what happened, for logs and tests."""
    close_old_connections()
    entry = outbox.claim(entry_id)
    if entry is None:
        return "skipped"
    route = None
    try:
        route = route_of(entry)
        response, rejected = transmit(entry, route)
    except SendFailure as failure:
        _note_gateway(entry, failure, route)
        _note_smtp_status(entry, smtp_status.error_entry(failure.record(_routing(route)),
                                                         timezone.now()))
        return _after_failure(entry, failure, route)
    except Exception as exc:  # noqa: BLE001 - a fault of ours: retried like a transient one
        logger.exception("outbox %s: attempt %d crashed", entry.queue_id, entry.attempts)
        return _after_failure(entry, SendFailure(f"Internal error ({type(exc).__name__})",
                                                 "InternalError"), route)
    _note_gateway(entry, None)
    _note_smtp_status(entry, smtp_status.ok_entry(response, timezone.now(), _routing(route)))
    return _after_accepted(entry, response, rejected, route)


def route_of(entry: OutboxEntry) -> local_address.Route:
    """The local address this attempt goes out from: the entry's ``localAddress`` hint (kept
    with it, so every attempt, in whatever process, starts from the same hint) against the
    operator's addresses, as they are now."""
    route = local_address.route(entry.local_address or None, entry.tenant_id,
                                entry.email_account.account_id)
    # the proxy it goes through, as shown (password masked): the send's, else the account's or
    # its tenant's (for the account's own server; a gateway is reached without either)
    shown = entry.proxy or ("" if entry.gateway else
                            mail_proxy.shown_connection_proxy(entry.email_account))
    return replace(route, proxy=shown) if shown else route


def _note_gateway(entry: OutboxEntry, failure: SendFailure | None,
                  route: local_address.Route | None = None) -> None:
    """Count a send through a gateway, or keep its error (best effort: the entry's own record
    is what matters, and it comes next)."""
    if not entry.gateway:
        return
    try:
        if failure is None:
            gateways.record_delivery(entry.tenant_id, entry.gateway)
        else:
            gateways.record_failure(entry.tenant_id, entry.gateway,
                                    failure.record(_routing(route)))
    except DB_FAULTS:
        logger.warning("outbox %s: gateway %r's counters not updated", entry.queue_id,
                       entry.gateway)


def _note_smtp_status(entry: OutboxEntry, status: dict) -> None:
    """Keep the attempt's outcome as the account's ``smtpStatus`` (EmailEngine's SMTP health
    reading): one single-column UPDATE, so no save of the account elsewhere races it. Not
    for a gateway's send (that is the gateway's ``lastError``); best effort, as the entry's
    own record is what matters."""
    if entry.gateway:
        return
    try:
        EmailAccount.objects.filter(pk=entry.email_account_id).update(smtp_status=status)
    except DB_FAULTS:
        logger.warning("outbox %s: the account's smtpStatus not updated", entry.queue_id)


def _routing(route: local_address.Route | None) -> dict | None:
    return route.network_routing() if route is not None else None


def _after_accepted(entry: OutboxEntry, response: str, rejected: dict[str, str],
                    route: local_address.Route | None = None) -> str:
    """The server took the message: record it, store the Sent copy, flag the original, record
    where the copy went. Nothing here sends again, whatever the database does meanwhile."""
    routing = route.network_routing() if route is not None else None
    try:
        if not recorded(entry, lambda: outbox.mark_sent(entry, response, rejected,
                                                        copy_pending=wants_copy(entry),
                                                        network_routing=routing)):
            return "lost"
    except DB_FAULTS:
        logger.error("outbox %s: the server accepted the message, but the database could not "
                     "record it in time; it may be sent again after its lease", entry.queue_id)
        return "unrecorded"
    sent_copy = after_sent(entry)
    try:
        recorded(entry, lambda: outbox.finish(entry, sent_copy))
    except DB_FAULTS:
        logger.error("outbox %s: sent; where its Sent copy went could not be recorded",
                     entry.queue_id)
    return "sent"


def recorded(entry: OutboxEntry, step: Callable[[], T]) -> T:
    """``step()`` (short transactions of its own), retried through database faults with a
    doubling pause, for ``EMAILAPI_SEND_RECORD_RETRY`` seconds and never past the entry's
    lease (less ``LEASE_MARGIN``); then the last fault is raised. Each step must be safe to
    run again: a fault may come after its commit reached the server."""
    deadline = _record_deadline(entry)
    retry = 0
    while True:
        try:
            return step()
        except DB_FAULTS as exc:
            if db_connection.in_atomic_block:
                raise  # inside a caller's transaction: only the caller can start it over
            _drop_connection()
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.warning("outbox %s: the database failed (%s); trying again",
                           entry.queue_id, type(exc).__name__)
            retry += 1
            time.sleep(min(RECORD_RETRY.delay(retry), left))


def _record_deadline(entry: OutboxEntry) -> float:
    budget = float(settings.SEND_RECORD_RETRY)
    if entry.lease_until is not None:
        lease_left = (entry.lease_until - timezone.now()).total_seconds() - LEASE_MARGIN
        budget = min(budget, lease_left)
    return time.monotonic() + max(0.0, budget)


def _drop_connection() -> None:
    """Let the broken connection go (the pool discards it); the next query opens another."""
    try:
        db_connection.close()
    except DatabaseError:
        pass


def _after_failure(entry: OutboxEntry, failure: SendFailure,
                   route: local_address.Route | None = None) -> str:
    routing = _routing(route)
    error = failure.record(routing)  # the command kept for the entry's events
    if failure.is_permanent(entry.attempts) or entry.attempts >= entry.max_attempts:
        outbox.mark_failed(entry, error, network_routing=routing)
        logger.info("outbox %s failed after %d attempts: %s", entry.queue_id, entry.attempts,
                    failure.message)
        return "failed"
    outbox.mark_retry(entry, error, outbox.retry_delay(entry.attempts), network_routing=routing)
    logger.info("outbox %s attempt %d failed, will retry: %s", entry.queue_id, entry.attempts,
                failure.message)
    return "retry"


# --- one SMTP transaction -----------------------------------------------------------------

# ``SendFailure.command`` of a failure to get a session at all (nodemailer's word for it).
CONNECT = "CONN"
# ... and of a refused login (nodemailer names the mechanism too, "AUTH PLAIN").
AUTH = "AUTH"
CONNECT_FAILURES = (smtp.SmtpConnectFailed, smtp.SmtpTlsFailed, smtp.SmtpTimeout)


@dataclass
class SendFailure(Exception):
    """Why an attempt failed, classified: ``permanent`` failures are not retried; an
    ``auth`` failure becomes permanent after ``EMAILAPI_SEND_AUTH_ATTEMPTS`` attempts."""

    message: str
    code: str
    response_code: int | None = None
    permanent: bool = False
    auth: bool = False
    # The SMTP command the server refused (``MAIL FROM``, ``RCPT TO``, ``DATA``), or ``CONN``
    # when no session could be had: EmailEngine's ``smtpCommand``, and how its
    # ``messageDeliveryError`` tells a refused address (``EENVELOPE``) from a refused message
    # (``EMESSAGE``).
    command: str | None = None

    def is_permanent(self, attempts_made: int) -> bool:
        if self.auth:
            return self.permanent and attempts_made >= settings.SEND_AUTH_ATTEMPTS
        return self.permanent

    def as_dict(self) -> dict:
        return {"error": self.message, "code": self.code, "responseCode": self.response_code}

    def record(self, network_routing: dict | None = None) -> dict:
        """What an entry and a gateway keep of it: ``as_dict`` with the refused ``command``
        and the local address it went out from, when there is one of each (EmailEngine
        shows both in ``progress.error``, a gateway's ``lastError``, ``smtpStatus``)."""
        out = self.as_dict()
        if self.command:
            out["command"] = self.command
        if network_routing:
            out["networkRouting"] = network_routing
        return out


def transmit(entry: OutboxEntry,
             route: local_address.Route | None = None) -> tuple[str, dict[str, str]]:
    """Send the entry's raw message to its envelope, from ``route``'s local address (default:
    ``route_of(entry)``); return the server's answer to DATA and the recipients it refused
    (when it took the others). Raises ``SendFailure``."""
    route = route_of(entry) if route is None else route
    try:
        smtp_settings = _sender_settings(entry)
    except TokenError as exc:  # OAuth2: a revoked grant is permanent, anything else retried
        raise SendFailure(f"No OAuth2 access token: {describe(exc)}", exc.code,
                          permanent=isinstance(exc, ReauthRequired)) from None
    except AuthServerError as exc:  # useAuthServer: retried, the server may answer later
        raise SendFailure(f"No credentials: {exc}", exc.code) from None
    except mail_proxy.ProxyUnusable as exc:  # not sent around the proxy the tenant asked for
        raise SendFailure(str(exc), exc.code, permanent=True) from None
    if smtp_settings is None:
        raise SendFailure("The account has no SMTP settings", "NoSmtpSettings", permanent=True)
    try:
        asked = outbox.proxy_of(entry)  # the send's own proxy, over the account's
    except crypto.DecryptionError:
        raise SendFailure("The send's proxy password cannot be opened (sealed with a key that "
                          "is no longer configured)", "ProxyError", permanent=True) from None
    if asked is not None and not _same_proxy(asked, smtp_settings.proxy):
        smtp_settings = replace(smtp_settings, tls_required=SEND_PROXY_TLS)
    # The EHLO name the route reports is the one smtplib is given.
    smtp_settings = replace(smtp_settings, proxy=asked or smtp_settings.proxy,
                            session_timeout=smtp_budget(entry, smtp_settings.timeout),
                            source_address=route.address,
                            local_hostname=smtp_settings.local_hostname or route.name)
    try:
        client = smtp.connect(smtp_settings)
    except smtp.SmtpAuthenticationFailed as exc:
        raise SendFailure(describe(exc), exc.code, exc.response_code, auth=True,
                          permanent=not _is_transient_code(exc.response_code),
                          command=AUTH) from None
    except smtp.SmtpError as exc:
        raise SendFailure(describe(exc), exc.code, exc.response_code,
                          permanent=_is_permanent_code(exc.response_code),
                          command=CONNECT if isinstance(exc, CONNECT_FAILURES) else None) \
            from None
    try:
        return deliver(client, entry.envelope["from"], list(entry.envelope["to"]),
                       bytes(entry.raw), entry.dsn)
    except SendFailure:
        raise
    except smtp.SmtpError as exc:  # the server broke off mid-way: too slow, too long an answer
        raise SendFailure(describe(exc), exc.code, exc.response_code) from None
    except smtplib.SMTPResponseException as exc:
        raise classify_response(exc.smtp_code, exc.smtp_error,
                                "DATA" if isinstance(exc, smtplib.SMTPDataError) else None) \
            from None
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        raise SendFailure(f"Connection to the SMTP server failed: {describe(exc)}",
                          "ConnectionError") from None
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001 - the answer to DATA is what counts
            client.close()


# A send's own proxy (submit ``proxy``) is picked by whoever may send, per send: no stored
# password was given for that route, so it goes through it only over TLS that verifies the
# server's certificate, which the proxy cannot stand in for (``accounts.secret_routes``).
SEND_PROXY_TLS = ("Credentials not sent: through a send's own proxy they go only over TLS with a "
                  "verified certificate, and this server offered none. Send without a proxy of "
                  "its own, or use TLS with a valid certificate")


def _same_proxy(asked, route) -> bool:
    """Whether the send's proxy is the one the account's sends take anyway."""
    return route is not None and (asked.scheme, asked.host.lower(), asked.port) == (
        route.scheme, route.host.lower(), route.port)


def _sender_settings(entry: OutboxEntry):
    """The SMTP server the entry goes through: its gateway's, or the account's own."""
    if not entry.gateway:
        return connection_settings.account_smtp_settings(entry.email_account)
    found = gateways.smtp_settings(entry.tenant_id, entry.gateway)
    if found is None:  # deleted since: not sent through another server than the one asked
        raise SendFailure(f"Gateway {entry.gateway!r} no longer exists", "GatewayNotFound",
                          permanent=True)
    return found


def smtp_budget(entry: OutboxEntry, timeout: float) -> float:
    """Seconds the attempt's SMTP session may take in all: until ``LEASE_MARGIN`` +
    ``SMTP_RESERVE`` before the entry's lease ends (the rq job's timeout is 30 s before it),
    and at least one reply's ``timeout``. Each reply is bounded by ``timeout`` too, but a
    server may answer every RCPT just in time."""
    lease_left = float(settings.SEND_LEASE)
    if entry.lease_until is not None:
        lease_left = (entry.lease_until - timezone.now()).total_seconds()
    return max(float(timeout), float(round(lease_left - LEASE_MARGIN - SMTP_RESERVE)))


def deliver(client: smtplib.SMTP, sender: str, recipients: list[str],
            raw: bytes, dsn: dict | None = None) -> tuple[str, dict[str, str]]:
    """MAIL FROM, RCPT TO for each recipient, DATA: smtplib's ``sendmail`` minus its habit of
    hiding the server's final answer (which ``messageSent`` reports). ``dsn``: the delivery
    status notifications asked for, where the server offers DSN (``dsn_options``)."""
    mail_dsn, rcpt_dsn = dsn_options(dsn) if dsn and client.has_extn("dsn") else ([], [])
    options = list(mail_dsn)
    if client.has_extn("8bitmime") and any(byte > 127 for byte in raw):
        options.append("BODY=8BITMIME")
    if not (sender + "".join(recipients)).isascii():
        if not client.has_extn("smtputf8"):
            raise SendFailure("The server does not accept non-ASCII addresses (no SMTPUTF8)",
                              "SmtpUtf8Unsupported", permanent=True)
        options.append("SMTPUTF8")
    code, text = client.mail(sender, options)
    if code != 250:
        raise classify_response(code, text, "MAIL FROM")
    rejected: dict[str, str] = {}
    last: tuple[int, bytes] | None = None
    for recipient in recipients:
        code, text = client.rcpt(recipient, rcpt_dsn)
        if code not in (250, 251):
            rejected[recipient] = _reply(code, text)
            last = (code, text)
    if len(rejected) == len(recipients):
        try:
            client.rset()
        except (smtplib.SMTPException, smtp.SmtpError, OSError):
            pass  # the refusals decide; the session is dropped anyway
        raise classify_response(*last, "RCPT TO") if last else SendFailure(
            "No recipients", "NoRecipients", permanent=True)
    code, text = client.data(raw)
    if code != 250:
        raise classify_response(code, text, "DATA")
    return _reply(code, text), rejected


def dsn_options(dsn: dict) -> tuple[list[str], list[str]]:
    """RFC 3461's MAIL FROM (``RET``, ``ENVID``) and RCPT TO (``NOTIFY``, ``ORCPT``) parameters
    of EmailEngine's ``dsn`` (as nodemailer sends them: one ``ORCPT`` for every recipient). A
    server without DSN gets none of them: the message goes out all the same."""
    mail = [f"RET={'HDRS' if dsn.get('return') == 'headers' else 'FULL'}"]
    if dsn.get("id"):
        mail.append(f"ENVID={xtext(dsn['id'])}")
    rcpt = []
    if dsn.get("notify"):
        rcpt.append("NOTIFY=" + ",".join(item.upper() for item in dsn["notify"]))
    if dsn.get("recipient"):
        rcpt.append(f"ORCPT=rfc822;{xtext(dsn['recipient'])}")
    return mail, rcpt


def xtext(value: str) -> str:
    """RFC 3461's xtext: printable ASCII but ``+`` and ``=`` as is, the rest as ``+HH``."""
    return "".join(char if "!" <= char <= "~" and char not in "+=" else
                   "".join(f"+{byte:02X}" for byte in char.encode()) for char in value)


def classify_response(code: int, text, command: str | None = None) -> SendFailure:
    """A refusal by its reply code: 5xx is permanent, anything else worth another try;
    ``command`` is the one refused."""
    return SendFailure(_reply(code, text), "SmtpRefused" if code >= 500
                       else "SmtpDeferred", code, permanent=_is_permanent_code(code),
                       command=command)


def _reply(code: int, text) -> str:
    """A server's reply as stored and shown (``response``, ``rejected``, ``lastError``): one
    clean line of at most ``wording.MAX_TEXT``. The raw text may hold anything: a NUL, which
    PostgreSQL refuses in text and JSON, made ``mark_sent`` fail after the server took the
    message, so the entry was sent again after its lease."""
    return f"{code} {server_text(text)}".strip()


def _is_permanent_code(code: int | None) -> bool:
    return code is not None and 500 <= code < 600


def _is_transient_code(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


# --- after sending: the Sent copy and \Answered ---------------------------------------------


def wants_copy(entry: OutboxEntry) -> bool:
    account = entry.email_account
    return bool((account.copy if entry.copy is None else entry.copy) and account.imap)


def after_sent(entry: OutboxEntry) -> dict | None:
    """Store the copy in Sent (unless ``copy`` is off), remove a sent draft
    (``message/{id}/submit``) and flag a replied-to message \\Answered. All are best
    effort: the mail is out, so a failure here is logged and the copy's fate said in words
    (``sentCopy``), never retried as a send."""
    result = copy_to_sent(entry, bytes(entry.raw)) if wants_copy(entry) else None
    reference = entry.reference or {}
    if reference.get("draft"):
        try:
            remove_draft(entry, reference["draft"])
        except Exception as exc:  # noqa: BLE001
            logger.warning("outbox %s: could not remove the sent draft: %s",
                           entry.queue_id, _why(exc))
    if reference.get("message") and reference.get("action") in ("reply", "replyAll"):
        try:
            flag_answered(entry, reference["message"])
        except Exception as exc:  # noqa: BLE001
            logger.warning("outbox %s: could not flag the original \\Answered: %s",
                           entry.queue_id, _why(exc))
    return result


def _copy_folder(entry: OutboxEntry) -> Folder | None:
    """Where the entry's copy goes: the folder its send named (``sentMailPath``), else Sent."""
    if not entry.sent_path:
        return sent_folder(entry.email_account)
    try:
        return listing.folder_for_path(entry.email_account, entry.sent_path)
    except MailboxNotFound:
        return None


def sent_folder(account) -> Folder | None:
    return (Folder.objects.filter(email_account=account, special_use="\\Sent")
            .order_by("pk").first())


def copy_to_sent(entry: OutboxEntry, raw: bytes) -> dict:
    """APPEND to the Sent special-use folder and index the copy at once (read-your-writes).
    Never raises: the answer says where the copy went, or in words why there is none, or why
    it is not indexed yet. The APPEND is never repeated (a second copy); only the database
    steps around it are retried."""
    account = entry.email_account
    try:
        folder = recorded(entry, lambda: _copy_folder(entry))
    except Exception as exc:  # noqa: BLE001 - see above
        return {"error": f"No copy was stored in Sent: {_why(exc)}"}
    if folder is None and entry.sent_path:
        return {"error": f"No copy was stored: the account has no folder {entry.sent_path!r} "
                         "any more"}
    if folder is None:
        return {"error": "No copy was stored in Sent: the account has no Sent folder"}
    uid = meta = None
    try:
        with pool.session(account) as session:
            uid = _append(session.client, folder.path, raw)
            if uid is not None:
                meta = _appended_meta(session, folder, uid)
    except Exception as exc:  # noqa: BLE001 - see above
        logger.warning("outbox %s: copy in Sent: %s", entry.queue_id, _why(exc))
        if uid is None:
            return {"error": f"No copy was stored in Sent: {_why(exc)}"}
        where = _where(folder, uid)
        if isinstance(exc, FolderReplaced):
            where["id"] = None  # an id names a UID of the folder the index knows
        return {**where, "error": f"Stored in Sent, but not indexed yet: {_why(exc)}. The "
                "next sync of the folder indexes it."}
    copy = _where(folder, uid)
    if meta is not None:
        try:
            recorded(entry, lambda: index.record_append(folder, meta))
        except Exception as exc:  # noqa: BLE001 - see above
            logger.warning("outbox %s: copy in Sent not indexed: %s", entry.queue_id,
                           _why(exc))
            copy["error"] = (f"Stored in Sent, but not indexed yet: {_why(exc)}. The next "
                             "sync of the folder indexes it.")
    return copy


def _where(folder: Folder, uid: int | None) -> dict:
    return {"path": folder.path, "uid": uid,
            "id": ids.message_id_for(folder, uid) if uid is not None else None}


class FolderReplaced(Exception):
    """The server's Sent folder is not the one the index knows (its UIDVALIDITY changed:
    deleted and created again, say); the worker reindexes it."""


def _why(exc: Exception) -> str:
    """Why a step after sending failed, in words: never a server's or the database's own
    text, which may carry internals."""
    if isinstance(exc, DatabaseError):
        return "the database was unavailable"
    if isinstance(exc, FolderReplaced):
        return "the folder was replaced on the mail server"
    if isinstance(exc, MailboxUnavailable):
        return "the mail server was not available"
    if isinstance(exc, imap_append.FolderMissing):
        return "the Sent folder no longer exists on the mail server"
    if isinstance(exc, (imaplib.IMAP4.abort, OSError)):
        return "the connection to the mail server failed"
    if isinstance(exc, (imap_append.WriteError, imaplib.IMAP4.error, ServerRefused)):
        return "the mail server refused it"
    return "an internal error"


def _append(client, path: str, raw: bytes) -> int | None:
    return imap_append.append(client, path, raw, flags=("\\Seen",))


def _appended_meta(session, folder: Folder, uid: int):
    """The new UID's metadata as the worker would fetch it (None if the server does not show
    it); ``FolderReplaced`` when the folder's UIDVALIDITY moved on."""
    info = session.select(folder.path)
    if info.uidvalidity != folder.uidvalidity:
        raise FolderReplaced(folder.path)
    metas = session.fetch_meta(str(uid))
    return metas[0] if metas else None


def remove_draft(entry: OutboxEntry, message_id: str) -> None:
    """Expunge the draft that was sent (as EmailEngine does), then the index (one
    ``messageDeleted``). A draft already gone is left at that."""
    try:
        recorded(entry, lambda: listing.message_by_id(entry.email_account, message_id))
    except MessageNotFound:
        return
    message_writes.delete_message(entry.email_account, message_id, force=True)


def flag_answered(entry: OutboxEntry, message_id: str) -> None:
    """STORE +FLAGS \\Answered on the original, then the index (one ``messageUpdated``); the
    database steps retried like every step after sending."""
    account = entry.email_account
    folder, row = recorded(entry, lambda: listing.message_by_id(account, message_id))
    if "\\Answered" in row.flags:
        return
    with pool.session(account) as session:
        session.client.select_folder(folder.path, readonly=False)
        session.selected = folder.path
        session.client.add_flags([row.uid], [b"\\Answered"], silent=True)
        announcing = gmail.announcing(folder, session.gmail)
    flags = tuple(dict.fromkeys([*row.flags, "\\Answered"]))
    recorded(entry, lambda: index.apply_flag_changes(
        folder, [FlagChange(uid=row.uid, flags=flags, modseq=None)], announcing=announcing))


# --- rq: enqueueing and the sweep ---------------------------------------------------------


def _queue():
    import django_rq

    return django_rq.get_queue(QUEUE)


def job_id(queue_id: str) -> str:
    return f"send-{queue_id}"


def enqueue(entry_pk: int, queue_id: str) -> None:
    """Ask a worker to try the entry now. The id is per entry: the sweep can tell whether a
    job is still waiting; a duplicate would only find the entry claimed."""
    _queue().enqueue_call(send_entry, args=(entry_pk,), job_id=job_id(queue_id),
                          result_ttl=0, failure_ttl=24 * 3600,
                          timeout=max(30, settings.SEND_LEASE - 30))


def enqueue_quietly(entry: OutboxEntry) -> None:
    """``enqueue`` after a submit commits: if Redis is down, the sweep sends it later."""
    try:
        enqueue(entry.pk, entry.queue_id)
    except Exception as exc:  # noqa: BLE001 - the entry is safe in PostgreSQL
        logger.warning("could not enqueue outbox %s (the sweep will): %s", entry.queue_id, exc)


def _job_status(queue_id: str, connection) -> str | None:
    return rq_jobs.status(job_id(queue_id), connection)


def enqueue_due() -> int:
    """Enqueue a job for every due entry without a live one; return how many.

    An entry left ``sending`` past its lease gets a new job even if rq still shows the old
    one as started: the job timeout is shorter than the lease, so that job is dead."""
    queue = _queue()
    count = 0
    for pk, queue_id, lapsed in outbox.due_entries():
        status = _job_status(queue_id, queue.connection)
        if status not in _LIVE_JOB or (lapsed and status == "started"):
            enqueue(pk, queue_id)
            count += 1
    return count
