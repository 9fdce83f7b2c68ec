"""Saving a row only while it still exists.

Django's ``Model.save()`` on an instance whose row is gone inserts it again: an update of a
webhook or an OAuth2 app that raced its delete brought the deleted row back (both requests
answered 200, and the webhook went on receiving events). ``save_existing`` locks the row
first, so a delete either finished before (nothing is saved: the caller answers "not found")
or waits until this save commits and then deletes what was saved.
"""

from __future__ import annotations

from django.db import models, transaction


def save_existing(instance: models.Model, update_fields: list[str] | None = None) -> bool:
    """Save ``instance`` if its row exists; False (nothing written) when it was deleted."""
    with transaction.atomic():
        rows = type(instance)._default_manager.select_for_update().filter(pk=instance.pk)
        if not rows.exists():
            return False
        instance.save(update_fields=update_fields)
    return True
