from django.urls import include, path

from mailboxes.api import message_write_views, views

urlpatterns = [
    path("account/<str:account>/mailboxes", views.MailboxListView.as_view(),
         name="mailbox-list"),
    path("account/<str:account>/messages", views.MessageListView.as_view(),
         name="message-list"),
    path("", include("mailboxes.api.folder_urls")),
    path("account/<str:account>/messages/move", message_write_views.BulkMoveView.as_view(),
         name="messages-move"),
    path("account/<str:account>/messages/delete", message_write_views.BulkDeleteView.as_view(),
         name="messages-delete"),
    path("account/<str:account>/message/<str:id>", views.MessageView.as_view(),
         name="message-detail"),
    path("account/<str:account>/message/<str:id>/move",
         message_write_views.MessageMoveView.as_view(), name="message-move"),
    path("account/<str:account>/message/<str:id>/copy",
         message_write_views.MessageCopyView.as_view(), name="message-copy"),
    path("account/<str:account>/message/<str:id>/source", views.MessageSourceView.as_view(),
         name="message-source"),
    path("account/<str:account>/attachment/<str:attachment>", views.AttachmentView.as_view(),
         name="attachment"),
]

urlpatterns += [
    path("account/<str:account>/search", views.SearchView.as_view(), name="message-search"),
    path("account/<str:account>/threads", views.ThreadListView.as_view(), name="thread-list"),
    path("account/<str:account>/thread/<str:thread>", views.ThreadView.as_view(),
         name="thread-detail"),
]
