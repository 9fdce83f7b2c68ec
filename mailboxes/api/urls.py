"""Routes of the mailbox API (under /v1, namespace ``mailboxes``): one view class per path."""

from django.urls import path

from mailboxes.api import content, folders, gateways, logs, messages, search, submit, threads

app_name = "mailboxes"

urlpatterns = [
    path("account/<str:account>/mailboxes", folders.MailboxListView.as_view(),
         name="mailbox-list"),
    path("account/<str:account>/messages", messages.MessageListView.as_view(),
         name="message-list"),
    path("account/<str:account>/mailbox", folders.MailboxView.as_view(), name="mailbox"),
    path("account/<str:account>/message", messages.UploadView.as_view(), name="message-upload"),
    path("account/<str:account>/messages/move", messages.BulkMoveView.as_view(),
         name="messages-move"),
    path("account/<str:account>/messages/delete", messages.BulkDeleteView.as_view(),
         name="messages-delete"),
    path("account/<str:account>/message/<str:id>", messages.MessageView.as_view(),
         name="message-detail"),
    path("account/<str:account>/message/<str:id>/move", messages.MessageMoveView.as_view(),
         name="message-move"),
    path("account/<str:account>/message/<str:id>/copy", messages.MessageCopyView.as_view(),
         name="message-copy"),
    path("account/<str:account>/message/<str:id>/submit", submit.DraftSubmitView.as_view(),
         name="message-submit"),
    path("account/<str:account>/message/<str:id>/source", content.MessageSourceView.as_view(),
         name="message-source"),
    path("account/<str:account>/text/<str:text>", content.TextView.as_view(),
         name="message-text"),
    path("account/<str:account>/attachment/<str:attachment>", content.AttachmentView.as_view(),
         name="attachment"),
    path("account/<str:account>/search", search.SearchView.as_view(), name="message-search"),
    path("account/<str:account>/threads", threads.ThreadListView.as_view(), name="thread-list"),
    path("account/<str:account>/thread/<str:thread>", threads.ThreadView.as_view(),
         name="thread-detail"),
    path("account/<str:account>/submit", submit.SubmitView.as_view(), name="submit"),
    path("outbox", submit.OutboxListView.as_view(), name="outbox-list"),
    path("gateways", gateways.GatewayListView.as_view(), name="gateway-list"),
    path("gateway", gateways.GatewayCreateView.as_view(), name="gateway-create"),
    path("gateway/<str:gateway>", gateways.GatewayDetailView.as_view(), name="gateway-detail"),
    path("gateway/edit/<str:gateway>", gateways.GatewayEditView.as_view(), name="gateway-edit"),
    path("logs/<str:account>", logs.AccountLogView.as_view(), name="account-logs"),
    path("outbox/<str:queueId>", submit.OutboxEntryView.as_view(), name="outbox-entry"),
]
