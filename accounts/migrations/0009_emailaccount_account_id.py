"""``EmailAccount.account`` becomes ``account_id`` (the customer's id for the mailbox), so that
``account.account`` is gone and ``account_id`` means that string everywhere.

Renaming the column keeps the unique index on (tenant, column) on PostgreSQL and SQLite alike;
only the migration state's copy of the constraint names the field, so it is swapped in the
state alone and the index is not rebuilt."""

from django.db import migrations, models

OLD = models.UniqueConstraint(fields=("tenant", "account"), name="email_account_unique_id")
NEW = models.UniqueConstraint(fields=("tenant", "account_id"), name="email_account_unique_id")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0008_tenant_mail_allow_private"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveConstraint(model_name="emailaccount", name=OLD.name),
        ]),
        migrations.RenameField(model_name="emailaccount", old_name="account", new_name="account_id"),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AddConstraint(model_name="emailaccount", constraint=NEW),
        ]),
    ]
