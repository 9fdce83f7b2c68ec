"""The message table's two foreign keys lose their own single-column indexes: every other
index of the table leads with ``email_account_id``, and the unique ``(folder_id, uid)`` with
``folder_id``, so those already serve the lookups and the cascades. The two extra B-trees cost
every insert two more index entries (14 bytes a message in a 50,000-message first index, as
PostgreSQL deduplicates a key repeated this often).

On PostgreSQL only the indexes are dropped. Django's ``AlterField`` would also drop and add
back both foreign key constraints, and adding one back checks every row of the table under a
lock that stops writes: minutes on a big index, for a constraint that does not change.
Elsewhere (SQLite) ``AlterField`` rebuilds the table as it always does."""

import django.db.models.deletion
from django.db import migrations, models

from mailboxes.migrations._operations import OffPostgres, OnPostgres

# Each column's own index, whatever Django named it (the account's was made as account_id,
# before 0005 renamed the column): a plain B-tree on that column alone.
_DROP = """
DO $$
DECLARE name text;
BEGIN
  FOR name IN
    SELECT i.relname FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
     WHERE x.indrelid = 'mailboxes_message'::regclass AND x.indnatts = 1
       AND NOT x.indisunique AND a.attname = '{column}'
  LOOP
    EXECUTE format('DROP INDEX %I', name);
  END LOOP;
END $$;
"""
_CREATE = 'CREATE INDEX "mailboxes_message_{column}_own" ON "mailboxes_message" ("{column}")'


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0012_index_progress'),
        ('mailboxes', '0006_uid_blocks'),
    ]

    operations = [
        *[OnPostgres(_DROP.format(column=column), _CREATE.format(column=column))
          for column in ("email_account_id", "folder_id")],
        OffPostgres([
            migrations.AlterField(
                model_name='message',
                name='email_account',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.emailaccount'),
            ),
            migrations.AlterField(
                model_name='message',
                name='folder',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='message_rows', to='mailboxes.folder'),
            ),
        ]),
    ]
