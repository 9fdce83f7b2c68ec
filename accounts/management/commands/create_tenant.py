"""``manage.py create_tenant NAME [--scopes api]``: a new tenant and its first API token.

The token is printed alone on the last line so scripts can take it with ``tail -n 1``.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services, tokens


class Command(BaseCommand):
    help = "Create a tenant (organization) and an API token for it; prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Organization name")
        parser.add_argument("--scopes", default="api",
                            help=f"Comma-separated token scopes ({', '.join(tokens.SCOPES)})")
        parser.add_argument("--token-name", default="default", help="Label for the token")

    def handle(self, *args, name, scopes, token_name, **options):
        if not name.strip():
            raise CommandError("NAME must not be empty")
        try:
            scope_list = tokens.parse_scopes(scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        with transaction.atomic():
            tenant = services.create_tenant(name.strip())
            _, raw = services.issue_token(tenant, token_name, scope_list)
        self.stdout.write(f"Created tenant {tenant.name!r} (slug {tenant.slug}, id {tenant.pk}).")
        self.stdout.write(f"API token with scopes {','.join(scope_list)} (shown only once):")
        self.stdout.write(raw)
