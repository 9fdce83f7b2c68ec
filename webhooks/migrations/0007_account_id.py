"""``Event.account`` and ``Delivery.account`` (the customer's account id string, not a foreign
key) become ``account_id``, the name that string has everywhere.

Renaming a column keeps the indexes on it (PostgreSQL and SQLite alike), so the indexes that
name the field change in the migration state only and are not rebuilt."""

from django.db import migrations, models


def _indexes(field):
    return [
        ("event", models.Index(fields=["tenant", field, "created_at"], name="event_by_account")),
        ("delivery", models.Index(condition=models.Q(("state__in", ["pending", "delivering"])),
                                  fields=["subscription", field, "seq"],
                                  name="delivery_open_lane")),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0006_delivery_last_response"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveIndex(model_name=model, name=index.name)
            for model, index in _indexes("account")
        ]),
        migrations.RenameField(model_name="event", old_name="account", new_name="account_id"),
        migrations.RenameField(model_name="delivery", old_name="account", new_name="account_id"),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AddIndex(model_name=model, index=index)
            for model, index in _indexes("account_id")
        ]),
    ]
