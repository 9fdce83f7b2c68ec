"""Pure unit tests of ``mailboxes.imap.search`` (criteria -> UID SEARCH bytes) and of the API's
``SearchCriteriaSerializer``.

Why the exact bytes: the point of the module is that no search value can be read by the server
as IMAP syntax, so the tests spell out what goes on the wire for every criterion and for every
known way to break out of a string (quotes, CRLF, literal announcements, parentheses,
wildcards, 8-bit bytes). No server, no database.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from rest_framework.exceptions import ValidationError

from emailapi.api.errors import exception_handler
from emailapi.api.views import TenantScopedAPIView
from mailboxes.api.search_serializer import SearchCriteriaSerializer
from mailboxes.imap import search
from mailboxes.imap.search import InvalidSearch, String, compile_search, needs_charset

NONSYNC = search.MAX_VALUE_BYTES  # what uid_search uses with LITERAL+


def wire(criteria: dict, nonsync_limit: int | None = NONSYNC) -> bytes:
    chunks = search.wire_chunks(compile_search(criteria), nonsync_limit)
    return b"".join(chunks)


def refused(criteria: dict) -> InvalidSearch:
    with pytest.raises(InvalidSearch) as caught:
        compile_search(criteria)
    return caught.value


# -- every criterion -------------------------------------------------------------------------


def test_it_searches_all_for_an_empty_search():
    assert compile_search({}) == ["ALL"]
    assert wire({}) == b"ALL\r\n"


@pytest.mark.parametrize("name, key", [
    ("from", b"FROM"), ("to", b"TO"), ("cc", b"CC"), ("bcc", b"BCC"), ("subject", b"SUBJECT"),
    ("body", b"BODY"), ("text", b"TEXT"),
])
def test_it_sends_string_criteria_quoted(name, key):
    assert compile_search({name: "hello world"}) == [key.decode(), String(b"hello world")]
    assert wire({name: "hello world"}) == key + b' "hello world"\r\n'


@pytest.mark.parametrize("name, yes, no", [
    ("seen", "SEEN", "UNSEEN"), ("flagged", "FLAGGED", "UNFLAGGED"),
    ("answered", "ANSWERED", "UNANSWERED"), ("draft", "DRAFT", "UNDRAFT"),
    ("deleted", "DELETED", "UNDELETED"),
])
def test_it_maps_flag_booleans_to_positive_and_negative_keys(name, yes, no):
    assert compile_search({name: True}) == [yes]
    assert compile_search({name: False}) == [no]


@pytest.mark.parametrize("name, key", [
    ("since", "SINCE"), ("before", "BEFORE"), ("sentSince", "SENTSINCE"),
    ("sentBefore", "SENTBEFORE"),
])
def test_it_formats_dates_as_imap_dates(name, key):
    assert compile_search({name: "2024-02-01"}) == [key, "1-Feb-2024"]
    assert compile_search({name: "2024-12-31T23:59:59"}) == [key, "31-Dec-2024"]


@pytest.mark.parametrize("value, expected", [
    ("2024-02-01", "1-Feb-2024"),
    ("2024-02-01T10:00Z", "1-Feb-2024"),
    ("2024-02-01T23:30:00-02:00", "2-Feb-2024"),  # 01:30 UTC the next day
    ("2024-02-01T00:30:00+02:00", "31-Jan-2024"),  # 22:30 UTC the day before
    ("2024-02-01 08:00:00.123456+00:00", "1-Feb-2024"),
    ("2024-02-01T23:30", "1-Feb-2024"),  # no offset: taken as it is
    (date(2023, 9, 9), "9-Sep-2023"),
    (datetime(2024, 6, 30, 23, 0, tzinfo=timezone(timedelta(hours=-5))), "1-Jul-2024"),
    ("0999-05-05", "5-May-0999"),
])
def test_it_turns_dates_and_datetimes_into_the_utc_day(value, expected):
    assert compile_search({"since": value}) == ["SINCE", expected]


@pytest.mark.parametrize("value", [
    "2024-02-30", "yesterday", "2024-2-1", "20240201", "2024-W05-4", "2024-02-01T25:00",
    "2024-02-01T10:00+0200", "01.02.2024", "", 20240201, True, None, ["2024-02-01"],
])
def test_it_refuses_anything_but_an_iso_date(value):
    error = refused({"before": value})
    assert error.path == "before"


def test_it_sends_sizes_as_numbers():
    assert compile_search({"larger": 0, "smaller": 4294967295}) == [
        "LARGER", "0", "SMALLER", "4294967295"]


@pytest.mark.parametrize("value", [-1, 2**32, True, 1.5, "10", None])
def test_it_refuses_sizes_that_are_not_unsigned_32_bit_integers(value):
    assert refused({"larger": value}).path == "larger"


@pytest.mark.parametrize("value", ["1", "1:5,7,10:*", "*", "*:4", "4294967295", "1,2,3:4,5:*"])
def test_it_sends_valid_uid_sets_as_they_are(value):
    assert compile_search({"uid": value}) == ["UID", value]


@pytest.mark.parametrize("value", [
    "", "0", "01", "1:", ":5", ",1", "1,,2", "1 2", "1:5 ALL", "1:5)", "(1)", "$", "1:$",
    "4294967296", "1:4294967296", "1\r\n", "1:5,", "a", "1.5", "１", 5, None,
])
def test_it_refuses_anything_but_a_uid_set(value):
    error = refused({"uid": value})
    assert error.path == "uid"


def test_it_searches_headers_with_name_and_value_as_strings():
    assert wire({"header": {"X-Campaign": "spring", "List-Id": ""}}) == (
        b'HEADER "X-Campaign" "spring" HEADER "List-Id" ""\r\n')


@pytest.mark.parametrize("name", [
    "", "X Foo", "X:Foo", "X-Foo:", "Grüße", "X\r\nFoo", "X\tFoo", "X-\x00", "a" * 201,
])
def test_it_refuses_invalid_header_names(name):
    error = refused({"header": {name: "v"}})
    assert error.path == f"header.{name}"


def test_it_refuses_empty_or_malformed_header_criteria():
    assert refused({"header": {}}).path == "header"
    assert refused({"header": ["X-Foo"]}).path == "header"
    assert refused({"header": {"X-Foo": None}}).path == "header.X-Foo"
    assert refused({"header": {f"X-{n}": "" for n in range(21)}}).path == "header"


def test_it_sends_keywords_as_atoms():
    assert wire({"keyword": "$Important", "unKeyword": "NonJunk"}) == (
        b"KEYWORD $Important UNKEYWORD NonJunk\r\n")


@pytest.mark.parametrize("value", [
    "", "a b", "\\Seen", "a(", "a)", "{5}", "a}", "%", "*", 'a"', "a]", "ä", "a\r\n", "a\x00",
    "x" * 201, 5,
])
def test_it_refuses_keywords_that_are_not_atoms(value):
    assert refused({"unKeyword": value}).path == "unKeyword"


def test_it_ands_criteria_in_a_fixed_order_whatever_the_dict_order():
    one = {"subject": "a", "seen": False, "from": "b", "since": "2024-01-01"}
    two = dict(reversed(list(one.items())))
    assert compile_search(one) == compile_search(two) == [
        "UNSEEN", "SINCE", "1-Jan-2024", "FROM", String(b"b"), "SUBJECT", String(b"a")]


# -- or / not --------------------------------------------------------------------------------


def test_it_compiles_or_of_two():
    assert wire({"or": [{"seen": True}, {"flagged": True}]}) == b"OR SEEN FLAGGED\r\n"


def test_it_nests_or_pairwise():
    criteria = {"or": [{"subject": "a"}, {"subject": "b"}, {"subject": "c"}, {"subject": "d"}]}
    assert wire(criteria) == b'OR SUBJECT "a" OR SUBJECT "b" OR SUBJECT "c" SUBJECT "d"\r\n'


def test_it_parenthesises_operands_with_several_keys():
    criteria = {"or": [{"seen": True, "from": "x"}, {}], "not": {"draft": True, "deleted": True}}
    assert wire(criteria) == b'OR (SEEN FROM "x") ALL NOT (DRAFT DELETED)\r\n'


def test_it_compiles_not_of_one_key_without_parentheses():
    assert wire({"not": {"seen": True}}) == b"NOT SEEN\r\n"
    assert wire({"not": {}}) == b"NOT ALL\r\n"


def test_it_compiles_nested_or_and_not():
    criteria = {
        "from": "billing",
        "or": [
            {"not": {"or": [{"seen": True}, {"keyword": "$Done"}]}},
            {"subject": "urgent", "header": {"X-Priority": "1"}},
        ],
    }
    assert wire(criteria) == (
        b'FROM "billing" OR NOT OR SEEN KEYWORD $Done '
        b'(SUBJECT "urgent" HEADER "X-Priority" "1")\r\n')


@pytest.mark.parametrize("value, path", [
    ([{"seen": True}], "or"),
    ([], "or"),
    ({"seen": True}, "or"),
    ([{"seen": True}] * 51, "or"),
    ([{"seen": True}, "seen"], "or.1"),
    ([{"seen": True}, {"subjekt": "x"}], "or.1.subjekt"),
    ([{"seen": True}, {"not": {"subject": 5}}], "or.1.not.subject"),
])
def test_it_refuses_malformed_or(value, path):
    assert refused({"or": value}).path == path


def test_it_refuses_malformed_not():
    assert refused({"not": [{"seen": True}]}).path == "not"
    assert refused({"not": {"seen": "yes"}}).path == "not.seen"


def test_it_limits_nesting_depth():
    criteria: dict = {"seen": True}
    for _ in range(search.MAX_DEPTH):
        criteria = {"not": criteria}
    assert compile_search(criteria)[: search.MAX_DEPTH] == ["NOT"] * search.MAX_DEPTH
    error = refused({"not": criteria})
    assert error.path == ".".join(["not"] * (search.MAX_DEPTH + 1))


def test_it_limits_the_number_of_criteria():
    wide = {"or": [{"subject": str(n)} for n in range(50)]}
    error = refused({"or": [wide, wide, wide, wide, wide]})
    assert "more than 200 criteria" in error.message


def test_it_refuses_unknown_criteria_and_non_objects():
    assert refused({"subjekt": "x"}).path == "subjekt"
    assert refused({"seen": True, "unflagged": True}).path == "unflagged"
    error = refused(["subject", "x"])  # type: ignore[arg-type]
    assert (error.path, error.message) == ("", "Must be an object")


@pytest.mark.parametrize("criteria", [
    {"subject": 5}, {"subject": None}, {"subject": True}, {"subject": ["a"]}, {"seen": "true"},
    {"seen": 1}, {"seen": None},
])
def test_it_refuses_wrong_types(criteria):
    assert refused(criteria).path == next(iter(criteria))


# -- quoting, literals, injection ------------------------------------------------------------


@pytest.mark.parametrize("value", [
    'x" OR ALL "', 'x") ALL ("', "a\\", "\\", '"', 'x"', "a\r\nA1 LOGOUT", "\r\n", "\n", "\r",
    "tab\there", "\x01", "\x7f",
])
def test_it_sends_quotes_backslashes_and_control_characters_as_literals(value):
    data = value.encode()
    assert wire({"subject": value}) == b"SUBJECT {%d+}\r\n%s\r\n" % (len(data), data)
    assert wire({"subject": value}, nonsync_limit=None) == (
        b"SUBJECT {%d}\r\n%s\r\n" % (len(data), data))


@pytest.mark.parametrize("value", ["{5}", "x {5}", "{5+}", "~{5}", "*", "%", ")(", "(", ")",
                                   "a ) OR ( b", "]", "[", "", " ", "NIL"])
def test_it_quotes_printable_ascii_with_syntax_characters(value):
    """Inside quotes these are plain characters: the string ends only at the closing quote."""
    assert wire({"text": value}) == b'TEXT "%s"\r\n' % value.encode()


def test_it_never_ends_a_line_with_a_literal_announcement_from_user_data():
    for value in ["{5}", "x{0}", "{99999999}", "{1+}"]:
        for line in wire({"subject": value, "body": value}).split(b"\r\n")[:-1]:
            assert line.endswith(b'"')


def test_it_refuses_nul():
    error = refused({"or": [{"seen": True}, {"subject": "a\x00b"}]})
    assert error.path == "or.1.subject"
    assert "NUL" in error.message
    assert refused({"header": {"X-Foo": "\x00"}}).path == "header.X-Foo"


def test_it_refuses_lone_surrogates():
    assert refused({"body": "a\ud800b"}).path == "body"


def test_it_sends_non_ascii_as_a_utf8_literal_and_needs_the_charset():
    args = compile_search({"subject": "Rechnung für März"})
    assert needs_charset(args)
    data = "Rechnung für März".encode()
    assert search.wire_chunks(args, NONSYNC) == [b"SUBJECT {19+}\r\n" + data + b"\r\n"]
    assert len(data) == 19


def test_it_needs_no_charset_for_ascii():
    assert not needs_charset(compile_search({"subject": 'quote " and \r\n', "seen": True}))
    assert not needs_charset(compile_search({}))
    assert needs_charset(compile_search({"not": {"header": {"X-Name": "Zoë"}}}))


def test_it_sends_long_strings_as_literals():
    short, long = "a" * search.MAX_QUOTED, "a" * (search.MAX_QUOTED + 1)
    assert wire({"subject": short}) == b'SUBJECT "' + short.encode() + b'"\r\n'
    assert wire({"subject": long}) == b"SUBJECT {1001+}\r\n" + long.encode() + b"\r\n"


def test_it_caps_value_and_total_sizes():
    at_limit = "a" * search.MAX_VALUE_BYTES
    assert compile_search({"body": at_limit})[1] == String(at_limit.encode())
    assert refused({"body": at_limit + "a"}).path == "body"
    assert refused({"body": "ä" * (search.MAX_VALUE_BYTES // 2 + 1)}).path == "body"
    assert search.MAX_TOTAL_BYTES == 3 * search.MAX_VALUE_BYTES
    three = {"or": [{"body": at_limit} for _ in range(3)]}
    assert len(compile_search(three)) == 8
    error = refused({**three, "not": {"keyword": "x"}})  # "not" is compiled after "or"
    assert error.path == "not.keyword"
    assert "add up to" in error.message
    assert refused({"or": [{"body": at_limit} for _ in range(4)]}).path == "or.3.body"
    # UID sets and header names count too (compiled before "or", which then overflows).
    assert refused({**three, "uid": "1"}).path == "or.2.body"
    assert refused({**three, "header": {"X": ""}}).path == "or.2.body"


def test_it_splits_the_command_at_each_synchronizing_literal():
    args = ["UID", "SEARCH", *compile_search({"subject": "März", "body": 'a"b', "seen": True})]
    assert search.wire_chunks(args, None) == [
        b"UID SEARCH SEEN SUBJECT {5}\r\n",
        "März".encode() + b" BODY {3}\r\n",
        b'a"b\r\n',
    ]


def test_it_uses_synchronizing_literals_above_the_literal_minus_limit():
    small, big = "ä" * 10, "ä" * 2100  # 20 and 4200 bytes
    chunks = search.wire_chunks(compile_search({"subject": small, "body": big}),
                                search.LITERAL_MINUS_MAX)
    assert chunks == [
        b"SUBJECT {20+}\r\n" + small.encode() + b" BODY {4200}\r\n",
        big.encode() + b"\r\n",
    ]


def test_it_refuses_raw_tokens_that_could_carry_syntax():
    """A str is syntax; should one ever carry user data, wire_chunks refuses it."""
    for token in ['"x"', "{5}", "a b", "a\r\n", "ä", "\\Seen", ""]:
        with pytest.raises(ValueError, match="not an IMAP syntax token"):
            search.wire_chunks(["SUBJECT", token])


def test_invalid_search_is_a_value_error_with_a_path():
    error = refused({"or": [{}, {"larger": -5}]})
    assert isinstance(error, ValueError)
    assert str(error) == "or.1.larger: Must be between 0 and 4294967295"


# -- the API serializer ----------------------------------------------------------------------


def validated(data):
    return TenantScopedAPIView().validated(SearchCriteriaSerializer, data)


def error_response(data) -> dict:
    """The JSON body the API would answer (views validate with ``validated``)."""
    with pytest.raises(ValidationError) as caught:
        validated(data)
    response = exception_handler(caught.value, {})
    assert response.status_code == 400
    assert response.data["code"] == "InputValidationError"
    assert response.data["statusCode"] == 400
    return response.data


def test_serializer_accepts_every_criterion_and_compiles_the_result():
    data = {
        "from": "a", "to": "b", "cc": "c", "bcc": "d", "subject": "März", "body": "e",
        "text": "f", "seen": True, "flagged": False, "answered": True, "draft": False,
        "deleted": False, "since": "2024-02-01", "before": "2024-03-01T12:00:00Z",
        "sentSince": "2024-01-01", "sentBefore": "2025-01-01", "larger": 10, "smaller": 99999,
        "uid": "1:5,7,10:*", "header": {"X-Campaign": "", "List-Id": "x"},
        "keyword": "$Important", "unKeyword": "$Junk",
        "or": [{"subject": "x"}, {"not": {"seen": True}}], "not": {"from": "spam"},
    }
    result = validated(data)
    assert result["since"] == date(2024, 2, 1)
    assert result["or"][1] == {"not": {"seen": True}}
    args = compile_search(result)
    assert args[:6] == ["UID", "1:5,7,10:*", "SEEN", "UNFLAGGED", "ANSWERED", "UNDRAFT"]
    assert needs_charset(args)


def test_serializer_accepts_an_empty_search():
    assert validated({}) == {}


@pytest.mark.parametrize("data, field", [
    ({"subjekt": "x"}, "subjekt"),
    ({"subject": 5}, "subject"),
    ({"subject": ""}, "subject"),
    ({"subject": "a\x00b"}, "subject"),
    ({"subject": "a\ud800"}, "subject"),
    ({"subject": "a" * 4097}, "subject"),
    ({"seen": "yes"}, "seen"),
    ({"seen": 1}, "seen"),
    ({"larger": -1}, "larger"),
    ({"larger": "ten"}, "larger"),
    ({"smaller": 2**32}, "smaller"),
    ({"since": "yesterday"}, "since"),
    ({"sentBefore": "2024-02-30"}, "sentBefore"),
    ({"before": 20240201}, "before"),
    ({"uid": "1:* ALL"}, "uid"),
    ({"uid": 5}, "uid"),
    ({"keyword": "a b"}, "keyword"),
    ({"unKeyword": "\\Seen"}, "unKeyword"),
    ({"header": ["X-Foo"]}, "header"),
    ({"header": {}}, "header"),
    ({"header": {"X Foo": "v"}}, "header.X Foo"),
    ({"header": {"X-Foo": 5}}, "header.X-Foo"),
    ({"header": {"X-Foo": "\x00"}}, "header.X-Foo"),
    ({"header": {"X-Foo": "\ud800"}}, "header.X-Foo"),
    ({"or": [{"seen": True}]}, "or"),
    ({"or": {"seen": True}}, "or"),
    ({"or": None}, "or"),
    ({"or": [{"seen": True}, {"subject": 5}]}, "or.1.subject"),
    ({"or": [{"seen": True}, "x"]}, "or.1"),
    ({"or": [{"seen": True}, {"not": {"subjekt": "x"}}]}, "or.1.not.subjekt"),
    ({"not": [{"seen": True}]}, "not"),
    ({"not": {"since": "1.2.2024"}}, "not.since"),
])
def test_serializer_answers_400_naming_the_field(data, field):
    body = error_response(data)
    assert field in body["details"], body
    assert body["message"].startswith(f"Invalid input: {field}: ") or len(body["details"]) > 1


def test_serializer_refuses_a_list_body():
    body = error_response([{"seen": True}])
    assert body["details"] == {"non_field_errors": ["Expected a JSON object, got list"]}


def test_serializer_refuses_deep_nesting_without_descending_into_it():
    data: dict = {"seen": True}
    for _ in range(500):  # far deeper than Python's stack would allow DRF to walk
        data = {"not": data}
    body = error_response(data)
    assert list(body["details"]) == [".".join(["not"] * (search.MAX_DEPTH + 1))]


def test_serializer_refuses_what_compile_search_refuses():
    wide = {"or": [{"subject": str(n)} for n in range(50)]}
    body = error_response({"or": [wide, wide, wide, wide, wide]})
    assert "more than 200 criteria" in body["message"]
