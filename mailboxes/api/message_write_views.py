"""The message-changing routes: thin views over ``mailboxes.message_writes``.

``PUT``/``DELETE`` of ``message/{id}`` and ``PUT`` of ``messages`` share their paths with the
read routes, so they come as mixins that ``mailboxes.api.views`` adds to those views.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts.api.views import ACCOUNT_PARAM
from emailapi.api.views import TenantScopedAPIView
from mailboxes import listing, message_writes
from mailboxes.api import message_write_serializers as w

TAGS = ["Message"]


class MessageWriteMixin:
    @extend_schema(operation_id="updateMessage", tags=TAGS, request=w.MessageUpdateSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: w.MessageUpdateResultSerializer},
                   summary="Change flags",
                   description="`flags.add`/`delete` or `flags.set` (system flags such as "
                               "`\\Seen` or keywords); stored on the server, then in the index "
                               "(the next GET shows it), with one `messageUpdated`.")
    def put(self, request, account, id):  # noqa: A002
        email_account = self.get_account(account)
        body = self.validated(w.MessageUpdateSerializer, request.data)
        return Response(message_writes.update_message(email_account, id, body.get("flags"),
                                                      body.get("labels")))

    @extend_schema(operation_id="deleteMessage", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, w.DeleteQuerySerializer],
                   responses={200: w.DeleteResultSerializer}, summary="Delete a message",
                   description="Moves it to the Trash special-use folder; `force=true`, a "
                               "message already in Trash, or no Trash: expunges that one UID.")
    def delete(self, request, account, id):  # noqa: A002
        email_account = self.get_account(account)
        query = self.validated(w.DeleteQuerySerializer, request.query_params)
        return Response(message_writes.delete_message(email_account, id, query["force"]))


class BulkUpdateMixin:
    @extend_schema(operation_id="updateMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, w.BulkQuerySerializer],
                   request=w.BulkUpdateSerializer,
                   responses={200: w.BulkUpdateResultSerializer},
                   summary="Change flags of many messages",
                   description="The messages of `path` matching `search` (IMAP SEARCH) or "
                               "listed in `ids`; one STORE per 1,000 UIDs.")
    def put(self, request, account):
        body = self.validated(w.BulkUpdateSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_update(email_account, folder, uids,
                                                   body["update"]["flags"]))


def _selected(view, account_id, request, body):
    query = view.validated(w.BulkQuerySerializer, request.query_params)
    folder = listing.tenant_folder(view.tenant, account_id, query["path"])
    account = folder.account
    uids = message_writes.matching_uids(account, folder, body.get("search"), body.get("ids"))
    return account, folder, uids


class _TransferView(TenantScopedAPIView):
    keep_source = False

    def put(self, request, account, id):  # noqa: A002
        email_account = self.get_account(account)
        body = self.validated(w.MoveSerializer, request.data)
        return Response(message_writes.transfer_message(email_account, id, body["path"],
                                                        self.keep_source))


class MessageMoveView(_TransferView):
    @extend_schema(operation_id="moveMessage", tags=TAGS, request=w.MoveSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: w.MoveResultSerializer},
                   summary="Move a message",
                   description="MOVE where the server has it, else COPY + STORE \\Deleted + "
                               "UID EXPUNGE of that UID only. Returns the new id and UID.")
    def put(self, request, account, id):  # noqa: A002
        return super().put(request, account, id)


class MessageCopyView(_TransferView):
    keep_source = True

    @extend_schema(operation_id="copyMessage", tags=TAGS, request=w.MoveSerializer,
                   parameters=[ACCOUNT_PARAM], responses={200: w.MoveResultSerializer},
                   summary="Copy a message", description="COPY; returns the copy's id and UID.")
    def put(self, request, account, id):  # noqa: A002
        return super().put(request, account, id)


class BulkMoveView(TenantScopedAPIView):
    @extend_schema(operation_id="moveMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, w.BulkQuerySerializer],
                   request=w.BulkMoveSerializer, responses={200: w.BulkMoveResultSerializer},
                   summary="Move many messages",
                   description="The messages of `path` matching `search` or listed in `ids` "
                               "to the body's `path`; one MOVE per 1,000 UIDs.")
    def put(self, request, account):
        body = self.validated(w.BulkMoveSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_move(email_account, folder, uids, body["path"]))


class BulkDeleteView(TenantScopedAPIView):
    @extend_schema(operation_id="deleteMessages", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, w.BulkQuerySerializer],
                   request=w.BulkDeleteSerializer, responses={200: w.BulkDeleteResultSerializer},
                   summary="Delete many messages",
                   description="To Trash, or expunged (`force`, or already in Trash).")
    def post(self, request, account):
        body = self.validated(w.BulkDeleteSerializer, request.data)
        email_account, folder, uids = _selected(self, account, request, body)
        return Response(message_writes.bulk_delete(email_account, folder, uids, body["force"]))

    @extend_schema(operation_id="deleteMessagesPut", tags=TAGS,
                   parameters=[ACCOUNT_PARAM, w.BulkQuerySerializer],
                   request=w.BulkDeleteSerializer, responses={200: w.BulkDeleteResultSerializer},
                   summary="Delete many messages (EmailEngine's PUT)",
                   description="The same as POST, under the method EmailEngine uses.")
    def put(self, request, account):
        return self.post(request, account)
