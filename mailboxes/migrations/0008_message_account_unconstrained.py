"""The message table's key to the account leaves the database; its key to the folder stays.

A message's folder must exist, and the folder's own key holds it to an account, so the
account's key guarded nothing more, while PostgreSQL checked it for every inserted row at
commit (a lookup of the account's row: about 3 us of its 50 a row in a first index). Django
still deletes an account's messages with it (its cascade, which does not need the constraint).
Dropping a constraint is immediate on PostgreSQL; going back adds it again, checking every row."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0012_index_progress'),
        ('mailboxes', '0007_message_foreign_keys_unindexed'),
    ]

    operations = [
        migrations.AlterField(
            model_name='message',
            name='email_account',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.emailaccount'),
        ),
    ]
