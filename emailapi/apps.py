from django.apps import AppConfig


class EmailapiConfig(AppConfig):
    name = "emailapi"
    verbose_name = "emailapi"

    def ready(self) -> None:
        from emailapi import checks  # noqa: F401  (registers system checks)
