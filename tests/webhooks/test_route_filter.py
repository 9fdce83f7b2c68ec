"""``webhooks.routes.filter_function``: a subscription's events and accounts as the body of an
EmailEngine route filter. Pure; where Node.js is installed, the generated body is also run on
payloads and must pass exactly what ``WebhookSubscription.wants`` passes."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from webhooks.models import Event, WebhookSubscription
from webhooks.routes import filter_function


def test_every_event_of_every_account_has_no_filter():
    assert filter_function(["*"], []) is None
    assert filter_function(["messageNew", "*"], []) is None


def test_events_and_accounts_both_narrow():
    assert filter_function(["messageNew", "messageDeleted"], ["acc1"]) == (
        'return ["messageNew","messageDeleted"].includes(payload.event) '
        '&& ["acc1"].includes(payload.account);')


def test_events_alone_or_accounts_alone():
    assert filter_function(["messageNew"], []) == 'return ["messageNew"].includes(payload.event);'
    assert filter_function(["*"], ["a", "b"]) == 'return ["a","b"].includes(payload.account);'


def test_no_events_passes_nothing_as_the_subscription_does():
    assert filter_function([], []) == "return [].includes(payload.event);"


def test_ids_are_json_strings_with_non_ascii_escaped():
    # Quotes, backslashes and line separators (U+2028 ends a line in older JavaScript)
    # cannot end the string or the statement.
    fn = filter_function(["*"], ['x"];alert(1);//', "a\\b", "line\u2028sep", "é"])
    assert fn == ('return ["x\\"];alert(1);//","a\\\\b","line\\u2028sep","\\u00e9"]'
                  '.includes(payload.account);')
    assert fn.isascii()


CASES = [(["*"], []), (["messageNew"], []), (["*"], ["box"]),
         (["messageNew", "messageDeleted"], ["box", 'q"uote\u2028']), ([], [])]
PAYLOADS = [("messageNew", "box"), ("messageDeleted", 'q"uote\u2028'), ("messageNew", "other"),
            ("accountAdded", "box"), ("webhookDisabled", None)]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_generated_javascript_passes_what_the_subscription_wants():
    script = """
    const cases = JSON.parse(process.argv[1]);
    const out = cases.map(([fn, payloads]) => payloads.map(payload =>
        fn === null ? true : Boolean(new Function("payload", fn)(payload))));
    process.stdout.write(JSON.stringify(out));
    """
    cases = [[filter_function(events, accounts),
              [{"event": event, "account": account} for event, account in PAYLOADS]]
             for events, accounts in CASES]
    ran = subprocess.run(["node", "-e", script, json.dumps(cases)], capture_output=True,
                         text=True, timeout=60, check=True)
    expected = [[WebhookSubscription(events=events, accounts=accounts)
                 .wants(Event(event=event, account_id=account or ""))
                 for event, account in PAYLOADS] for events, accounts in CASES]
    assert json.loads(ran.stdout) == expected
