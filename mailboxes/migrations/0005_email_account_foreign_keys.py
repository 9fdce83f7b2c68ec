"""The foreign keys to ``EmailAccount`` are called ``email_account`` (column
``email_account_id``), so that ``account_id`` always means the customer's id string.

The indexes and constraints that name the field keep their names and columns. PostgreSQL
renames a column in place and they follow it, so there only the migration state's copies
change (no index of the message table is rebuilt). SQLite copies a table to rename a
foreign key and would leave behind whatever the state no longer lists, so there they are
dropped before the rename and made again after it."""

from django.db import migrations, models

from mailboxes.migrations._operations import OffPostgres


def _constraints(field):
    return [
        ("folder", models.UniqueConstraint(fields=(field, "path"), name="folder_unique_path")),
        ("folder", models.UniqueConstraint(fields=(field, "number"), name="folder_unique_number")),
    ]


def _indexes(field):
    return [
        ("message", models.Index(fields=[field, "email_id"], name="message_by_email_id")),
        ("message", models.Index(fields=[field, "message_id"], name="message_by_message_id")),
        ("message", models.Index(fields=[field, "thread_id"], name="message_by_thread")),
        ("message", models.Index(fields=[field, "-internal_date"], name="message_account_newest")),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("mailboxes", "0004_worker_holders"),
    ]

    operations = [
        OffPostgres([
            *[migrations.RemoveConstraint(model_name=model, name=c.name)
              for model, c in _constraints("account")],
            *[migrations.RemoveIndex(model_name=model, name=i.name)
              for model, i in _indexes("account")],
        ]),
        migrations.RenameField(model_name="folder", old_name="account", new_name="email_account"),
        migrations.RenameField(model_name="message", old_name="account", new_name="email_account"),
        migrations.RenameField(model_name="outboxentry", old_name="account",
                               new_name="email_account"),
        migrations.RenameField(model_name="accountholder", old_name="account",
                               new_name="email_account"),
        OffPostgres([
            *[migrations.AddConstraint(model_name=model, constraint=c)
              for model, c in _constraints("email_account")],
            *[migrations.AddIndex(model_name=model, index=i)
              for model, i in _indexes("email_account")],
        ]),
    ]
