"""Migration operations that run on one kind of database only (PostgreSQL does some things in
place that SQLite can only do by rebuilding a table, and the other way round). A module whose
name starts with ``_`` is not a migration to Django's loader."""

from django.db import migrations


class OnPostgres(migrations.RunSQL):
    """SQL that runs on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class OffPostgres(migrations.SeparateDatabaseAndState):
    """``operations`` change the state everywhere and the database except on PostgreSQL."""

    def __init__(self, operations):
        super().__init__(database_operations=operations, state_operations=operations)
        self.operations = operations

    def deconstruct(self):
        return self.__class__.__name__, [self.operations], {}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
