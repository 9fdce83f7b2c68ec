"""Logs cannot be forged and show no token: control characters in logged values are escaped by
the formatter every process uses (settings ``LOGGING``), and URLs lose their secrets."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from emailapi.lib.logsafe import SafeFormatter, escape_controls, redact_url

ROOT = Path(__file__).resolve().parents[2]
FORGED = "x\r\n2026-01-01 00:00:00,000 INFO emailapi: admin signed in\x1b[2J\x07\x9b31m\u2028\u202e"


def test_every_control_character_is_escaped_on_one_line():
    escaped = escape_controls(FORGED)
    assert escaped == ("x\\r\\n2026-01-01 00:00:00,000 INFO emailapi: admin signed in"
                       "\\x1b[2J\\x07\\x9b31m\\u2028\\u202e")
    assert escape_controls("plain text, é, 中文 and \\Sent") == "plain text, é, 中文 and \\Sent"


def _record(msg, args=(), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("emailapi.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_the_formatter_escapes_messages_and_exception_texts_but_keeps_the_traceback():
    formatter = SafeFormatter("%(levelname)s %(name)s: %(message)s")
    assert formatter.format(_record("greeting was %r then %s", ("a\nb", FORGED))) == (
        "WARNING emailapi.test: greeting was 'a\\nb' then " + escape_controls(FORGED))
    try:
        try:
            raise KeyError("inner\nINFO forged")
        except KeyError as exc:
            raise ValueError(f"server said {FORGED}") from exc
    except ValueError:
        text = formatter.format(_record("failed", exc_info=sys.exc_info()))
    lines = text.split("\n")
    assert lines[0] == "WARNING emailapi.test: failed"
    assert lines[1].startswith("Traceback")
    assert f"ValueError: server said {escape_controls(FORGED)}" in lines
    assert "KeyError: 'inner\\nINFO forged'" in lines
    assert not any(line.startswith(("2026", "INFO")) for line in lines)
    assert "\x1b" not in text
    assert "\r" not in text


def test_every_process_formats_with_it(tmp_path):
    """A management command (any of serve's children) logs through settings ``LOGGING``."""
    code = ("import logging; logging.getLogger('emailapi.x').warning('value: %s', "
            f"{FORGED!r})")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**_env(tmp_path), "DJANGO_SETTINGS_MODULE": "emailapi.settings"})
    assert result.returncode == 0, result.stderr
    assert f"WARNING emailapi.x: value: {escape_controls(FORGED)}" in result.stderr
    assert "\x1b" not in result.stderr
    assert "\n2026-01-01" not in result.stderr


def _env(tmp_path) -> dict:
    import os

    return {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "EMAILAPI_VAR_DIR": str(tmp_path), "EMAILAPI_SECRET": "log-test-secret-0123456789"}


def test_secret_query_values_are_redacted_and_the_rest_kept():
    url = ("/v1/accounts?pageSize=5&access_token=eapi_abc&search%5Bfrom%5D=a%40b&"
           "refresh_token=r&code=c&sig=s&Password=p&state=st&token")
    assert redact_url(url) == ("/v1/accounts?pageSize=5&access_token=***&search%5Bfrom%5D=a%40b&"
                               "refresh_token=***&code=***&sig=***&Password=***&state=st&token")
    assert redact_url("/v1/stream?access%5Ftoken=eapi_x") == "/v1/stream?access%5Ftoken=***"
    assert redact_url("/health") == "/health"
