"""``manage.py create_token TENANT [--scopes read]``: another API token for a tenant.

TENANT is the tenant's slug or numeric id. The token is printed alone on the last line.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import services, tokens
from accounts.models import Tenant


class Command(BaseCommand):
    help = "Create an API token for an existing tenant (by slug or id); prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="Tenant slug or id")
        parser.add_argument("--scopes", default="api",
                            help=f"Comma-separated token scopes ({', '.join(tokens.SCOPES)})")
        parser.add_argument("--name", default="cli", help="Label for the token")

    def handle(self, *args, tenant, scopes, name, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None and tenant.isdigit():
            found = Tenant.objects.filter(pk=int(tenant)).first()
        if found is None:
            raise CommandError(f"No tenant with slug or id {tenant!r}")
        try:
            scope_list = tokens.parse_scopes(scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        _, raw = services.issue_token(found, name, scope_list)
        self.stdout.write(f"API token {name!r} for tenant {found.slug} with scopes "
                          f"{','.join(scope_list)} (shown only once):")
        self.stdout.write(raw)
