#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    from emailapi.lib.process_exit import skip_final_collection

    skip_final_collection()  # serve and its workers stop in a fraction of a second each
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
