"""The message index: folders and message metadata of every registered mailbox.

PostgreSQL is the source of truth for listings: the API lists from here without an IMAP round
trip. Bodies are never stored; only what a listing, a search result or an event needs.

Sync cursors are plain columns on ``Folder`` (as nylas' ``ImapFolderInfo``):

- ``uidvalidity``: the server's UIDVALIDITY the rows were indexed under. A change means every
  stored UID is void: the folder is reindexed under a new ``number`` (so old message ids die).
- ``synced_uidnext``: every message with a UID below it is indexed (or is still being back-filled
  below ``backfill_below``); anything at or above it is new.
- ``synced_modseq``: the HIGHESTMODSEQ the stored flags reflect (CONDSTORE servers).
- ``backfill_below``: the first sync indexes newest first; UIDs below this are not indexed yet.
  0 once the folder's history is complete.

Each is advanced in the same transaction as the rows it describes, so a worker killed at any
point resumes where the last commit left off and never indexes a message twice.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import EmailAccount


class Folder(models.Model):
    email_account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE,
                                      related_name="folders")
    path = models.CharField(max_length=1024)
    name = models.CharField(max_length=1024)
    delimiter = models.CharField(max_length=4, blank=True, default="")
    parent_path = models.CharField(max_length=1024, blank=True, default="")
    special_use = models.CharField(max_length=16, blank=True, default="")
    subscribed = models.BooleanField(default=True)
    no_select = models.BooleanField(default=False)
    list_flags = models.JSONField(default=list)
    # Per-account folder number used inside message ids; a new one after UIDVALIDITY changes.
    number = models.PositiveIntegerField()

    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidnext = models.BigIntegerField(null=True, blank=True)
    highestmodseq = models.BigIntegerField(null=True, blank=True)
    messages = models.IntegerField(default=0)
    unseen = models.IntegerField(default=0)

    synced_uidnext = models.BigIntegerField(null=True, blank=True)
    synced_modseq = models.BigIntegerField(null=True, blank=True)
    backfill_below = models.BigIntegerField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email_account", "path"], name="folder_unique_path"),
            models.UniqueConstraint(fields=["email_account", "number"],
                                    name="folder_unique_number"),
        ]

    def __str__(self) -> str:
        return self.path


class Message(models.Model):
    """One message in one folder, as the server last showed it."""

    # No index of their own: every index below leads with the account, the unique (folder,
    # uid) with the folder, and they serve these columns' lookups and cascades. The two
    # B-trees they had cost every insert two more index entries (14 bytes a message, as
    # PostgreSQL deduplicates a key repeated this often) for lookups already served.
    #
    # The account has no constraint in the database, only the folder: a message's folder must
    # exist, and the folder's own key holds it to an account; the account's check cost every
    # inserted row a second lookup at commit (about 3 us of PostgreSQL's 50 a row in a first
    # index) and guarded nothing the folder's does not. Deleting an account still deletes its
    # messages (Django's cascade, and the folder's key would refuse otherwise).
    email_account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="+",
                                      db_index=False, db_constraint=False)
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="message_rows",
                               db_index=False)
    uid = models.BigIntegerField()
    flags = models.JSONField(default=list)
    labels = models.JSONField(default=list)
    modseq = models.BigIntegerField(null=True, blank=True)
    internal_date = models.DateTimeField(null=True, blank=True)
    size = models.BigIntegerField(default=0)

    subject = models.TextField(blank=True, default="")
    from_address = models.JSONField(null=True, blank=True)
    sender = models.JSONField(null=True, blank=True)
    reply_to = models.JSONField(default=list)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    bcc = models.JSONField(default=list)
    date = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=998, blank=True, default="")
    in_reply_to = models.CharField(max_length=998, blank=True, default="")
    references = models.JSONField(default=list)
    has_attachments = models.BooleanField(default=False)
    attachments = models.JSONField(default=list)
    text_parts = models.JSONField(default=list)

    # Lower-cased "name <address>" lists for index search (trigram-indexed on PostgreSQL).
    from_text = models.TextField(blank=True, default="")
    to_text = models.TextField(blank=True, default="")
    cc_text = models.TextField(blank=True, default="")
    bcc_text = models.TextField(blank=True, default="")

    # Survives a move: the server's OBJECTID (or X-GM-MSGID), else a fingerprint.
    email_id = models.CharField(max_length=64, blank=True, default="")
    # The server's THREADID (or X-GM-THRID), else computed from Message-ID/References.
    thread_id = models.CharField(max_length=64, blank=True, default="")
    indexed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "uid"], name="message_unique_uid"),
        ]
        # Newest first walks the unique (folder, uid) index backwards: a second (folder, -uid)
        # index cost every insert and ~40 bytes a message for nothing.
        indexes = [
            models.Index(fields=["email_account", "email_id"], name="message_by_email_id"),
            models.Index(fields=["email_account", "message_id"], name="message_by_message_id"),
            models.Index(fields=["email_account", "thread_id"], name="message_by_thread"),
            models.Index(fields=["email_account", "-internal_date"], name="message_account_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.uid}"


class Bounce(models.Model):
    """A bounce a delivery status notification reported for a message the account sent, kept
    under the original's Message-ID (EmailEngine's ``bounces`` list of a message, which it keeps
    in Redis): ``GET .../message/{id}`` shows them, and they go with the account. Recorded with
    the bounce's own ``messageNew`` and ``messageBounce`` (``mailboxes.sync.index``)."""

    email_account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="+",
                                      db_index=False)  # led by the index below
    message_id = models.CharField(max_length=998)  # the original's Message-ID
    bounce_message = models.CharField(max_length=64)  # the bounce's own message id
    recipient = models.CharField(max_length=998)
    action = models.CharField(max_length=32)
    response_message = models.TextField(blank=True, default="")
    response_status = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["email_account", "message_id", "created_at"],
                                name="bounce_by_message_id")]

    def __str__(self) -> str:
        return f"{self.recipient} {self.action} ({self.message_id})"


class UidBlock(models.Model):
    """How many messages of a folder have UIDs in one block of ``BLOCK_SIZE`` (``uid >>
    BLOCK_BITS``), so a deep listing page (``?page=N``) finds its place by summing a few
    hundred counts and skips at most one block of index entries, not N pages' worth
    (``mailboxes.listing``). On PostgreSQL, statement-level triggers on the message table keep
    the counts in every transaction that inserts or deletes messages, COPY included (migration
    ``0006_uid_blocks``): no writer can forget them. Elsewhere (SQLite) the table stays empty
    and listings use a plain offset."""

    BLOCK_BITS = 10
    BLOCK_SIZE = 1 << BLOCK_BITS

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    block = models.BigIntegerField()
    messages = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["folder", "block"], name="uidblock_unique"),
        ]


class OutboxEntry(models.Model):
    """One message submitted for sending, from ``POST .../submit`` until it is sent or given up.

    PostgreSQL is the queue; rq only carries "try entry N now" jobs, so a restart of every
    process or a Redis emptied of everything loses nothing (the sweep re-enqueues what is due). States::

        queued --claim--> sending --250--> sent
          ^                  |  \\--5xx / last try--> failed
          |---4xx / network--|
        queued --DELETE--> cancelled

    A job claims the row (``sending``, ``attempts`` + 1, ``lease_until``) before it opens any
    connection, and finishes it only if its claim still holds, so a duplicate job never sends
    twice. A job killed mid-send leaves ``sending`` with a lapsed lease: the sweep retries it.

    ``raw`` is the message exactly as it goes over SMTP. It is mail content, not a credential,
    so it is not sealed (the index already holds subjects and addresses in clear); it is
    cleared once the entry is sent and copied to Sent, so sent mail is not kept twice.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        CANCELLED = "cancelled"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    email_account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE,
                                      related_name="outbox")
    queue_id = models.CharField(max_length=32, unique=True)
    source = models.CharField(max_length=16, default="api")
    raw = models.BinaryField(default=b"")
    # {"from": "a@example.com", "to": ["b@example.com", ...]}: what MAIL FROM / RCPT TO say.
    envelope = models.JSONField(default=dict)
    message_id = models.CharField(max_length=998, blank=True, default="")
    subject = models.TextField(blank=True, default="")
    # {"message": id, "action": "reply" | "replyAll" | "forward"}: flagged \Answered once sent.
    reference = models.JSONField(null=True, blank=True)
    # Store a copy in the Sent folder; None follows the account's ``copy`` setting.
    copy = models.BooleanField(null=True, blank=True)
    # The tenant's SMTP gateway (``SmtpGateway.gateway_id``) it goes through, "" for the
    # account's own SMTP server. By id, not a key: a gateway deleted meanwhile fails the send
    # rather than leaving it to go out through another server than the one asked for.
    gateway = models.CharField(max_length=256, blank=True, default="")
    # The folder its copy goes to (EmailEngine's ``sentMailPath``), "" for the Sent folder.
    sent_path = models.CharField(max_length=1024, blank=True, default="")
    # Delivery status notifications asked for (RFC 3461, EmailEngine's ``dsn``): {"id",
    # "return", "notify", "recipient"}; None for none.
    dsn = models.JSONField(null=True, blank=True)
    # The IP address asked to send from (EmailEngine's ``localAddress``), "" for none: a hint,
    # honoured when the operator lists it (``mailboxes.local_address``). Kept with the entry,
    # so a retry in another process starts from the same hint.
    local_address = models.CharField(max_length=64, blank=True, default="")
    # The proxy asked for this send (EmailEngine's submit ``proxy``), "" for the account's
    # (or none): the URL with its password masked, and the password sealed apart
    # (``mailboxes.outbox.proxy_of``), so a retry in another process goes the same way.
    proxy = models.CharField(max_length=2048, blank=True, default="")
    sealed_proxy_password = models.TextField(blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField()
    send_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    # {"error", "code", "responseCode"} of the last failed attempt.
    last_error = models.JSONField(null=True, blank=True)
    # The server's final answer to DATA, e.g. "250 2.0.0 Ok: queued as 4F3A1".
    response = models.TextField(blank=True, default="")
    # Where the Sent copy went ({"path", "uid", "id"}) or why it did not ({"error"}).
    sent_copy = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # For the sweep: only unfinished entries, by when they are due.
            models.Index(fields=["next_attempt_at"], name="outbox_due",
                         condition=models.Q(state__in=["queued", "sending"])),
            models.Index(fields=["tenant", "state", "created_at"], name="outbox_by_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id} ({self.state})"


class SmtpGateway(models.Model):
    """An SMTP server of the tenant's own that sends mail in place of an account's
    (EmailEngine's gateway: ``submit`` with ``gateway``). Its password is sealed
    (``mailboxes.gateways``); ``deliveries``, ``last_use`` and ``last_error`` say how it went."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    gateway_id = models.CharField(max_length=256)
    name = models.CharField(max_length=256, blank=True, default="")
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    secure = models.BooleanField(default=False)
    # {"rejectUnauthorized", "minVersion"}, as a mailbox's server has (ours: EmailEngine's
    # gateways always verify).
    tls = models.JSONField(default=dict, blank=True)
    user = models.CharField(max_length=1024, blank=True, default="")
    sealed_pass = models.TextField(blank=True, default="")
    deliveries = models.PositiveBigIntegerField(default=0)
    last_use = models.DateTimeField(null=True, blank=True)
    # {"error", "code", "responseCode", "time"} of the last failed attempt through it.
    last_error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "gateway_id"],
                                               name="gateway_id_per_tenant")]

    def __str__(self) -> str:
        return self.gateway_id


class WorkerHeartbeat(models.Model):
    """An ``imapworker`` that is alive until ``expires_at``: it renews this row on every claim
    tick (``EMAILAPI_LEASE_TTL`` ahead), so a worker killed with ``kill -9`` lapses by itself.
    One row per worker, not per account: renewing thousands of rows every two seconds would
    be most of the database's write load."""

    worker_id = models.CharField(max_length=255, primary_key=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.worker_id


class AccountHolder(models.Model):
    """Which worker holds an account, as the database knows it (the Redis lease decides; this
    row follows it). A worker writes it right after taking the lease and before anything
    else, so it is the fencing token of the account's state: a worker only records a state
    while the row still names it, and a worker that lost the account (to a takeover after a
    pause or a partition) can no longer say ``connected``.

    The account is held while ``released_at`` is empty and the worker's heartbeat is live;
    otherwise the holder's ``connected`` is stale and reads show ``disconnected``
    (``mailboxes.worker.holders``)."""

    email_account = models.OneToOneField(EmailAccount, on_delete=models.CASCADE,
                                         primary_key=True, related_name="holder")
    # Not a real foreign key: a dead worker's heartbeat row may be gone; then nobody holds it.
    worker = models.ForeignKey(WorkerHeartbeat, on_delete=models.DO_NOTHING, db_constraint=False,
                               related_name="+", db_index=True)
    since = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.email_account_id} by {self.worker_id}"


class MessageTemplate(models.Model):
    """A stored template (EmailEngine's): the subject, text, HTML and preview text, in
    Handlebars, that a send takes with ``template`` (``mailboxes.templates``). One with no
    account is the tenant's shared template (EmailEngine's "public" one)."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    email_account = models.ForeignKey("accounts.EmailAccount", on_delete=models.CASCADE,
                                      null=True, blank=True, related_name="+")
    template_id = models.CharField(max_length=64)
    name = models.CharField(max_length=256)
    description = models.CharField(max_length=1024, blank=True, default="")
    format = models.CharField(max_length=16, default="html")  # html or markdown
    content = models.JSONField(default=dict)  # {subject, text, html, previewText}
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "template_id"],
                                               name="template_id_per_tenant")]
        indexes = [models.Index(fields=["tenant", "email_account", "-created_at"],
                                name="template_listing")]


class BlocklistEntry(models.Model):
    """An address a tenant's list (EmailEngine's ``listId``) sends nothing more to: added by
    the recipient's unsubscribe (the link a list message carries) or over the API
    (``mailboxes.blocklists``). Kept in PostgreSQL, not Redis: a lost unsubscribe is mail to
    someone who asked for none. The account is kept as its id, not a key: deleting the
    account (or registering it again) does not subscribe anyone back."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    list_id = models.CharField(max_length=256)
    address = models.CharField(max_length=320)  # the recipient, lowercased: the key
    recipient = models.CharField(max_length=320)  # as given
    account_id = models.CharField(max_length=256)
    message_id = models.CharField(max_length=998, blank=True, default="")
    source = models.CharField(max_length=16)  # api, one-click or form
    reason = models.CharField(max_length=256)
    remote_address = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "list_id", "address"],
                                               name="blocklist_address_per_list")]


class Export(models.Model):
    """One bulk message export (EmailEngine's ``POST /v1/account/{account}/export``): what was
    asked, where the job is and what it counted, until ``expires_at`` (``mailboxes.exports``).

    States: ``queued`` --job claims--> ``processing`` --> ``completed`` | ``failed``. The file
    the job writes is in ``ExportChunk`` rows, not on a disk: the web process that serves the
    download and the rq worker that wrote it may run on different machines. ``heartbeat_at``
    moves while the job makes progress; a ``processing`` export whose heartbeat stopped lost its
    worker and is marked failed by the sweep."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    email_account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="+")
    export_id = models.CharField(max_length=32, unique=True)  # exp_ + 24 hex
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=16, blank=True, default="")  # indexing, exporting, complete
    folders = models.JSONField(default=list)  # as asked: paths or special uses
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    text_type = models.CharField(max_length=8, default="*")
    max_bytes = models.BigIntegerField()
    include_attachments = models.BooleanField(default=False)
    folders_scanned = models.IntegerField(default=0)
    folders_total = models.IntegerField(default=0)
    messages_queued = models.IntegerField(default=0)
    messages_exported = models.IntegerField(default=0)
    messages_skipped = models.IntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)  # NDJSON bytes, before gzip
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "email_account", "-created_at"], name="export_listing"),
            models.Index(fields=["expires_at"], name="export_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.export_id} ({self.status})"


class ExportChunk(models.Model):
    """One piece of an export's gzip file, in order (``seq`` from 0); the download is their
    concatenation, read one row at a time."""

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="+")
    seq = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["export", "seq"], name="export_chunk_seq")]
